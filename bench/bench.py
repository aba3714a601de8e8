#!/usr/bin/env python3
"""Benchmark: our `checker scan` (every Checkov check selected) against Checkov alone.

Run from the project root with the project venv:

    .venv/bin/python bench/bench.py                       # corpus mode, 3 rounds, every folder
    .venv/bin/python bench/bench.py --rounds 2 --folders terragoat,cfngoat
    .venv/bin/python bench/bench.py --precommit           # one changed file: pre-commit latency
    .venv/bin/python bench/bench.py --report bench/results/corpus-....json   # re-print saved tables
    .venv/bin/python bench/bench.py --rescan --rounds 1   # cold, unchanged and one-file-changed re-scans, one cache
    .venv/bin/python bench/bench.py --scale 10 --rounds 1 --folders terragoat,cfngoat   # 10 copies against 1

Every measurement is a fresh subprocess, timed with GNU time (`/usr/bin/time -f ...`) when present:
- wall: elapsed seconds of the whole command (parent + forked workers, until the parent exits);
- CPU: user + system seconds of the parent and every waited-for descendant (GNU time %U + %S);
- max RSS: GNU time's %M, i.e. getrusage's ru_maxrss over the process and its waited-for
  descendants: the largest SINGLE process of the tree, not a sum (both tools fork workers);
- tree PSS: in addition, a sampler thread reads /proc/<pid>/smaps_rollup of every process of the
  tree every --sample-interval seconds and records the peak of the SUM of their PSS (proportional
  set size: pages shared copy-on-write between a parent and its forked workers are split between
  them, not counted twice). Sampling can miss short peaks; it is a lower bound of the true peak.

Standard library only. Results are saved as JSON under bench/results/ (git-ignored).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
VENV_BIN = PROJECT / ".venv" / "bin"
DEFAULT_CORPUS = PROJECT.parent / "shared" / "corpus"
RESULTS = BENCH / "results"
RULESET = BENCH / "all-checkov.yaml"
GNU_TIME = "/usr/bin/time"

# BASELINE.md: these 12 templates crash Checkov's CloudFormation runner (exit 2, no report at all).
CFN_FOLDER = "aws-cloudformation-templates"
CFN_SKIP = (r"(CloudFormation/StackSets/common-resources|RainModules/(bucket|static-site)|"
            r"Solutions/GitLabAndVSCode/GitLabAndVSCode|Solutions/Gitea/Gitea|Solutions/VSCode/VSCodeServer|"
            r"Solutions/GitLab/GitLabServer)\.(json|ya?ml)$")
EMPTY = "(empty folder)"

# Pre-commit samples: (corpus path, path inside the temporary repository).
PRECOMMIT_FILES = (
    ("kustomizegoat/kustomize/base/deployment.yaml", "deployment.yaml"),
    ("zizmor/.github/workflows/ci.yml", ".github/workflows/ci.yml"),
    ("gitlab-runner/dockerfiles/runner/Dockerfile", "Dockerfile"),
    ("terragoat/terraform/aws/s3.tf", "s3.tf"),
    ("cfngoat/cfngoat.yaml", "cfngoat.yaml"),
)


# ----------------------------------------------------------------------------------------------
# One measured run


class _TreeSampler(threading.Thread):
    """Peak of the summed PSS (and RSS) of a process and all its descendants, sampled from /proc."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_pss_kib = 0
        self.peak_rss_sum_kib = 0
        self.peak_procs = 0
        self.samples = 0
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def run(self) -> None:
        while not self._halt.is_set():
            pids = _descendants(self.pid)
            pss = rss = 0
            for pid in pids:
                p, r = _smaps_rollup(pid)
                pss += p
                rss += r
            if pids:
                self.samples += 1
                self.peak_pss_kib = max(self.peak_pss_kib, pss)
                self.peak_rss_sum_kib = max(self.peak_rss_sum_kib, rss)
                self.peak_procs = max(self.peak_procs, len(pids))
            self._halt.wait(self.interval)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _smaps_rollup(pid: int) -> tuple[int, int]:
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return pss, rss


def measure(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float, sample: float,
            stdout_path: Path | None = None) -> dict[str, Any]:
    """Run `cmd` once in a fresh process (its own session) and measure it."""
    timefile = Path(tempfile.mkstemp(prefix="bench-time-")[1])
    errfile = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, once read
    use_time = os.access(GNU_TIME, os.X_OK)
    full = [GNU_TIME, "-f", "%e %M %U %S", "-o", str(timefile), *cmd] if use_time else cmd
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
    before = os.times() if not use_time else None
    started = time.perf_counter()
    proc = subprocess.Popen(full, cwd=cwd, env=env, stdout=out, stderr=errfile, start_new_session=True)
    sampler = _TreeSampler(proc.pid, sample) if sample > 0 and os.path.isdir("/proc") else None
    if sampler:
        sampler.start()
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)  # only the session this function started
        rc = proc.wait()
    elapsed = time.perf_counter() - started
    if sampler:
        sampler.stop()
    if stdout_path:
        out.close()
    errfile.seek(0)
    stderr = errfile.read().decode("utf-8", "replace")
    errfile.close()
    result: dict[str, Any] = {"exit": rc, "wall": round(elapsed, 3), "timed_out": timed_out,
                              "stderr_tail": stderr[-1500:] if stderr.strip() else ""}
    if use_time:
        fields = _time_fields(timefile.read_text(errors="replace"))
        if fields:
            result.update(wall=fields[0], max_rss_mib=round(fields[1] / 1024, 1),
                          cpu=round(fields[2] + fields[3], 2))
    else:  # no GNU time: RUSAGE_CHILDREN deltas (ru_maxrss is a high-water mark over ALL children so far)
        after = os.times()
        import resource
        result.update(cpu=round((after.children_user - before.children_user)
                                + (after.children_system - before.children_system), 2),
                      max_rss_mib=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1))
    timefile.unlink(missing_ok=True)
    if sampler:
        result.update(tree_pss_mib=round(sampler.peak_pss_kib / 1024, 1),
                      tree_rss_sum_mib=round(sampler.peak_rss_sum_kib / 1024, 1),
                      tree_procs=sampler.peak_procs, samples=sampler.samples)
    return result


def _time_fields(text: str) -> list[float] | None:
    """The last line of GNU time's -o file ('Command exited with non-zero status N' may precede it)."""
    for line in reversed(text.strip().splitlines()):
        parts = line.split()
        if len(parts) == 4:
            try:
                return [float(p) for p in parts]
            except ValueError:
                continue
    return None


# ----------------------------------------------------------------------------------------------
# Commands and their outputs


def ours_env(snapshot: Path | None, warm: bool = False) -> dict[str, str]:
    """Our tool's environment: the snapshot first on sys.path; cold (CHECKER_WARM=0) unless `warm`."""
    env = dict(os.environ)
    if snapshot:
        env["PYTHONPATH"] = str(snapshot)
    env.pop("CI", None)
    if warm:
        env["CHECKER_WARM"] = "1"  # the warm server is opt-in (issue 12): on by default only under pre-commit
    else:
        env["CHECKER_WARM"] = "0"  # every run a fresh, complete process: no hand-off to a warm server
    return env


class WarmServer:
    """Our warm server (checker/warm.py) for the snapshot, started and later stopped by us.

    When a server for the same installation already listens (someone else's), it is used and left alone.
    """

    def __init__(self, snapshot: Path | None) -> None:
        self.env = ours_env(snapshot, warm=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None
        self.note = ""

    def start(self, wait: float = 90) -> bool:
        # the socket's name depends on sys.executable: use the console script's own interpreter (python3)
        python = _script_python()
        # cwd: not the project, whose checker/ would shadow the snapshot on sys.path ('' comes first)
        probe = subprocess.run([python, "-c", "from checker import warm; print(warm.socket_path())"],
                               env=self.env, capture_output=True, text=True, cwd=tempfile.gettempdir())
        if probe.returncode != 0:
            self.note = "this version of checker has no warm server"
            return False
        self.path = Path(probe.stdout.strip())
        if not _listening(self.path):
            self.path.unlink(missing_ok=True)  # a stale socket file left by a killed server
            self.proc = subprocess.Popen([python, "-m", "checker.warm", str(self.path)],
                                         env=self.env, cwd=tempfile.gettempdir(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        else:
            self.note = "an already running warm server was used"
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _listening(self.path):
                return True
            if self.proc and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.note = "the warm server did not come up"
        return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # only the server we started (its forked children end with their scans)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.path and not _listening(self.path):
                self.path.unlink(missing_ok=True)


def _script_python() -> str:
    first = (VENV_BIN / "checker").read_text(errors="replace").splitlines()[0]
    return first[2:].strip() if first.startswith("#!") else str(VENV_BIN / "python")


def _listening(path: Path) -> bool:
    import socket
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        client.close()


def checkov_env() -> dict[str, str]:
    return {**os.environ, "BC_SKIP_MAPPING": "TRUE"}


def ours_cmd(target: str, ruleset: str | None, extra: list[str]) -> list[str]:
    cmd = [str(VENV_BIN / "checker"), "scan", target]
    if ruleset:
        cmd += ["-r", ruleset]
    return cmd + extra


def checkov_cmd(flag: str, target: str, skip_path: str | None = None) -> list[str]:
    cmd = [str(VENV_BIN / "checkov"), flag, target, "-o", "json", "--quiet", "--compact", "--skip-download"]
    if skip_path:
        cmd += ["--skip-path", skip_path]
    return cmd


def summarise_ours(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return {"parse_error": str(error)[:200]}
    findings = doc.get("findings", [])
    return {"findings": len(findings),
            "open": sum(1 for f in findings if not f.get("suppression")),
            "problems": len(doc.get("problems", [])),
            "verdict": (doc.get("decision") or {}).get("verdict")}


def summarise_checkov(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text() or "null")
    except (OSError, ValueError) as error:
        return {"parse_error": str(error)[:200]}
    reports = doc if isinstance(doc, list) else [doc] if isinstance(doc, dict) else []
    out = {"failed": 0, "passed": 0, "skipped": 0, "parsing_errors": 0}
    for report in reports:
        summary = report.get("summary") or {}
        for key in out:
            out[key] += int(summary.get(key) or 0)
    out["frameworks"] = len(reports)
    return out


# ----------------------------------------------------------------------------------------------
# Snapshot of our code: the whole run measures one version even if checker/ is edited meanwhile


def make_snapshot(kind: str) -> tuple[Path | None, dict[str, str]]:
    info = {"mode": kind, "git_head": _git("rev-parse", "HEAD"), "worktree_dirty": _git("status", "--porcelain",
                                                                                          "--", "checker", "policies",
                                                                                          "rulesets")}
    if kind == "none":
        return None, info
    snap = Path(tempfile.mkdtemp(prefix="bench-checker-"))
    if kind == "head":
        archive = subprocess.run(["git", "archive", "HEAD", "checker", "policies", "rulesets"], cwd=PROJECT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(snap)], input=archive, check=True)
    else:
        for name in ("checker", "policies", "rulesets"):
            shutil.copytree(PROJECT / name, snap / name, ignore=shutil.ignore_patterns("__pycache__"))
    # the editable install maps checker.policies/checker.rulesets to top-level folders: mirror that
    shutil.move(str(snap / "policies"), str(snap / "checker" / "policies"))
    shutil.move(str(snap / "rulesets"), str(snap / "checker" / "rulesets"))
    # byte-compile it, as a regular pip install does (Checkov's modules have .pyc files; with
    # PYTHONDONTWRITEBYTECODE set, an uncompiled copy would be recompiled on every run)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(snap)], check=True)
    info["path"] = str(snap)
    return snap, info


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def check_ours_works(snapshot: Path | None) -> None:
    probe = subprocess.run([str(VENV_BIN / "checker"), "--version"], env=ours_env(snapshot),
                           capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"bench: our tool does not start (snapshot {snapshot}):\n{probe.stderr[-2000:]}")


class Cache:
    """What our result cache accepts (read from `checker scan --help`), and the flags each kind of run gets.

    A version of checker without a flag runs without it; the results say so (`cache_note`).
    """

    def __init__(self, snapshot: Path | None) -> None:
        text = subprocess.run([str(VENV_BIN / "checker"), "scan", "--help"], env=ours_env(snapshot),
                              capture_output=True, text=True).stdout
        self.dir_flag = "--cache-dir" in text
        self.off_flag = "--no-cache" in text

    def cold(self) -> list[str]:
        """A first scan: no cache read or written."""
        return ["--no-cache"] if self.off_flag else []

    def at(self, folder: Path) -> list[str]:
        return ["--cache-dir", str(folder)] if self.dir_flag else []

    def note(self) -> str:
        return ("checker scan accepts --cache-dir and --no-cache" if self.dir_flag and self.off_flag else
                f"checker scan has {'--cache-dir' if self.dir_flag else 'no --cache-dir'} and "
                f"{'--no-cache' if self.off_flag else 'no --no-cache'}: runs that would use them run without")


def _link_tree(src: Path, dest: Path) -> None:
    """A copy of `src` at `dest` made of hard links (plain copies across file systems); symbolic links kept."""
    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dest, symlinks=True, copy_function=link)


def _change_one_file(root: Path) -> str | None:
    """Append a comment line to one file of `root` (a Terraform file if any, else a Dockerfile, else YAML).

    The file is rewritten under a new name and renamed over the old one, so a hard link to the
    corpus is replaced, never written through. Returns the path changed, relative to `root`.
    """
    files = sorted((p for p in root.rglob("*") if p.is_file() and not p.is_symlink()),  # .github/ and such last
                   key=lambda p: (any(part.startswith(".") for part in p.relative_to(root).parts), p))
    for wanted in (lambda p: p.suffix == ".tf", lambda p: p.name == "Dockerfile",
                   lambda p: p.suffix in (".yaml", ".yml")):
        for path in files:
            if wanted(path):
                tmp = path.with_name(path.name + ".bench-tmp")
                tmp.write_bytes(path.read_bytes().rstrip(b"\n") + b"\n# bench: one file changed\n")
                os.replace(tmp, path)
                return path.relative_to(root).as_posix()
    return None


# ----------------------------------------------------------------------------------------------
# Corpus mode


def _folders(args: argparse.Namespace, corpus: Path, empty: bool) -> list[str]:
    """The corpus folders asked for (--folders), else all of them; EMPTY too when `empty` allows it."""
    folders = sorted(p.name for p in corpus.iterdir() if p.is_dir() and not p.name.startswith("."))
    if args.folders:
        wanted = [f.strip() for f in args.folders.split(",") if f.strip()]
        missing = [f for f in wanted if f not in folders and f != "empty"]
        if missing:
            sys.exit(f"bench: no such corpus folder(s): {', '.join(missing)}")
        return [f for f in wanted if f != "empty"] + ([EMPTY] if "empty" in wanted and empty else [])
    return folders + ([EMPTY] if empty and not args.no_empty else [])


def corpus_of(args: argparse.Namespace, mode: str) -> Path | None:
    """The corpus folder, or None (said on stdout) when it is absent: every mode then skips."""
    corpus = Path(args.corpus)
    if corpus.is_dir():
        return corpus
    print(f"bench: corpus folder {corpus} is absent: nothing to benchmark ({mode} mode skipped)")
    return None


def results_file(mode: str, meta: dict[str, Any]) -> Path:
    """Where a run of `mode` is saved: bench/results/MODE-<start time, digits only>.json."""
    return RESULTS / f"{mode}-{meta['started'].replace(':', '').replace('-', '')}.json"


def finish(save_to: Path, data: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """End a mode's run: stamp it finished, save it, say where, print its tables; the data, for main."""
    data["finished"] = _now()
    _save(save_to, data)
    print(f"\nresults saved to {save_to.relative_to(PROJECT)}\n")
    report(data)
    return data


def corpus_mode(args: argparse.Namespace, snapshot: Path | None, meta: dict[str, Any]) -> dict[str, Any]:
    corpus = corpus_of(args, "corpus")
    if corpus is None:
        return {}
    folders = _folders(args, corpus, empty=True)
    cache = Cache(snapshot)
    meta = {**meta, "cache_note": cache.note()}
    empty_dir = Path(tempfile.mkdtemp(prefix="bench-empty-"))
    out_dir = Path(tempfile.mkdtemp(prefix="bench-out-"))
    data: dict[str, Any] = {**meta, "mode": "corpus", "corpus": str(corpus), "rounds": args.rounds,
                            "folders": {f: {} for f in folders}}
    save_to = results_file("corpus", meta)
    for rnd in range(1, args.rounds + 1):
        for folder in folders:
            target = str(empty_dir if folder == EMPTY else corpus / folder)
            variants = [
                ("ours", ours_cmd(target, str(RULESET), ["--format", "json", "--json-output", "/dev/null",
                                                         "--sarif-output", str(out_dir / "ours.sarif"),
                                                         *cache.cold()]),
                 ours_env(snapshot), summarise_ours),
                ("checkov", checkov_cmd("-d", target), checkov_env(), summarise_checkov),
            ]
            if folder == CFN_FOLDER:
                variants.append(("checkov_skip", checkov_cmd("-d", target, CFN_SKIP), checkov_env(),
                                 summarise_checkov))
            for name, cmd, env, summarise in variants:
                stdout = out_dir / f"{name}.json"
                load = os.getloadavg()[0]
                run = measure(cmd, env=env, cwd=PROJECT, timeout=args.timeout, sample=args.sample_interval,
                              stdout_path=stdout)
                run.update(round=rnd, load1=round(load, 2), **summarise(stdout))
                stdout.unlink(missing_ok=True)
                (out_dir / "ours.sarif").unlink(missing_ok=True)
                data["folders"][folder].setdefault(name, []).append(run)
                print(f"[round {rnd}/{args.rounds}] {folder:32} {name:13} wall {run['wall']:7.2f}s "
                      f"cpu {run.get('cpu', 0):7.2f}s maxRSS {run.get('max_rss_mib', 0):6.0f}MiB "
                      f"treePSS {run.get('tree_pss_mib', 0):6.0f}MiB exit {run['exit']} load {load:.2f}",
                      flush=True)
                if run["timed_out"] or run["exit"] not in _NORMAL[name] or "parse_error" in run:
                    print("    unexpected exit; stderr tail:\n    "
                          + run["stderr_tail"][-600:].replace("\n", "\n    "), flush=True)
                _save(save_to, data)
    shutil.rmtree(empty_dir, ignore_errors=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    return finish(save_to, data, print_corpus)


_NORMAL = {"ours": (0, 3), "ours_all": (0, 3), "ours_warm": (0, 3), "checkov": (0, 1), "checkov_skip": (0, 1)}


def _med(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _span(runs: list[dict[str, Any]]) -> str:
    walls = [r["wall"] for r in runs]
    return f"{statistics.median(walls):.1f} ({min(walls):.1f}–{max(walls):.1f})" if walls else "–"


def _exits(runs: list[dict[str, Any]]) -> str:
    return ",".join(sorted({str(r["exit"]) + ("T" if r["timed_out"] else "") for r in runs}))


def print_corpus(data: dict[str, Any]) -> None:
    print(f"Corpus benchmark, {data['started']} .. {data.get('finished', '(unfinished)')}, "
          f"{data['rounds']} round(s); host {data['host']}; load average at start {data['loadavg_start']}")
    print(f"ours: {data['ours_version']}; checkov {data['checkov_version']}"
          + (f"; cache: {data['cache_note']}" if data.get("cache_note") else "") + "\n")
    head = ("| folder | ours wall s, median (min–max) | checkov wall s, median (min–max) | ours/checkov | "
            "ours CPU s | checkov CPU s | ours max RSS MiB | checkov max RSS MiB | ours tree PSS MiB | "
            "checkov tree PSS MiB | exit ours | exit checkov | ours findings (open) / problems | "
            "checkov failed / parse err |")
    print(head)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|---:|---:|")
    tot_ours = tot_ck = tot_ck_skip = 0.0
    ratios_complete = True
    for folder, variants in data["folders"].items():
        ours = variants.get("ours", [])
        for ck_name in ("checkov", "checkov_skip"):
            ck = variants.get(ck_name)
            if not ck:
                continue
            mo, mc = _med(ours, "wall"), _med(ck, "wall")
            label = folder if ck_name == "checkov" else f"{folder} (checkov with --skip-path, 12 templates skipped)"
            last_o = ours[-1] if ours else {}
            last_c = ck[-1]
            print(f"| {label} | {_span(ours)} | {_span(ck)} | "
                  f"{_fmt(mo / mc if mo and mc else None, 2)} | {_fmt(_med(ours, 'cpu'))} | {_fmt(_med(ck, 'cpu'))} | "
                  f"{_fmt(_med(ours, 'max_rss_mib'), 0)} | {_fmt(_med(ck, 'max_rss_mib'), 0)} | "
                  f"{_fmt(_med(ours, 'tree_pss_mib'), 0)} | {_fmt(_med(ck, 'tree_pss_mib'), 0)} | "
                  f"{_exits(ours)} | {_exits(ck)} | {last_o.get('open', '–')} / {last_o.get('problems', '–')} | "
                  f"{last_c.get('failed', '–') if last_c['exit'] in (0, 1) else 'no report'} / "
                  f"{last_c.get('parsing_errors', '–') if last_c['exit'] in (0, 1) else '–'} |")
            if folder == EMPTY:
                continue
            if ck_name == "checkov":
                tot_ours += mo or 0
                tot_ck += mc or 0
                if folder != CFN_FOLDER:
                    tot_ck_skip += mc or 0
                if mo is None or mc is None:
                    ratios_complete = False
            else:
                tot_ck_skip += mc or 0
    has_skip = any("checkov_skip" in v for v in data["folders"].values())
    print()
    print(f"Total (sum of per-folder medians, empty folder excluded): ours {tot_ours:.1f} s, "
          f"checkov {tot_ck:.1f} s, ratio ours/checkov {tot_ours / tot_ck:.2f}" if tot_ck else "Total: –")
    if has_skip and tot_ck_skip:
        print(f"  with Checkov's {CFN_FOLDER} time taken from its --skip-path run (the plain run crashes with "
              f"exit 2 and no report): checkov {tot_ck_skip:.1f} s, ratio ours/checkov {tot_ours / tot_ck_skip:.2f}")
    if not ratios_complete:
        print("  (some folders lack a measurement; totals are partial)")


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


# ----------------------------------------------------------------------------------------------
# Pre-commit mode


def precommit_mode(args: argparse.Namespace, snapshot: Path | None, meta: dict[str, Any]) -> dict[str, Any]:
    corpus = corpus_of(args, "pre-commit")
    if corpus is None:
        return {}
    rounds = args.precommit_rounds
    data: dict[str, Any] = {**meta, "mode": "precommit", "rounds": rounds, "files": {}}
    save_to = results_file("precommit", meta)
    cache = Cache(snapshot)
    data["cache_note"] = cache.note() + ("; every run of ours gets a new, empty --cache-dir (a changed file misses)"
                                         if cache.dir_flag else "")
    server = WarmServer(snapshot)
    warm = server.start()
    data["warm_server"] = "used" if warm else "not measured: " + server.note
    if server.note and warm:
        data["warm_server"] += f" ({server.note})"
    print(f"warm server: {data['warm_server']}", flush=True)
    try:
        _precommit_files(args, snapshot, corpus, rounds, warm, data, save_to, cache)
    finally:
        server.stop()
    return finish(save_to, data, print_precommit)


def _precommit_files(args: argparse.Namespace, snapshot: Path | None, corpus: Path, rounds: int, warm: bool,
                     data: dict[str, Any], save_to: Path, cache: Cache) -> None:
    for src_rel, repo_rel in PRECOMMIT_FILES:
        src = corpus / src_rel
        if not src.is_file():
            print(f"bench: {src_rel} is absent from the corpus, skipped")
            continue
        repo = Path(tempfile.mkdtemp(prefix="bench-precommit-"))  # outside the project
        try:
            subprocess.run(["git", "init", "-q", str(repo)], check=True)
            dest = repo / repo_rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            variants = [
                ("ours", ours_cmd(repo_rel, None, ["--fail-on", "never"]), ours_env(snapshot)),
                ("ours_all", ours_cmd(repo_rel, str(RULESET), ["--fail-on", "never"]), ours_env(snapshot)),
                ("checkov", checkov_cmd("-f", repo_rel), checkov_env()),
            ]
            if warm:
                variants.insert(1, ("ours_warm", ours_cmd(repo_rel, None, ["--fail-on", "never"]),
                                    ours_env(snapshot, warm=True)))
            runs: dict[str, list[dict[str, Any]]] = {}
            for rnd in range(1, rounds + 1):
                for name, cmd, env in variants:
                    cache_dir = Path(tempfile.mkdtemp(prefix="bench-cache-"))
                    full = [*cmd, *cache.at(cache_dir)] if name.startswith("ours") else cmd
                    run = measure(full, env=env, cwd=repo, timeout=args.timeout, sample=args.sample_interval)
                    shutil.rmtree(cache_dir, ignore_errors=True)
                    run.update(round=rnd, load1=round(os.getloadavg()[0], 2))
                    runs.setdefault(name, []).append(run)
                    print(f"[round {rnd}/{rounds}] {src_rel:48} {name:9} wall {run['wall']:6.2f}s "
                          f"maxRSS {run.get('max_rss_mib', 0):5.0f}MiB exit {run['exit']}", flush=True)
                    if run["timed_out"] or run["exit"] not in _NORMAL[name] or "parse_error" in run:
                        print("    unexpected exit; stderr tail:\n    "
                              + run["stderr_tail"][-600:].replace("\n", "\n    "), flush=True)
            data["files"][src_rel] = runs
            _save(save_to, data)
        finally:
            shutil.rmtree(repo, ignore_errors=True)


def print_precommit(data: dict[str, Any]) -> None:
    print(f"Pre-commit latency (one file), {data['started']}, median of {data['rounds']} alternating rounds; "
          f"host {data['host']}; load average at start {data['loadavg_start']}")
    print("ours = `checker scan FILE --fail-on never` (default ruleset org-baseline), cold (CHECKER_WARM=0), in a "
          "fresh git repo; ours_warm = the same handed to our warm server (checker/warm.py, started beforehand; "
          f"{data.get('warm_server', 'not measured')}); ours_all = cold with -r bench/all-checkov.yaml; "
          "checkov = `checkov -f FILE` (same flags as corpus mode)"
          + (f"; cache: {data['cache_note']}" if data.get("cache_note") else "") + "\n")
    print("| file | ours s | ours_warm s | ours_all s | checkov s | ours/checkov | ours_warm/checkov | "
          "ours_all/checkov | ours max RSS MiB | checkov max RSS MiB | exits ours/warm/all/checkov |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|")
    for src_rel, runs in data["files"].items():
        o, w, a, c = (_med(runs.get(k, []), "wall") for k in ("ours", "ours_warm", "ours_all", "checkov"))

        def ratio(x: float | None, c: float | None = c) -> str:
            return _fmt(x / c if x and c else None, 2)

        print(f"| {src_rel} | {_fmt(o, 2)} | {_fmt(w, 2)} | {_fmt(a, 2)} | {_fmt(c, 2)} | {ratio(o)} | {ratio(w)} | "
              f"{ratio(a)} | {_fmt(_med(runs.get('ours', []), 'max_rss_mib'), 0)} | "
              f"{_fmt(_med(runs.get('checkov', []), 'max_rss_mib'), 0)} | "
              + "/".join(_exits(runs.get(k, [])) or "–" for k in ("ours", "ours_warm", "ours_all", "checkov"))
              + " |")
    print("\nTarget: ours/checkov <= 0.5. For ours_warm, CPU and RSS are those of the client only (the scan runs in "
          "a fork of the server), so only its wall time is comparable.")


# ----------------------------------------------------------------------------------------------
# Re-scan mode: the same folder again, then with one file changed, with one result cache


def rescan_mode(args: argparse.Namespace, snapshot: Path | None, meta: dict[str, Any]) -> dict[str, Any]:
    """Per folder (a hard-linked copy under /tmp): ours three times with one --cache-dir (cold, again with
    nothing changed, again with one file changed), Checkov once, and Checkov on the changed file's framework."""
    corpus = corpus_of(args, "re-scan")
    if corpus is None:
        return {}
    cache = Cache(snapshot)
    note = cache.note() if cache.dir_flag else ("this checker has no --cache-dir (`checker scan --help`): ours runs "
                                                "WITHOUT a result cache, so the re-scan measures no cache at all")
    print(f"cache: {note}", flush=True)
    data: dict[str, Any] = {**meta, "mode": "rescan", "rounds": args.rounds, "cache_note": note, "folders": {}}
    save_to = results_file("rescan", meta)
    for rnd in range(1, args.rounds + 1):
        for folder in _folders(args, corpus, empty=False):
            work = Path(tempfile.mkdtemp(prefix="bench-rescan-"))
            cache_dir = Path(tempfile.mkdtemp(prefix="bench-cache-", dir=args.cache_dir))
            try:
                copy = work / folder
                _link_tree(corpus / folder, copy)
                runs = data["folders"].setdefault(folder, {})
                ours = ours_cmd(str(copy), str(RULESET), ["--format", "json", "--json-output", "/dev/null",
                                                          "--sarif-output", str(work / "ours.sarif"),
                                                          *cache.at(cache_dir)])
                steps: list[tuple[str, list[str], dict[str, str], Any]] = [
                    ("ours_first", ours, ours_env(snapshot), summarise_ours),
                    ("ours_rescan", ours, ours_env(snapshot), summarise_ours),
                    ("ours_changed", ours, ours_env(snapshot), summarise_ours),
                    ("checkov", checkov_cmd("-d", str(copy)), checkov_env(), summarise_checkov),
                ]
                for name, cmd, env, summarise in steps:
                    if name == "ours_changed":
                        changed = _change_one_file(copy)
                        runs["changed_file"] = changed
                        framework = _framework_of(copy, changed)
                        if framework:
                            runs["changed_framework"] = framework
                            # appended while iterating: this loop runs it last, on the changed copy
                            steps.append(("checkov_framework", [*checkov_cmd("-d", str(copy)), "--framework",
                                                                framework], checkov_env(), summarise_checkov))
                    _run_step(args, name, cmd, env, summarise, work, runs, rnd, folder)
                    _save(save_to, data)
            finally:
                shutil.rmtree(work, ignore_errors=True)
                shutil.rmtree(cache_dir, ignore_errors=True)
    return finish(save_to, data, print_rescan)


def _framework_of(root: Path, rel: str | None) -> str | None:
    """The Checkov framework that mainly reads the changed file (secrets reads every file besides)."""
    if rel is None:
        return None
    if rel.endswith(".tf"):
        return "terraform"
    if rel.rsplit("/", 1)[-1] == "Dockerfile":
        return "dockerfile"
    if rel.startswith(".github/workflows/"):
        return "github_actions"
    text = (root / rel).read_text(errors="replace")
    if "AWSTemplateFormatVersion" in text or "\nResources:" in text:
        return "cloudformation"
    if "apiVersion:" in text and "kind:" in text:
        return "kubernetes"
    return None


def _run_step(args: argparse.Namespace, name: str, cmd: list[str], env: dict[str, str], summarise: Any,
              work: Path, runs: dict[str, Any], rnd: int, label: str) -> dict[str, Any]:
    stdout = work / f"{name}.json"
    load = os.getloadavg()[0]
    run = measure(cmd, env=env, cwd=PROJECT, timeout=args.timeout, sample=args.sample_interval, stdout_path=stdout)
    run.update(round=rnd, load1=round(load, 2), **summarise(stdout))
    stdout.unlink(missing_ok=True)
    (work / "ours.sarif").unlink(missing_ok=True)
    runs.setdefault(name, []).append(run)
    if "parse_error" in run:  # no report: say why, a number alone would mislead
        print(f"    {name}: no readable report ({run['parse_error'][:100]}); stderr tail:\n    "
              + run["stderr_tail"][-600:].replace("\n", "\n    "), flush=True)
    print(f"[round {rnd}/{args.rounds}] {label:32} {name:17} wall {run['wall']:7.2f}s cpu {run.get('cpu', 0):7.2f}s "
          f"maxRSS {run.get('max_rss_mib', 0):6.0f}MiB treePSS {run.get('tree_pss_mib', 0):6.0f}MiB "
          f"exit {run['exit']} load {load:.2f}", flush=True)
    if run["timed_out"] or run["exit"] not in _NORMAL[name.split("_")[0] if name.startswith("ours") else "checkov"]:
        print("    unexpected exit; stderr tail:\n    " + run["stderr_tail"][-600:].replace("\n", "\n    "),
              flush=True)
    return run


def print_rescan(data: dict[str, Any]) -> None:
    print(f"Re-scan benchmark, {data['started']} .. {data.get('finished', '(unfinished)')}, {data['rounds']} round(s); "
          f"host {data['host']}; load average at start {data['loadavg_start']}")
    print(f"cache: {data.get('cache_note', '?')}")
    print("ours_first: cold cache; ours_rescan: the same again, nothing changed; ours_changed: again after one file "
          "was changed (a comment line appended); checkov: `checkov -d` once; checkov_fw: `checkov -d --framework F` "
          "for the changed file's framework F. Medians of wall seconds.\n")
    print("| folder | ours first s | ours re-scan s | ours one changed s | checkov s | re-scan/checkov | "
          "first/checkov | one changed/checkov | changed file (framework) | checkov_fw s | one changed/checkov_fw | "
          "findings first / re-scan / changed | exits |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|:-:|:-:|")
    totals = dict.fromkeys(("ours_first", "ours_rescan", "ours_changed", "checkov"), 0.0)
    for folder, runs in data["folders"].items():
        med = {k: _med(runs.get(k, []), "wall") for k in (*totals, "checkov_framework")}
        for k in totals:
            totals[k] += med[k] or 0

        def ratio(a: str, b: str, med: dict[str, float | None] = med) -> str:
            x, y = med[a], med[b]
            return _fmt(x / y if x and y else None, 2)

        found = " / ".join(str((runs.get(k) or [{}])[-1].get("open", "–")) for k in
                           ("ours_first", "ours_rescan", "ours_changed"))
        print(f"| {folder} | {_fmt(med['ours_first'])} | {_fmt(med['ours_rescan'])} | {_fmt(med['ours_changed'])} | "
              f"{_fmt(med['checkov'])} | {ratio('ours_rescan', 'checkov')} | {ratio('ours_first', 'checkov')} | "
              f"{ratio('ours_changed', 'checkov')} | {runs.get('changed_file', '–')} "
              f"({runs.get('changed_framework', '–')}) | {_fmt(med['checkov_framework'])} | "
              f"{ratio('ours_changed', 'checkov_framework')} | {found} | "
              + "/".join(_exits(runs.get(k, [])) or "–" for k in (*totals, "checkov_framework")) + " |")
    if totals["checkov"]:
        print(f"\nTotal: ours first {totals['ours_first']:.1f} s, re-scan {totals['ours_rescan']:.1f} s, one file "
              f"changed {totals['ours_changed']:.1f} s; checkov {totals['checkov']:.1f} s; re-scan/checkov "
              f"{totals['ours_rescan'] / totals['checkov']:.2f} (target <= 0.1), first/checkov "
              f"{totals['ours_first'] / totals['checkov']:.2f}")


# ----------------------------------------------------------------------------------------------
# Scale mode: the corpus made N times larger (copies), to see whether the cost is linear


def scale_mode(args: argparse.Namespace, snapshot: Path | None, meta: dict[str, Any]) -> dict[str, Any]:
    """One folder holding one copy of each selected corpus folder, one holding N; both tools on both."""
    corpus = corpus_of(args, "scale")
    if corpus is None:
        return {}
    n = args.scale
    folders = _folders(args, corpus, empty=False)
    cache = Cache(snapshot)
    data: dict[str, Any] = {**meta, "mode": "scale", "rounds": args.rounds, "copies": n, "folders": folders,
                            "cache_note": cache.note() + ("; ours runs with --no-cache (copies would hit)"
                                                          if cache.off_flag else ""),
                            "runs": {}}
    save_to = results_file("scale", meta)
    base = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        targets = {1: base / "x1", n: base / f"x{n}"}
        for folder in folders:  # hard links: the copies cost directory entries, not bytes
            _link_tree(corpus / folder, targets[1] / folder)
            for i in range(1, n + 1):
                _link_tree(corpus / folder, targets[n] / f"copy{i:03d}" / folder)
        print(f"scale: {len(folders)} folder(s), 1 copy in {targets[1]}, {n} copies in {targets[n]}", flush=True)
        for rnd in range(1, args.rounds + 1):
            for copies, target in targets.items():
                for tool in ("ours", "checkov"):
                    cmd = (ours_cmd(str(target), str(RULESET), ["--format", "json", "--json-output", "/dev/null",
                                                                 "--sarif-output", str(base / "ours.sarif"),
                                                                 *cache.cold()])
                           if tool == "ours" else checkov_cmd("-d", str(target)))
                    env = ours_env(snapshot) if tool == "ours" else checkov_env()
                    summarise = summarise_ours if tool == "ours" else summarise_checkov
                    _run_step(args, tool, cmd, env, summarise, base, data["runs"].setdefault(f"{tool}_x{copies}", {}),
                              rnd, f"x{copies}")
                    _save(save_to, data)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return finish(save_to, data, print_scale)


def print_scale(data: dict[str, Any]) -> None:
    n = data["copies"]
    print(f"Scale benchmark, {data['started']} .. {data.get('finished', '(unfinished)')}, {data['rounds']} round(s); "
          f"host {data['host']}; load average at start {data['loadavg_start']}")
    print(f"folders: {', '.join(data['folders'])}; x1 = one copy of each, x{n} = {n} copies of each (hard links); "
          f"{data.get('cache_note', '')}. Medians of wall seconds.\n")
    print(f"| tool | x1 s | x{n} s | x{n} per copy s | x{n} / ({n} * x1) | x1 max RSS MiB | x{n} max RSS MiB | "
          f"x1 tree PSS MiB | x{n} tree PSS MiB | findings x1 / x{n} | exits |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|")
    for tool in ("ours", "checkov"):
        one = data["runs"].get(f"{tool}_x1", {}).get(tool, [])
        many = data["runs"].get(f"{tool}_x{n}", {}).get(tool, [])
        a, b = _med(one, "wall"), _med(many, "wall")
        key = "open" if tool == "ours" else "failed"
        print(f"| {tool} | {_fmt(a)} | {_fmt(b)} | {_fmt(b / n if b else None, 2)} | "
              f"{_fmt(b / (n * a) if a and b else None, 2)} | {_fmt(_med(one, 'max_rss_mib'), 0)} | "
              f"{_fmt(_med(many, 'max_rss_mib'), 0)} | {_fmt(_med(one, 'tree_pss_mib'), 0)} | "
              f"{_fmt(_med(many, 'tree_pss_mib'), 0)} | {(one or [{}])[-1].get(key, '–')} / "
              f"{(many or [{}])[-1].get(key, '–')} | {_exits(one)} / {_exits(many)} |")
    print(f"\nTarget: x{n} / ({n} * x1) <= 1 (a corpus {n} times larger costs at most {n} times the time).")


# ----------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _machine() -> str:
    """CPU model, CPUs and memory, from /proc (empty elsewhere)."""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "?")
        mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal:")), 0)
    except OSError:
        return ""
    return f"{os.cpu_count()} x {cpu}, {mem / 2**20:.1f} GiB RAM"


def _version(cmd: list[str], env: dict[str, str]) -> str:
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="corpus mode: rounds over all folders (default 3)")
    parser.add_argument("--folders", help="corpus mode: comma-separated folder names (and/or 'empty')")
    parser.add_argument("--no-empty", action="store_true", help="corpus mode: skip the empty-folder start-up row")
    parser.add_argument("--precommit", action="store_true", help="measure one-file pre-commit latency instead")
    parser.add_argument("--precommit-rounds", type=int, default=5, help="pre-commit mode rounds (default 5)")
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help=f"default {DEFAULT_CORPUS}")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds before a run is killed (default 1200)")
    parser.add_argument("--sample-interval", type=float, default=0.25,
                        help="seconds between /proc samples of the process tree's PSS; 0 disables (default 0.25)")
    parser.add_argument("--snapshot", choices=("worktree", "head", "none"), default="worktree",
                        help="run our tool from a copy of the working tree taken at start (default), of git HEAD, "
                             "or straight from the editable install (none)")
    parser.add_argument("--rescan", action="store_true",
                        help="re-scan mode: per folder, ours cold, again unchanged and again with one file changed, "
                             "with one --cache-dir; Checkov once (a hard-linked copy of each folder under /tmp)")
    parser.add_argument("--cache-dir", default=os.environ.get("BENCH_CACHE_DIR"), metavar="DIR",
                        help="re-scan mode: make each folder's cache in a new folder under DIR (default: the "
                             "system's temporary folder; env BENCH_CACHE_DIR); always deleted afterwards")
    parser.add_argument("--scale", type=int, metavar="N",
                        help="scale mode: the selected folders (--folders; default all) copied N times into one "
                             "folder under /tmp (hard links), against one copy; ours (--no-cache) and Checkov")
    parser.add_argument("--report", metavar="JSON", help="only re-print the tables of a saved results file")
    args = parser.parse_args()
    if args.report:
        data = json.loads(Path(args.report).read_text())
        printer = {"precommit": print_precommit, "rescan": print_rescan, "scale": print_scale}
        printer.get(data.get("mode", ""), print_corpus)(data)
        return
    if sum(bool(x) for x in (args.precommit, args.rescan, args.scale)) > 1:
        sys.exit("bench: --precommit, --rescan and --scale are separate modes: give one")
    if args.scale is not None and args.scale < 2:
        sys.exit("bench: --scale N needs N >= 2")
    if not RULESET.is_file():
        sys.exit(f"bench: {RULESET} is missing")
    snapshot, snap_info = make_snapshot(args.snapshot)
    try:
        check_ours_works(snapshot)
        meta = {
            "started": _now(), "host": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
                                       f"Python {platform.python_version()}",
            "loadavg_start": [round(x, 2) for x in os.getloadavg()], "machine": _machine(),
            "ours_version": _version([str(VENV_BIN / "checker"), "--version"], ours_env(snapshot)),
            "checkov_version": _version([str(VENV_BIN / "checkov"), "--version"], checkov_env()),
            "snapshot": snap_info, "gnu_time": os.access(GNU_TIME, os.X_OK),
            "rss_note": "max_rss_mib: GNU time %M = largest single process of the tree (ru_maxrss of waited-for "
                        "descendants); tree_pss_mib: sampled peak of the summed PSS of all processes of the tree",
        }
        if args.precommit:
            precommit_mode(args, snapshot, meta)
        elif args.rescan:
            rescan_mode(args, snapshot, meta)
        elif args.scale:
            scale_mode(args, snapshot, meta)
        else:
            corpus_mode(args, snapshot, meta)
    finally:
        if snapshot:
            shutil.rmtree(snapshot, ignore_errors=True)


if __name__ == "__main__":
    main()
