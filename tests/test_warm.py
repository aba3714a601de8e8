"""The warm server, with the real CLI in subprocesses and a server that really forks.

Opt-in (pre-commit's PRE_COMMIT=1 or CHECKER_WARM=1; never CHECKER_WARM=0 or CI), `checker warm
start|stop|status`, one server per Checkov environment, the log; and a warm scan's output and exit
code are a cold scan's. Every test runs in a runtime folder of its own and ends with no server
left: the `runtime` fixture stops them and asserts that no process of that folder remains.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checker import warm_client

POD = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec:\n  containers:\n"
       "    - {name: a, image: nginx}\n")
RULES = ("apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: t}\n"
         "organisation: {approved_registries: [r.example.com]}\n"
         "checks: {include: [ORG-K8S-001, CKV_K8S_8]}\n")
SCAN = ("scan", "pod.yaml")
OPT_OUT = {  # environments whose scans never use a server
    "nothing set": {},
    "CHECKER_WARM=0 under pre-commit": {"CHECKER_WARM": "0", "PRE_COMMIT": "1"},
    "CI with CHECKER_WARM=1": {"CI": "true", "CHECKER_WARM": "1", "CHECKER_CACHE_KEY": "c1" * 32},
    "CI under pre-commit": {"CI": "true", "PRE_COMMIT": "1", "CHECKER_CACHE_KEY": "c1" * 32},
}  # in CI, with the key a CI job uses the result cache with (else a note says the cache went unused)
OPT_IN = {"under pre-commit": {"PRE_COMMIT": "1"}, "CHECKER_WARM=1": {"CHECKER_WARM": "1"}}


class Runtime:
    """A private XDG_RUNTIME_DIR (short: a socket's path has at most 108 bytes) and a repository to scan."""

    def __init__(self, root: Path, repo: Path) -> None:
        self.root, self.repo = root, repo
        self.env = {k: v for k, v in os.environ.items() if k not in ("CI", "CHECKER_WARM", "PRE_COMMIT")}
        self.env.update(XDG_RUNTIME_DIR=str(root), CHECKER_WARM_IDLE="300")
        self.folder = root / f"checker-{os.getuid()}"
        self.log = self.folder / "warm.log"
        self.command = [sys.executable, "-m", "checker"]

    def checker(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.command, *args], cwd=self.repo, env={**self.env, **env}, capture_output=True,
                              text=True, timeout=300)

    def servers(self) -> list[int]:
        """The live processes of a server of this folder (its scans too: a fork keeps the command line)."""
        listing = subprocess.run(["ps", "-A", "-ww", "-o", "pid=,stat=,args="], capture_output=True, text=True,
                                 check=True).stdout
        found = []
        for line in listing.splitlines():
            pid, state, command = line.split(None, 2)
            if "-m checker.warm " in command and str(self.root) in command and not state.startswith("Z"):
                found.append(int(pid))
        return found

    def status(self, **env: str) -> tuple[int, int | None, str]:
        done = self.checker("warm", "status", **env)
        pid = re.search(r"^  pid: +(\d+)$", done.stdout, re.MULTILINE)
        return done.returncode, int(pid.group(1)) if pid else None, done.stdout

    def wait_running(self, **env: str) -> int:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            code, pid, _ = self.status(**env)
            if code == 0 and pid:
                return pid
            time.sleep(0.2)
        raise AssertionError(f"no warm server came up; log:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def scans_logged(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if ": scan [" in line]

    def stop(self, *args: str) -> None:
        """Stop this folder's servers (`checker warm stop ARGS`), kill what is left, remove the folder; then
        fail if the stop failed or anything was left running."""
        stopped = self.checker("warm", "stop", *args)
        deadline = time.monotonic() + 30
        while self.servers() and time.monotonic() < deadline:
            time.sleep(0.1)
        leaked = self.servers()
        for pid in leaked:  # only processes of this folder's own servers
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stderr
        assert not leaked, f"warm server processes left running: {leaked}"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    root = Path(tempfile.mkdtemp(prefix="cw", dir="/tmp"))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pod.yaml").write_text(POD)
    (repo / ".checker.yaml").write_text(RULES)
    run = Runtime(root, repo)
    try:
        yield run
    finally:
        run.stop("--all")


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """The cold scan's output, which every warm one must match (a repository of the same files)."""
    repo = tmp_path_factory.mktemp("cold")
    (repo / "pod.yaml").write_text(POD)
    (repo / ".checker.yaml").write_text(RULES)
    outside_ci = {k: v for k, v in os.environ.items() if k != "CI"}  # as the warm scans run (CI says more)
    done = subprocess.run([sys.executable, "-m", "checker", *SCAN], cwd=repo, capture_output=True, text=True,
                          env={**outside_ci, "CHECKER_WARM": "0"}, timeout=300)
    assert done.returncode == 1, done.stderr  # the pod breaks both checks
    return done


@pytest.mark.parametrize("env", OPT_OUT.values(), ids=OPT_OUT.keys())
def test_without_opting_in_a_scan_runs_in_process_and_starts_nothing(runtime, cold, env):
    done = runtime.checker(*SCAN, **env)
    assert (done.returncode, done.stdout) == (cold.returncode, cold.stdout)
    assert runtime.servers() == []
    assert not list(runtime.root.rglob("*.sock"))


@pytest.mark.parametrize("env", OPT_IN.values(), ids=OPT_IN.keys())
def test_opting_in_starts_a_server_that_the_next_scan_uses(runtime, cold, env):
    first = runtime.checker(*SCAN, **env)  # runs in-process and starts the server in the background
    assert (first.returncode, first.stdout, first.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    pid = runtime.wait_running(**env)
    assert runtime.servers() == [pid]
    served = runtime.checker(*SCAN, **env)
    assert (served.returncode, served.stdout, served.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert len(runtime.scans_logged()) == 1, runtime.log_text()
    assert "scans served: 1" in runtime.status(**env)[2]


def test_a_running_server_is_not_used_without_opting_in(runtime, cold):
    assert runtime.checker("warm", "start").returncode == 0
    for env in OPT_OUT.values():
        done = runtime.checker(*SCAN, **env)
        assert (done.returncode, done.stdout) == (cold.returncode, cold.stdout)
    assert runtime.scans_logged() == []
    assert "scans served: 0" in runtime.status()[2]


def test_start_stop_and_status(runtime):
    code, pid, text = runtime.status()
    assert (code, pid) == (1, None)
    assert text.startswith("warm server: not running\n")
    assert "scans here:   run in-process (neither PRE_COMMIT=1" in text
    stopped = runtime.checker("warm", "stop")
    assert (stopped.returncode, stopped.stdout) == (0, "no warm server was running\n")

    started = runtime.checker("warm", "start")
    assert started.returncode == 0, started.stderr
    pid = int(re.match(r"warm server started: pid (\d+), since ", started.stdout).group(1))
    assert "note: scans here still run in-process" in started.stderr  # started by hand, yet not opted in
    again = runtime.checker("warm", "start", CHECKER_WARM="1")
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.startswith(f"warm server already running: pid {pid}, since ")
    assert runtime.servers() == [pid]

    code, shown, text = runtime.status(CHECKER_WARM="1")
    assert (code, shown) == (0, pid)
    socket_path = Path(re.search(r"^  socket: +(\S+)$", text, re.MULTILINE).group(1))
    assert socket_path.parent == runtime.folder and socket_path.is_socket()
    assert f"  log:          {runtime.log}\n" in text
    assert "  idle timeout: 300 s (exits in " in text
    assert re.search(r"^  identity: +checker \S+, checkov \S+; .*; environment [0-9a-f]{12} \(", text, re.MULTILINE)
    assert "  scans here:   handed to it (CHECKER_WARM=1)" in text

    stopped = runtime.checker("warm", "stop")
    assert stopped.returncode == 0
    assert stopped.stdout.startswith(f"stopped the warm server pid {pid} (0 scans since ")
    assert runtime.servers() == []
    assert not socket_path.exists()
    assert runtime.status()[0] == 1
    assert "stopped: checker warm stop" in runtime.log_text()


def test_a_changed_checkov_variable_never_meets_the_old_server(runtime, cold):
    assert runtime.checker("warm", "start").returncode == 0
    first = runtime.wait_running()
    changed = {"CHECKOV_OUTPUT_CODE_LINE_LIMIT": "7"}  # read when Checkov is imported (common/output/record.py)
    code, _, text = runtime.status(**changed)
    assert code == 1, text
    assert f"  pid {first} since " in text  # listed among this installation's other servers

    # the server itself refuses a scan whose environment is not its own: the client runs it in-process
    asked = subprocess.run(
        [sys.executable, "-c", (
            "import os, socket, sys; from checker import warm_client as w\n"
            "c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])\n"
            "w.send(c, {'op': 'scan', 'argv': ['scan', 'pod.yaml'], 'cwd': os.getcwd(), 'env': dict(os.environ)}, "
            "[0, 1, 2])\nprint(c.recv(5))"),
         re.search(r"^  socket: +(\S+)$", runtime.status()[2], re.MULTILINE).group(1)],
        cwd=runtime.repo, env={**runtime.env, **changed}, capture_output=True, text=True, timeout=60)
    assert asked.stdout == f"{warm_client.REFUSED!r}\n", asked.stderr + runtime.log_text()
    assert "refused a scan whose environment is not this server's identity" in runtime.log_text()

    scan = runtime.checker(*SCAN, CHECKER_WARM="1", **changed)  # in-process; starts a server of its own
    assert (scan.returncode, scan.stdout) == (cold.returncode, cold.stdout)
    second = runtime.wait_running(**changed)
    assert second != first
    assert "CHECKOV_OUTPUT_CODE_LINE_LIMIT" in runtime.status(**changed)[2]
    assert "CHECKOV_OUTPUT_CODE_LINE_LIMIT" not in runtime.status()[2]
    assert sorted(runtime.servers()) == sorted([first, second])
    assert runtime.scans_logged() == []  # neither server ran a scan of the other environment


@pytest.mark.parametrize("name", ["CHECKOV_MAX_FILE_SIZE", "CKV_IGNORED_DIRECTORIES", "BC_SKIP_MAPPING", "LOG_LEVEL",
                                  "RENDER_VARIABLES_ASYNC", "PROXY_URL", "TQDM_DISABLE", "PYTHONIOENCODING"])
def test_each_setting_read_at_import_names_another_server(monkeypatch, name):
    root = Path(tempfile.mkdtemp(prefix="cw", dir="/tmp"))
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(root))
        plain = dict(os.environ)
        assert warm_client.socket_path({**plain, name: "1"}) != warm_client.socket_path(plain)
        assert warm_client.socket_path({**plain, "SOME_OTHER_SETTING": "1"}) == warm_client.socket_path(plain)
    finally:
        shutil.rmtree(root)


# What the server's import reads outside its identity, and why that is safe. The probe runs in a
# bare environment, so tqdm's listing of every variable sees only the few set there.
NOT_IDENTITY = {
    # Checkov's upload metadata for CI platforms (checker never uploads; CI never uses a server)
    "$GITHUB_REF", "GITHUB_ACTIONS", "GITHUB_ACTOR", "GITHUB_BASE_REF", "GITHUB_REPOSITORY", "GITHUB_RUN_NUMBER",
    "GITHUB_SERVER_URL", "GITHUB_SHA", "GITLAB_CI", "CI_COMMIT_AUTHOR", "CI_COMMIT_SHA", "CI_COMMIT_SHORT_SHA",
    "CI_MERGE_REQUEST_ID", "CI_MERGE_REQUEST_PROJECT_URL", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "CI_PIPELINE_ID",
    "CI_PIPELINE_URL", "CI_PROJECT_URL", "CI_SERVER_URL", "GIT_BRANCH", "BITBUCKET_BRANCH", "BITBUCKET_BUILD_NUMBER",
    "BITBUCKET_COMMIT", "BITBUCKET_GIT_HTTP_ORIGIN", "BITBUCKET_PR_DESTINATION_BRANCH", "BITBUCKET_PR_ID",
    "JENKINS_URL", "BUILD_NUMBER", "BUILD_URL", "ghprbActualCommit", "ghprbActualCommitAuthor", "ghprbPullId",
    "ghprbPullLink", "ghprbSourceBranch", "ghprbTargetBranch",
    # switches of C extensions, memory hints and tracing in dependencies: speed, never output
    "AIOHTTP_NO_EXTENSIONS", "FROZENLIST_NO_EXTENSIONS", "MULTIDICT_NO_EXTENSIONS", "PROPCACHE_NO_EXTENSIONS",
    "YARL_NO_EXTENSIONS", "NPY_PROMOTION_STATE", "NUMPY_MADVISE_HUGEPAGE", "OPENBLAS_MAIN_FREE",
    "PYDANTIC_DISABLE_PLUGINS", "GIT_PYTHON_GIT_EXECUTABLE", "GIT_PYTHON_TRACE", "WCWIDTH_PYTHON", "SSLKEYLOGFILE",
    "_PYTHON_PROJECT_BASE", "_PYTHON_SYSCONFIGDATA_NAME",
    # who the user is: the same for every client, as the socket's folder is the user's own
    "USER", "LOGNAME", "LNAME", "USERNAME",
    # set in the probe's bare environment, so tqdm's listing sees it
    "PATH",
}


def test_every_variable_the_server_reads_at_import_is_part_of_its_identity():
    probe = (
        "import json, os, sys\n"
        "seen = set()\n"
        "class Watched(type(os.environ)):\n"
        "    def __getitem__(self, key):\n        seen.add(key); return super().__getitem__(key)\n"
        "    def __contains__(self, key):\n        seen.add(key); return super().__contains__(key)\n"
        "    def get(self, key, default=None):\n        seen.add(key); return super().get(key, default)\n"
        "e = os.environ\n"
        "os.environ = Watched(e._data, e.encodekey, e.decodekey, e.encodevalue, e.decodevalue)\n"
        "from checker import warm\n"
        "warm.preload()\n"
        "print(json.dumps(sorted(seen)))\n")
    bare = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    if "PYTHONPATH" in os.environ:
        bare["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = subprocess.run([sys.executable, "-c", probe], env=bare, capture_output=True, text=True, timeout=300,
                          cwd=tempfile.gettempdir())
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout)
    assert "CHECKOV_OUTPUT_CODE_LINE_LIMIT" in read and "LOG_LEVEL" in read  # the probe sees Checkov's reads
    outside = [name for name in read if name not in warm_client.environment({name: "x"}) and name not in NOT_IDENTITY]
    assert outside == [], "read at import, yet not part of the warm server's identity (warm_client.IMPORT_ENVIRONMENT)"


def test_the_log_records_each_scan_and_stays_bounded(runtime, cold):
    runtime.folder.mkdir(mode=0o700)
    runtime.log.write_bytes(b"x" * (warm_client.LOG_LIMIT + 1))  # a full log from earlier servers
    assert runtime.checker("warm", "start").returncode == 0
    assert (runtime.folder / "warm.log.1").stat().st_size == warm_client.LOG_LIMIT + 1
    for _ in range(2):
        served = runtime.checker(*SCAN, "--fail-on", "never", CHECKER_WARM="1")
        assert served.returncode == 0, served.stderr
    assert runtime.checker(*SCAN, CHECKER_WARM="1").returncode == 1
    assert runtime.checker("warm", "stop").returncode == 0
    deadline = time.monotonic() + 15  # the server writes its last line as it goes, maybe after stop returns
    while ": stopped: " not in runtime.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = runtime.log_text().splitlines()
    assert re.search(r"warm-[0-9a-f]+-[0-9a-f]+: started, server pid \d+; checker \S+, checkov \S+; ", lines[0])
    assert re.search(r": ready after [0-9.]+ s$", lines[1])
    scans = runtime.scans_logged()
    assert len(scans) == 3
    expected = f' in {json.dumps(str(runtime.repo))}: exit '
    assert all(f': scan ["scan", "pod.yaml", "--fail-on", "never"]{expected}0 after ' in s for s in scans[:2])
    assert re.search(r': scan \["scan", "pod.yaml"\] in .*: exit 1 after [0-9.]+ s$', scans[2])
    assert re.search(r": stopped: checker warm stop \(pid \d+\); 3 scans served$", lines[-1])


def test_an_idle_server_exits_and_says_why(runtime):
    assert runtime.checker("warm", "start", CHECKER_WARM_IDLE="3").returncode == 0
    assert runtime.servers()
    deadline = time.monotonic() + 30
    while runtime.servers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runtime.servers() == []
    assert runtime.status(CHECKER_WARM_IDLE="3")[0] == 1
    assert "stopped: idle for 3 s; 0 scans served" in runtime.log_text()


def test_a_socket_left_by_a_killed_server_is_replaced_or_removed(runtime):
    text = runtime.status()[2]
    path = Path(re.search(r"^  socket: +(\S+) \(when it runs\)$", text, re.MULTILINE).group(1))
    for stale in (path, path.with_name(f"warm-{path.name.split('-')[1]}-0123456789abcdef.sock")):
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(str(stale))
        dead.close()  # the file stays, nobody listens: as after a kill -9
    started = runtime.checker("warm", "start")
    assert started.returncode == 0 and started.stdout.startswith("warm server started: pid "), started.stderr
    stopped = runtime.checker("warm", "stop")
    assert stopped.returncode == 0 and stopped.stdout.startswith("stopped the warm server pid "), stopped.stderr
    assert not list(runtime.folder.glob("*.sock"))  # the other one was a stale socket: removed


def test_a_scan_never_runs_code_from_the_scanned_folder(runtime, cold):
    """`-m` puts the working folder first on the import path: the server must not start in the repository."""
    trap = runtime.repo / "checker"
    trap.mkdir()
    (trap / "__init__.py").write_text(f"open({str(runtime.repo / 'pwned')!r}, 'w').close()\n")
    (trap / "warm.py").write_text("")
    runtime.command = [str(Path(sys.executable).parent / "checker")]  # the console script, as pre-commit runs it
    assert runtime.checker(*SCAN, CHECKER_WARM="1").stdout == cold.stdout  # starts the server
    pwned, deadline = runtime.repo / "pwned", time.monotonic() + 60
    while not pwned.exists() and runtime.status()[0] != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pwned.exists(), "the warm server imported the scanned folder's checker/"
    assert runtime.status()[0] == 0


def test_a_scan_killed_in_the_server_fails_closed(runtime):
    """The server's scan dies (SIGTERM, as a server gets): exit 3 with a reason, never 0, never run twice."""
    slow = runtime.repo / "slow"
    slow.mkdir()
    marker = runtime.repo / "running"
    (slow / "hang.py").write_text(f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(120)\n")
    (runtime.repo / ".checker.yaml").write_text(
        "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: t}\n"
        "organisation: {approved_registries: [r.example.com]}\n"
        "checks:\n  include: [ORG-K8S-001]\n  policy_paths: [./slow]\n")
    assert runtime.checker("warm", "start").returncode == 0
    server = runtime.wait_running(CHECKER_WARM="1")
    client = subprocess.Popen([*runtime.command, *SCAN, "--trust-repo-policies"], cwd=runtime.repo,
                              env={**runtime.env, "CHECKER_WARM": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), runtime.log_text()
        marker.unlink()
        scans = [pid for pid in runtime.servers() if pid != server]
        assert scans
        for pid in scans:
            os.kill(pid, signal.SIGTERM)
        out, err = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == 3, (out, err)
    assert "checker: error: the warm server's scan ended without an exit code" in err
    assert not marker.exists()  # not run again in-process
    assert runtime.status(CHECKER_WARM="1")[:2] == (0, server)  # the server itself lives on
