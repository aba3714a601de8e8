"""The adversarial suite's harness: run the real CLI against hostile input and hold it to the contract.

Every case runs `python -m checker` (or the `checker` console script) as a subprocess in a
session of its own, while a sampler thread sums the memory of every process in that session (the
CLI and each forked Checkov worker) every 20 ms from /proc: their proportional set sizes, so the
pages a forked worker shares with its parent count once (summed RSS counts them once per worker
and is reported beside it). A case then asserts the whole contract at once (`Run.expect`): the
exit code, no traceback on either stream, the time bound, the memory bound (1 GiB for all
processes together), no process left behind, and, when a SARIF file was asked for, that it
validates against the OASIS schema. The file is also kept for the SARIF Multitool, which
test_adv_zz_multitool runs once at the end over one SARIF of each shape per test (and every SARIF
of the URI cases): run alone it costs about a second a file.

It also builds the hostile inputs themselves (alias bombs, deep nesting, rulesets, locks), at
test time, so no large file is ever committed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from testkit import MULTITOOL, SARIF_SCHEMA

GIB = 1 << 30
MEMORY_BOUND = GIB  # every process of one scan together
KILL_ABOVE = 2 * GIB  # the harness's own guard: a scan past this is killed at once (other work shares the machine)
SAMPLE_SECONDS = 0.02
PAGE = os.sysconf("SC_PAGE_SIZE")
CONSOLE_SCRIPT = Path(sys.executable).parent / "checker"
# The one Multitool rule left out: SARIF2006 fetches every helpUri, which cannot succeed without a
# network and costs ~10 s a file; tests/testkit.py ignores its results for the same reason.
_MULTITOOL_CONFIG = """<?xml version="1.0" encoding="utf-8" ?>
<Properties>
  <Properties Key="SARIF2006.UrisShouldBeReachable.Options">
    <Property Key="RuleEnabled" Value="Disabled" />
  </Properties>
</Properties>
"""
_DISABLED_NOTE = "Rule 'SARIF2006' was explicitly disabled by the user"

APPROVED = "registry.example.com"
# A Deployment whose image is not from the approved registry: ORG-K8S-001 (high) fails the gate.
VIOLATION = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - name: web
          image: {image}
"""
CLEAN = VIOLATION.format(name="clean", image=f"{APPROVED}/web:1.0")
BAD = VIOLATION.format(name="web", image="docker.io/nginx:1.27")
BAD_LINE = 10  # the line ORG-K8S-001 reports in BAD


# ---------------------------------------------------------------------------------------------
# Measurements, for the report: the worst time and memory of each class.
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Measurement:
    """What one run cost, under the id of the test that made it."""

    test: str
    seconds: float
    peak_bytes: int
    peak_rss: int
    code: int | None


MEASUREMENTS: list[Measurement] = []


def _record(run: Run) -> None:
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
    MEASUREMENTS.append(Measurement(test, run.seconds, run.peak_bytes, run.peak_rss, run.code))
    log = os.environ.get("ADVERSARIAL_MEASUREMENTS")
    if log:  # one JSON line per run, for whoever wants the numbers outside pytest's summary
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(dataclasses.asdict(MEASUREMENTS[-1])) + "\n")


# ---------------------------------------------------------------------------------------------
# The process-tree sampler and the runner.
# ---------------------------------------------------------------------------------------------
def _proportional(pid: str) -> int | None:
    """The process's proportional set size in bytes (shared pages divided among their sharers)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def session_memory(session: int) -> tuple[int, int, list[int]]:
    """(summed PSS, summed RSS, pids) of every live process whose session id is `session`.

    PSS is what the processes hold together: a forked Checkov worker shares its parent's pages
    (copy on write), which RSS would count once per worker. Where the kernel has no
    smaps_rollup, RSS stands in for PSS.
    """
    pss = rss = 0
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(b")") + 2:].split()
        # fields[0] is field 3 of proc(5) (state): session is field 6, rss (pages) field 24
        if int(fields[3]) != session or fields[0] == b"Z":
            continue
        resident = int(fields[21]) * PAGE
        proportional = _proportional(entry.name)
        rss += resident
        pss += resident if proportional is None else proportional
        pids.append(int(entry.name))
    return pss, rss, pids


class TreeSampler(threading.Thread):
    """Samples the memory of one session's processes every SAMPLE_SECONDS until stopped.

    A session rather than the parent/child tree: a worker whose parent died is reparented to
    init but keeps its session, so it is still counted (and found if left behind).
    """

    def __init__(self, session: int) -> None:
        super().__init__(daemon=True)
        self.session = session
        self.peak_pss = 0
        self.peak_rss = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            pss, rss, _ = session_memory(self.session)
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            if pss > KILL_ABOVE:
                _kill_group(self.session)  # the bound is already broken; do not let it take the machine
            self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> tuple[int, int]:
        """(peak summed PSS, peak summed RSS)."""
        self._done.set()
        self.join()
        return self.peak_pss, self.peak_rss


@dataclasses.dataclass(frozen=True)
class Run:
    """One finished run of the CLI, with what it cost."""

    argv: tuple[str, ...]
    code: int | None  # None: killed at the timeout
    stdout_bytes: bytes
    stderr_bytes: bytes
    seconds: float
    peak_bytes: int  # summed PSS: what the scan's processes hold together
    peak_rss: int  # summed RSS: shared pages counted once per process (reported, not bounded)
    leftovers: tuple[int, ...]  # pids of the session still alive after the CLI exited

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", "replace")

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        """The command, what it cost, and the tails of its streams: enough to route a failure."""
        return (f"$ {' '.join(self.argv)}\nexit {self.code} in {self.seconds:.1f}s, peak {self.peak_bytes >> 20} MiB "
                f"PSS ({self.peak_rss >> 20} MiB summed RSS)\n--- stdout (tail)\n{self.stdout[-1500:]}"
                f"\n--- stderr (tail)\n{self.stderr[-1500:]}")

    def expect(self, codes: Collection[int], *, within: float, sarif: Path | None = None,
               names: Iterable[str] = (), memory: int = MEMORY_BOUND) -> Run:
        """The whole contract: exit code, no traceback, time, memory, no leftovers, valid SARIF, names."""
        assert self.peak_bytes < memory, (f"peak memory {self.peak_bytes >> 20} MiB, bound {memory >> 20} MiB "
                                          f"(killed above {KILL_ABOVE >> 20} MiB)\n{self.describe()}")
        assert self.code is not None, f"no exit before the timeout (a hang)\n{self.describe()}"
        assert self.code in codes, f"exit {self.code}, expected one of {sorted(codes)}\n{self.describe()}"
        assert b"Traceback" not in self.stdout_bytes + self.stderr_bytes, f"a traceback\n{self.describe()}"
        assert self.seconds <= within, f"took {self.seconds:.1f}s, bound {within:.0f}s\n{self.describe()}"
        assert not self.leftovers, f"processes left running: {self.leftovers}\n{self.describe()}"
        for name in names:
            assert name in self.output, f"the output does not name {name!r}\n{self.describe()}"
        if sarif is not None and self.code in (0, 1, 3):
            assert sarif.is_file(), f"exit {self.code} but no SARIF written at {sarif}\n{self.describe()}"
            try:
                doc = json.loads(sarif.read_bytes())
            except ValueError as error:
                raise AssertionError(f"SARIF {sarif.name} is not JSON: {error}\n{self.describe()}") from None
            problems = schema_problems(doc)
            assert not problems, f"invalid SARIF {sarif.name}: {problems[:10]}\n{self.describe()}"
            defer_to_multitool(sarif, doc)
        return self


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any CHECKER_* variable, cold (no warm server), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHECKER_")}
    env["CHECKER_WARM"] = "0"
    env.update(extra or {})
    return env


def run_cli(*args: str | os.PathLike[str], cwd: Path, env: Mapping[str, str] | None = None,
            timeout: float = 65.0, console_script: bool = False) -> Run:
    """Run `python -m checker ARGS` (or the `checker` script) in its own session, measured.

    `env` entries are added to `clean_env()`. At the timeout (a little past the cases' usual 60 s
    bound) the whole session (the CLI and its workers, all started here) is killed by its
    process group id and `code` is None.
    """
    argv = ([str(CONSOLE_SCRIPT)] if console_script else [sys.executable, "-m", "checker"]) + [str(a) for a in args]
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, env=clean_env(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    sampler = TreeSampler(process.pid)
    sampler.start()
    try:
        out, err = process.communicate(timeout=timeout)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        out, err = process.communicate()
        code = None
    seconds = time.monotonic() - started
    peak, peak_rss = sampler.stop()
    leftovers = _leftovers(process.pid)
    run = Run(tuple(argv), code, out, err, seconds, peak, peak_rss, leftovers)
    _record(run)
    return run


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _leftovers(session: int) -> tuple[int, ...]:
    """Processes of the session still alive shortly after the CLI exited; killed, and returned."""
    deadline = time.monotonic() + 2.0
    pids: list[int] = []
    while time.monotonic() < deadline:
        pids = session_memory(session)[2]
        if not pids:
            return ()
        time.sleep(0.05)
    _kill_group(session)
    return tuple(pids)


# ---------------------------------------------------------------------------------------------
# SARIF validation: the OASIS schema in-process and the Multitool, as tests/testkit.py does.
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _schema_validator() -> Any:
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_problems(doc: Any) -> list[str]:
    """Errors of a SARIF document against the OASIS 2.1.0 schema (with format checks)."""
    return [f"schema: {list(e.absolute_path)}: {e.message}" for e in _schema_validator().iter_errors(doc)]


def _multitool_installed() -> bool:
    """Whether the Multitool is here; like testkit: required wherever npm could install it."""
    if MULTITOOL.exists():
        return True
    if shutil.which("npm") is None:
        return False  # no way to install it here; CI's `make test` installs it
    raise AssertionError("run `make tools` (make test does) to install the SARIF Multitool")


def multitool_problems(paths: Sequence[Path], work: Path) -> dict[Path, list[str]]:
    """Multitool errors and warnings for many SARIF files in one run (its start-up is most of its cost).

    As testkit.sarif_problems: the same schema, rule kinds (Gh;Sarif) and levels, SARIF2002 and
    SARIF2006 not counted; SARIF2006 (it fetches every helpUri: ~10 s a file without a network)
    is disabled rather than filtered, and the note the Multitool adds about that is not counted.
    A notification that names no file is charged to every file.
    """
    found: dict[Path, list[str]] = {path.resolve(): [] for path in paths}
    if not paths or not _multitool_installed():
        return found
    config, out = work / "multitool-config.xml", work / "multitool-output.sarif"
    config.write_text(_MULTITOOL_CONFIG)
    subprocess.run([str(MULTITOOL), "validate", *map(str, paths), "-o", str(out), "--log", "ForceOverwrite", "-c",
                    str(config), "--json-schema", str(SARIF_SCHEMA), "--max-file-size-in-kb", "1000000",
                    "--rule-kind", "Gh;Sarif", "--level", "Error;Warning"],
                   capture_output=True, text=True, check=False, timeout=600)
    assert out.exists(), "the SARIF Multitool wrote no output log"
    run = json.loads(out.read_text())["runs"][0]
    ignored = {"SARIF2006", "SARIF2002"}
    for result in run.get("results", []):
        if result["ruleId"] in ignored or result.get("level", "warning") not in ("error", "warning"):
            continue
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(uri).path) if uri.startswith("file:") else uri)
        found.setdefault(path.resolve(), []).append(f"{result['ruleId']}: {result.get('message', {})}")
    for inv in run.get("invocations", []):
        notes = [n["message"]["text"] for n in inv.get("toolExecutionNotifications", [])]
        notes += [n["message"]["text"] for n in inv.get("toolConfigurationNotifications", [])
                  if _DISABLED_NOTE not in n["message"]["text"]]
        for problems in found.values():
            problems.extend(f"notification: {note}" for note in notes)
    return found


@dataclasses.dataclass
class _Deferred:
    """SARIF files the cases wrote, copied aside for one Multitool run at the end of the suite."""

    folder: Path | None = None  # set for the session by conftest.py (under pytest's basetemp)
    cases: dict[Path, str] = dataclasses.field(default_factory=dict)  # copy -> the test that wrote it
    shapes: set[tuple[Any, ...]] = dataclasses.field(default_factory=set)


DEFERRED = _Deferred()
ALWAYS_MULTITOOL = "test_sarif_uris"  # every SARIF of the URI cases: there the file names themselves are hostile
_PLAIN_URI = re.compile(r"^[A-Za-z0-9._/-]*$")


def _shape(doc: Any) -> tuple[Any, ...]:
    """What the Multitool could judge differently between two SARIFs of one test: rules, problems, odd URIs."""
    runs = doc.get("runs") or [{}]
    results = [r for run in runs for r in run.get("results", [])]
    notes = [n for run in runs for inv in run.get("invocations", []) for n in inv.get("toolExecutionNotifications", [])]
    uris = {loc.get("physicalLocation", {}).get("artifactLocation", {}).get("uri", "")
            for r in results for loc in r.get("locations", [])}
    return (tuple(sorted({str(r.get("ruleId")) for r in results})), bool(notes),
            any(not _PLAIN_URI.match(str(uri)) for uri in uris))


def defer_to_multitool(path: Path, doc: Any) -> None:
    """Keep a copy of `path` for test_adv_zz_multitool: one SARIF of each shape per test, all of the URI cases.

    (The Multitool costs about 0.4 CPU-second a file; parametrized cases mostly write SARIFs of one shape.)
    """
    assert DEFERRED.folder is not None, "tests/adversarial/conftest.py sets the folder for the session"
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
    key = (test.split("[")[0], *_shape(doc))
    if ALWAYS_MULTITOOL not in test and key in DEFERRED.shapes:
        return
    DEFERRED.shapes.add(key)
    copy = DEFERRED.folder / f"{len(DEFERRED.cases):04d}.sarif"
    shutil.copyfile(path, copy)
    DEFERRED.cases[copy.resolve()] = test


def sarif_uris(path: Path) -> list[str]:
    """Every artifactLocation.uri of every result's first location (what code scanning reads)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for run in doc["runs"] for r in run.get("results", []) if r.get("locations")]


# ---------------------------------------------------------------------------------------------
# Repositories and rulesets.
# ---------------------------------------------------------------------------------------------
def put(root: Path, rel: str, content: str | bytes) -> Path:
    """Write `content` at root/rel, creating folders; text is written as UTF-8 bytes unchanged."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
    return path


def ruleset(include: Sequence[str] = ("ORG-K8S-001",), *, name: str = "adversarial", extra: str = "") -> str:
    """A small ruleset: the organisation facts ORG checks need, `include`, and any extra YAML."""
    return (f"apiVersion: checker/v1\nkind: Ruleset\nmetadata: {{name: {name}, version: '1'}}\n"
            f"organisation: {{approved_registries: [{APPROVED}], required_labels: [app], required_tags: [owner],"
            f" allowed_regions: [eu-west-2]}}\n"
            f"checks:\n  include: {json.dumps(list(include))}\n{extra}")


ORG_ONLY = ("ORG-K8S-001", "ORG-GHA-001", "ORG-DOCKER-001", "ORG-TF-002")
# Checkov's runners as well: where hostile files hurt (its parsers, its walk, its memory).
WITH_CHECKOV = (*ORG_ONLY, "CKV_K8S_*", "CKV_GHA_*", "CKV_DOCKER_*", "CKV_AWS_*", "CKV_SECRET_*")


def rules_file(folder: Path, include: Sequence[str] = ORG_ONLY, extra: str = "") -> Path:
    """A ruleset file outside the scanned repository (as CI passes one with -r)."""
    return put(folder, "rules.yaml", ruleset(include, extra=extra))


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line of `text` that contains `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# ---------------------------------------------------------------------------------------------
# Hostile content.
# ---------------------------------------------------------------------------------------------
def alias_bomb(prefix: str = "", levels: int = 9, width: int = 9, indent: str = "") -> str:
    """'Billion laughs': `levels` anchors, each a list of `width` aliases of the one before (width**levels)."""
    lines = [prefix.rstrip("\n")] if prefix else []
    lines.append(f"{indent}l0: &l0 [{', '.join(['lol'] * width)}]")
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def mapping_bomb(levels: int = 9, width: int = 9) -> str:
    """The alias bomb in mappings (and a merge key at the top): `width` keys a level, each aliasing the level below."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}",
             "m0: &m0 {" + ", ".join(f"k{j}: lol" for j in range(width)) + "}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(width)) + "}")
    lines.append(f"data:\n  <<: *m{levels - 1}")
    return "\n".join(lines) + "\n"


def deep_flow(depth: int, prefix: str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata:\n  x: ") -> str:
    """A value nested `depth` flow sequences deep: [[[...]]]."""
    return prefix + "[" * depth + "]" * depth + "\n"


def deep_block(depth: int) -> str:
    """Block mappings nested `depth` deep, one key per line, indented one space a level."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: deep}", "data:"]
    lines += [" " * (i + 1) + f"k{i}:" for i in range(depth)]
    lines[-1] += " end"
    return "\n".join(lines) + "\n"


def deep_json(depth: int) -> str:
    """A Kubernetes-looking JSON document with a value nested `depth` arrays deep."""
    return '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "data": {"x": ' + \
        "[" * depth + "]" * depth + "}}\n"


def make_deep_folders(root: Path, levels: int, leaf: str, content: str) -> Path:
    """root/d/d/.../d/leaf, `levels` folders deep, made relative to each level (no PATH_MAX trouble)."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf_fd = os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        with os.fdopen(leaf_fd, "w") as handle:
            handle.write(content)
    finally:
        os.close(fd)
    return root / "d"


def remove_tree(path: Path) -> None:
    """rm -rf (shutil.rmtree recurses per level and cannot remove a tree 1,200 folders deep on 3.11)."""
    subprocess.run(["rm", "-rf", "--", str(path)], check=False, timeout=120)


def seeded_garbage(size: int, seed: int) -> bytes:
    """Deterministic random bytes."""
    import random

    return random.Random(seed).randbytes(size)


def skip_unless_unreadable(path: Path) -> None:
    """Skip when this user reads the file anyway (root ignores permission bits)."""
    try:
        path.read_bytes()
    except PermissionError:
        return
    pytest.skip(f"running as uid {os.getuid()}, which reads a chmod 000 file anyway, so nothing to refuse")


def findings_json(run: Run) -> list[dict[str, Any]]:
    """The findings of a run made with --format json (empty when stdout is not our JSON)."""
    try:
        return list(json.loads(run.stdout).get("findings", []))
    except ValueError:
        return []

