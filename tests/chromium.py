"""A real headless Chromium for tests of the HTML report: find it, install it when we may, drive it.

Why a real browser: the HTML report's promises (self-contained, readable without JavaScript,
a PR title full of markup shows as text) are about what a browser does with the file, which only
a browser can tell. Debian's `chromium` package is the one CI installs (the machine's closed
network rules out any tool that downloads a browser of its own).

Finding it: /usr/bin/chromium, then chromium-browser, google-chrome, google-chrome-stable on PATH.
When none is there, apt is available and we are root (CI is), `apt-get install -y
--no-install-recommends chromium` (an `apt-get update` first when the package is unknown). When it
still cannot be had, a test skips with the reason, except under CI (the `CI` variable set, as
GitHub Actions and GitLab CI do): there a missing browser fails the run, because a report test
that silently skipped in CI would prove nothing.

Chromium starts as the machine notes say it must here: headless, no sandbox (we are root),
no GPU, no QUIC, no first-run, no background networking, component updates or sync (each of
which reaches out to a network that refuses it), and a new empty --user-data-dir per run, so
runs never share state. Every run is bounded by a timeout; a hung browser is killed with its
process group, never by name.
"""
from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")
INSTALL_TIMEOUT = 900  # seconds: apt-get update plus the chromium package and its libraries
RUN_TIMEOUT = 60  # seconds for one screenshot or DOM dump (a cold start takes ~1-3 s here)


def _find() -> str | None:
    for candidate in CANDIDATES:
        found = candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if found:
            return found
    return None


def _install() -> str:
    """Install Debian's chromium with apt-get; '' when done, else why it could not be."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    try:
        known = subprocess.run(["apt-cache", "show", "chromium"], capture_output=True, timeout=60, env=env, check=False)
        if known.returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True, timeout=INSTALL_TIMEOUT, env=env, check=True)
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=env, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return f"{' '.join(command)} failed: {error}"
    if done.returncode != 0:
        return f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-500:]}"
    return ""


@functools.lru_cache(maxsize=1)
def _locate() -> tuple[str | None, str]:
    """(the browser's path, '') or (None, why not); installs at most once per test run."""
    found = _find()
    if found:
        return found, ""
    problem = _install()
    found = _find()
    if found:
        return found, ""
    return None, f"no Chromium (looked for {', '.join(CANDIDATES)}); installing it: {problem or 'no binary after'}"


def browser() -> str:
    """The Chromium executable; skips the test when there is none (fails it under CI)."""
    found, why = _locate()
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the browser tests must run: {why}")
    pytest.skip(why)


def _run(arguments: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run Chromium with FLAGS and a new empty profile; kill its process group if it outlives `timeout`."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [browser(), *FLAGS, f"--user-data-dir={profile}", *arguments]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            raise AssertionError(f"Chromium did not finish within {timeout} s: {err.strip()[-1000:]}") from None
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        return subprocess.CompletedProcess(command, process.returncode, out, err)


def screenshot(html_path: str | os.PathLike[str], png_path: str | os.PathLike[str], *, width: int = 1280,
               height: int = 1600, timeout: float = RUN_TIMEOUT) -> Path:
    """Render the local file `html_path` and write a PNG of the first `width` x `height` pixels to `png_path`."""
    target = Path(png_path).resolve()
    target.unlink(missing_ok=True)
    done = _run([f"--window-size={width},{height}", f"--screenshot={target}",
                 Path(html_path).resolve().as_uri()], timeout)
    if not target.is_file() or target.stat().st_size == 0:
        raise AssertionError(f"Chromium wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-1000:]}")
    return target


def dump_dom(html_path: str | os.PathLike[str], *, timeout: float = RUN_TIMEOUT) -> str:
    """The DOM Chromium builds from the local file `html_path`, serialised (after any script would have run)."""
    done = _run(["--dump-dom", Path(html_path).resolve().as_uri()], timeout)
    if done.returncode != 0 or "<html" not in done.stdout:
        raise AssertionError(f"Chromium --dump-dom exited {done.returncode}: {done.stderr.strip()[-1000:]}")
    return done.stdout
