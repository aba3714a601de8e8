"""The progress line: only on a terminal, outside CI, after two seconds; throttled, cut to the terminal's
width, cleared at the end, never failing a scan; and, through the real CLI on a real pseudo-terminal,
never in a pipe and never in the report."""
from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
import tty
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

import pytest
from test_warm import Runtime

from checker import settings
from checker.engines import workers
from checker.progress import DELAY, INTERVAL, Progress, Step, duration, fit, line, wanted

CHECKOV = Step("Checkov", 3, 5, "frameworks", ("terraform", "secrets"))
ERASE = "\r\x1b[K"


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def screen(monkeypatch) -> io.StringIO:
    """An in-memory stderr, 200 columns wide (COLUMNS: what shutil reads for a stream that is no terminal)."""
    monkeypatch.setenv("COLUMNS", "200")
    return io.StringIO()


def progress_on(screen: TextIO, clock: Clock, files: int = 1234) -> Progress:
    progress = Progress(screen, clock)
    progress.files = files
    return progress


def test_nothing_is_drawn_before_two_seconds_and_nothing_is_left_to_clear(screen, clock):
    progress = progress_on(screen, clock)
    for now in (0.0, 1.0, DELAY - 0.01):
        clock.now = now
        progress.show(CHECKOV)
        progress.tick()
    progress.clear()
    assert screen.getvalue() == ""


def test_after_two_seconds_one_line_says_what_runs(screen, clock):
    progress = progress_on(screen, clock)
    clock.now = DELAY + 12
    progress.show(CHECKOV)
    assert screen.getvalue() == ("\rchecker: 1,234 files, 14 s; Checkov 3 of 5 frameworks done "
                                 "(running: terraform, secrets)\x1b[K")


def test_redraws_are_throttled_and_the_same_text_is_not_written_again(screen, clock):
    progress = progress_on(screen, clock)
    clock.now = DELAY
    progress.show(Step("our checks", 0, 2, "rules", ("ORG-A",)))
    clock.now = DELAY + INTERVAL / 2
    progress.show(Step("our checks", 1, 2, "rules", ("ORG-B",)))  # too soon: not drawn yet
    assert screen.getvalue().count("\r") == 1
    assert "ORG-B" not in screen.getvalue()
    clock.now = DELAY + INTERVAL
    progress.tick()  # due: the newest step is drawn
    assert screen.getvalue().count("\r") == 2
    assert screen.getvalue().endswith("our checks 1 of 2 rules done (running: ORG-B)\x1b[K")
    clock.now = DELAY + 2 * INTERVAL
    progress.tick()  # due, but the same text (the same second): nothing written
    assert screen.getvalue().count("\r") == 2
    clock.now = DELAY + 1
    progress.tick()  # a second later the elapsed time moved
    assert screen.getvalue().count("\r") == 3
    assert "files, 3 s;" in screen.getvalue().rsplit("\r", 1)[1]


def test_the_line_is_erased_at_the_end_once(screen, clock):
    progress = progress_on(screen, clock)
    clock.now = DELAY
    progress.show(CHECKOV)
    progress.clear()
    assert screen.getvalue().endswith("\x1b[K" + ERASE)
    drawn = screen.getvalue()
    progress.clear()
    assert screen.getvalue() == drawn


def test_the_line_is_cut_to_the_terminal_width(screen, clock, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    progress = progress_on(screen, clock)
    clock.now = DELAY
    progress.show(CHECKOV)
    text = screen.getvalue().removeprefix("\r").removesuffix("\x1b[K")
    assert text == "checker: 1,234 files, 2 s; Checkov 3..."
    assert len(text) == 39  # never the last column: some terminals wrap there, and \r then erases nothing
    assert fit("short", 40) == "short"


def test_the_line_reads_well(clock):
    assert line(Step("our checks", 0, 40, "rules"), 7, 2.5) == "checker: 7 files, 2 s; our checks 0 of 40 rules done"
    assert duration(59.9) == "59 s"
    assert duration(125) == "2 min 05 s"
    hostile = line(Step("our checks", 0, 1, "rules", ("ORG-\x1b[2J",)), 1, 3)  # a plugin names its own rules
    assert "\x1b" not in hostile
    assert hostile.endswith("(running: ORG-\\x1b[2J)")


def test_the_workers_hook_counts_frameworks_once_whatever_their_jobs(screen, clock):
    progress = progress_on(screen, clock)
    clock.now = DELAY
    names = ["terraform", "terraform", "secrets", "kubernetes"]  # kubernetes came from the cache: never runs
    watch = progress.watcher("Checkov", "frameworks", names, str)
    watch(["terraform"], ["terraform", "secrets"])
    assert screen.getvalue().endswith("Checkov 1 of 3 frameworks done (running: terraform)\x1b[K")
    clock.now += INTERVAL
    watch(["secrets", "terraform"], [])
    assert screen.getvalue().endswith("Checkov 1 of 3 frameworks done (running: terraform, secrets)\x1b[K")
    clock.now += INTERVAL
    watch([], [])
    assert screen.getvalue().endswith("Checkov 3 of 3 frameworks done\x1b[K")


def test_run_all_tells_its_hook_what_runs_and_what_waits():
    seen: list[tuple[list[int], list[int]]] = []
    callbacks = workers.Callbacks(work=lambda job: (time.sleep(0.3), job)[1], lost=lambda job, why: (-1, []),
                                  unstarted=lambda job, why: -1, failed=lambda job, error: -1)
    jobs = [1, 2, 3]
    results = workers.run_all(jobs, workers.Fence(512, 60), callbacks,
                              lambda running, waiting: seen.append((list(running), list(waiting))))
    assert sorted(results) == jobs
    width = min(workers.cpus(), len(jobs))
    assert seen[0] == (jobs[:width], jobs[width:])  # first told right after the first workers start
    assert {job for running, _ in seen for job in running} == set(jobs)
    assert all(sorted(running + waiting) == sorted(set(running + waiting)) for running, waiting in seen)


@pytest.fixture
def terminal() -> Iterator[TextIO]:
    """The writing end of a real pseudo-terminal, as a text stream."""
    reader, writer = pty.openpty()
    stream = os.fdopen(writer, "w")
    try:
        yield stream
    finally:
        stream.close()
        os.close(reader)


@pytest.mark.parametrize(("environ", "shown"), [
    ({"TERM": "xterm-256color"}, True),
    ({"TERM": "xterm", "CI": "true"}, False),
    ({"TERM": "xterm", "GITHUB_ACTIONS": "true"}, False),
    ({"TERM": "xterm", "TF_BUILD": "True"}, False),  # Azure Pipelines sets no CI
    ({"TERM": "dumb"}, False),  # Emacs' shell, some IDE consoles: no erasing
    ({}, False),
])
def test_shown_only_on_a_terminal_that_can_erase_outside_ci(terminal, environ, shown):
    assert wanted(terminal, environ) is shown


def test_never_on_a_pipe_a_file_or_a_closed_stream(tmp_path):
    environ = {"TERM": "xterm"}
    reader, writer = os.pipe()
    with os.fdopen(writer, "w") as pipe, open(tmp_path / "log", "w") as file:
        assert not wanted(pipe, environ)
        assert not wanted(file, environ)
    assert not wanted(pipe, environ)  # closed now
    assert not wanted(io.StringIO(), environ)
    assert not wanted(None, environ)  # pythonw: no stderr at all
    os.close(reader)


def test_a_broken_stderr_turns_progress_off_and_never_fails_the_scan(clock):
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: every write is EPIPE
    hung_up = os.fdopen(writer, "w")
    closed = io.StringIO()
    closed.close()
    for stream in (hung_up, closed):
        progress = progress_on(stream, clock)
        clock.now += DELAY
        progress.show(CHECKOV)  # no exception, here or after
        clock.now += 1
        progress.show(CHECKOV)
        progress.clear()
    with contextlib.suppress(BrokenPipeError):  # the text still in its buffer fails again as it closes
        hung_up.close()


# The end-to-end scan: a real ruleset whose own Python check takes a tenth of a second a file, so that the
# scan takes longer than the delay on any machine, however fast, with no knob in the tool; and one Checkov
# check, so that Checkov's workers report too.
SLOW_CHECK = '''
import time

from checker.policy import Violation, policy


@policy(id="ORG-SLOW-001", title="Takes its time", kinds=["terraform"], severity="low", remediation="-")
def slow(doc, ctx):
    """Looks at each file for a tenth of a second."""
    time.sleep(0.1)
    yield Violation("looked at slowly", 1, "file")
'''
TF = 'resource "aws_security_group" "g{n}" {{\n  ingress {{\n    from_port = 22\n    to_port = 22\n' \
     '    protocol = "tcp"\n    cidr_blocks = ["0.0.0.0/0"]\n  }}\n}}\n'
FILES = 30  # three seconds of the slow check


def slow_scan(tmp_path: Path, include: list[str]) -> tuple[Path, Path]:
    """A repository of FILES Terraform files and a ruleset (outside it, so trusted) with the slow check."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for n in range(FILES):
        (repo / f"g{n}.tf").write_text(TF.format(n=n))
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "slow.py").write_text(SLOW_CHECK)
    rules = tmp_path / "rules.yaml"
    rules.write_text("apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: progress, version: '1'}\n"
                     f"checks:\n  include: {json.dumps(include)}\n  policy_paths: [checks]\n")
    return repo, rules


def developer_env(base: Mapping[str, str] = os.environ, warm: str = "0") -> dict[str, str]:
    """A developer's terminal session: no CI variable, a TERM that can erase, the warm server off (or on)."""
    env = {k: v for k, v in base.items() if k not in settings.CI_VARIABLES}
    return {**env, "TERM": "xterm", "CHECKER_WARM": warm}


def on_terminal(args: list[str], cwd: Path, stdout: int | None,
                env: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """Run the CLI with stderr on a new pseudo-terminal (120 columns, raw: bytes pass as written), and
    stdout there too when `stdout` is None; its exit code and every byte the terminal received."""
    reader, writer = pty.openpty()
    tty.setraw(writer)
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "checker", *args], cwd=cwd, env=env or developer_env(),
                               stdin=subprocess.DEVNULL, stdout=writer if stdout is None else stdout, stderr=writer)
    os.close(writer)
    received = bytearray()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ended = process.poll() is not None  # asked before looking: what it wrote before it ended is read below
        if select.select([reader], [], [], 1)[0]:
            try:
                chunk = os.read(reader, 65536)
            except OSError:  # EIO: every writer is gone
                break
            if not chunk:
                break
            received += chunk
        elif ended:
            break
    os.close(reader)
    return process.wait(timeout=60), bytes(received)


def test_a_long_scan_shows_progress_on_a_terminal_and_nothing_in_a_pipe_with_the_same_report(tmp_path):
    repo, rules = slow_scan(tmp_path, ["ORG-SLOW-001", "CKV_AWS_24"])
    args = ["scan", str(repo), "-r", str(rules), "--no-cache"]
    with open(tmp_path / "report.txt", "wb") as report:
        code, terminal = on_terminal(args, tmp_path, report.fileno())
    piped = subprocess.run([sys.executable, "-m", "checker", *args], cwd=tmp_path, env=developer_env(),
                           capture_output=True, timeout=300)
    shown = terminal.decode()
    assert code == piped.returncode == 0, piped.stderr.decode()
    assert re.search(rf"\rchecker: {FILES} files, \d+ s; our checks 0 of 1 rules done \(running: ORG-SLOW-001\)"
                     r"\x1b\[K", shown)
    assert "; Checkov 0 of 1 frameworks done (running: terraform)" in shown
    assert shown.endswith(ERASE), "the line is erased at the end"
    assert piped.stderr == b""
    assert (tmp_path / "report.txt").read_bytes() == piped.stdout
    assert b"ORG-SLOW-001" in piped.stdout and b"CKV_AWS_24" in piped.stdout


@pytest.mark.parametrize("command", ["scan --format json", "baseline update"])
def test_on_one_terminal_the_report_follows_the_erased_line_untouched(tmp_path, command):
    repo, rules = slow_scan(tmp_path, ["ORG-SLOW-001"])
    words = command.split()
    args = [*words, str(repo)] if words[0] == "scan" else [*words, str(tmp_path / "base.sarif"), str(repo)]
    code, terminal = on_terminal([*args, "-r", str(rules), "--no-cache"], tmp_path, None)
    progress, _, report = terminal.decode().rpartition(ERASE)
    assert "our checks 0 of 1 rules done (running: ORG-SLOW-001)" in progress
    assert "\x1b" not in report and "\r" not in report
    assert code == 0
    if words[0] == "scan":
        assert [f["rule"] for f in json.loads(report)["findings"]] == ["ORG-SLOW-001"] * FILES
    else:
        assert report == f"{tmp_path / 'base.sarif'}: {FILES} finding(s) baselined: {FILES} new, 0 unchanged, " \
                         "0 fixed since the last baseline\n"


def test_a_scan_in_the_warm_server_draws_on_the_client_terminal(tmp_path):
    """The server's fork takes over the client's descriptors and environment: its stderr is the client's
    terminal, so the line is drawn and erased there as in a cold scan (and never on the server's own)."""
    repo, rules = slow_scan(tmp_path, ["ORG-SLOW-001"])
    runtime = Runtime(Path(tempfile.mkdtemp(prefix="cw", dir="/tmp")), repo)  # short: a socket path is short
    env = developer_env(runtime.env, warm="1")
    try:
        started = runtime.checker("warm", "start", CHECKER_WARM="1")
        assert started.returncode == 0, started.stderr
        code, terminal = on_terminal(["scan", ".", "-r", str(rules), "--no-cache", "--format", "json"], repo, None, env)
        assert len(runtime.scans_logged()) == 1, runtime.log_text()  # the server ran it
        progress, _, report = terminal.decode().rpartition(ERASE)
        assert code == 0
        assert "our checks 0 of 1 rules done (running: ORG-SLOW-001)" in progress
        assert len(json.loads(report)["findings"]) == FILES
    finally:
        runtime.stop()
