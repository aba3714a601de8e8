"""The warm server: Checkov and the CLI already imported, every scan in a fresh fork.

Importing Checkov's runners costs about a second and a half, most of a pre-commit run on one
file. Once a server runs, a scan hands its argv, working folder, environment and standard streams
(the file descriptors themselves) to it over a Unix socket. The server forks; the child runs the
ordinary CLI on the client's streams and replies with the exit code. Each scan therefore starts
from a clean copy of the pre-imported process, and the results are those of a cold run.

Opt-in (see `warm_client.wanted`): the first scan under pre-commit or with CHECKER_WARM=1 starts
one in the background, as does `checker warm start`. One server per installation, code and
identity (`warm_client.socket_path`); it exits after CHECKER_WARM_IDLE seconds without a scan, on
`checker warm stop` or SIGTERM, and writes why to the log beside its socket, with each scan's
argv, exit code and duration.
"""
from __future__ import annotations

import dataclasses
import gc
import importlib
import json
import os
import pkgutil
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from checker import settings, warm_client
from checker.warm_client import socket_path

__all__ = ["PRELOAD", "PRELOAD_PACKAGES", "preload", "serve", "socket_path"]

PRELOAD = (  # the runners of the frameworks a repository most often has, then the CLI itself
    "checkov.kubernetes.runner", "checkov.terraform.runner", "checkov.cloudformation.runner",
    "checkov.dockerfile.runner", "checkov.github_actions.runner", "checkov.gitlab_ci.runner",
    "checkov.azure_pipelines.runner", "checkov.secrets.runner", "checkov.kustomize.runner",
    "checkov.helm.runner", "checkov.docs_generator", "checker.cli",
)
PRELOAD_PACKAGES = ("checker.policies", "checker.reporters")  # and every module in them
_REQUEST_SECONDS = 10  # a client has this long to send its request


class _Stop(Exception):
    """Why the server stops (the text goes to the log)."""


@dataclasses.dataclass
class _State:
    path: Path
    identity: str
    variables: list[str]
    idle: int
    started: float = dataclasses.field(default_factory=time.time)
    ready: float | None = None
    last_scan: float = dataclasses.field(default_factory=time.monotonic)
    scans: int = 0

    def status(self) -> dict[str, Any]:
        idle_left = max(0.0, self.idle - (time.monotonic() - self.last_scan))
        versions = dict(v.split(" ", 1) for v in warm_client.versions())
        return {"pid": os.getpid(), "since": self.started, "ready_after": self.ready, "idle_timeout": self.idle,
                "idle_left": round(idle_left), "scans": self.scans, "socket": str(self.path),
                "log": str(warm_client.log_path()), "python": sys.executable, "prefix": sys.prefix,
                "checker": versions["checker"], "checkov": versions["checkov"], "identity": self.identity,
                "variables": self.variables}


def preload() -> None:
    """Import what scans need, as a cold run would (Checkov reads its settings now: see IMPORT_ENVIRONMENT)."""
    os.environ.setdefault("BC_SKIP_MAPPING", "TRUE")
    for module in PRELOAD:
        importlib.import_module(module)
    for name in PRELOAD_PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.iter_modules(package.__path__, f"{name}."):
            importlib.import_module(info.name)


def serve(path: Path) -> None:
    """Serve scans at `path` until idle for CHECKER_WARM_IDLE seconds, stopped, or terminated."""
    environ = dict(os.environ)  # the identity is the environment the client started it with
    name = path.stem
    held = warm_client.lock(path)
    for _ in range(10):  # a client probing the lock holds it for an instant; a server, for good
        if held is not None:
            break
        time.sleep(0.02)
        held = warm_client.lock(path)
    if held is None:
        warm_client.log(f"{name}: not started: a server for this identity already runs")
        return
    os.chdir("/")  # hold no client's folder; each scan runs in its own
    state = _State(path, warm_client.identity(environ), sorted(warm_client.environment(environ)),
                   settings.current().warm_idle)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    reason = "an error"
    try:
        signal.signal(signal.SIGTERM, _terminated)
        path.unlink(missing_ok=True)  # left by a server that was killed: the lock says none runs
        server.bind(str(path))
        server.listen(64)  # clients queue while Checkov imports
        versions, variables = ", ".join(warm_client.versions()), ", ".join(state.variables) or "no variables"
        warm_client.log(f"{name}: started, server pid {os.getpid()}; {versions}; {sys.executable}; idle timeout "
                        f"{state.idle} s; identity {state.identity[:12]} ({variables})")
        preload()
        gc.freeze()  # what every scan inherits: their collectors need not walk Checkov's modules again
        if socket_path(environ) != path:
            raise _Stop("the tool's files changed while it started")
        state.ready = round(time.time() - state.started, 2)
        warm_client.log(f"{name}: ready after {state.ready:.1f} s")
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # scans are reaped by the kernel
        reason = _loop(server, state, held)
    except _Stop as stop:
        reason = str(stop)
    except BaseException as error:
        reason = f"{type(error).__name__}: {error}"
        raise
    finally:
        server.close()
        path.unlink(missing_ok=True)
        warm_client.log(f"{name}: stopped: {reason}; {state.scans} scans served")
        # The lock stays held until the process ends (os._exit below): once it is free, the server is gone.


def _terminated(*_: object) -> None:
    raise _Stop("SIGTERM")


def _loop(server: socket.socket, state: _State, held: int) -> str:
    """Accept requests until one says stop or no scan came for `idle` seconds; the reason."""
    while True:
        left = state.idle - (time.monotonic() - state.last_scan)
        if left <= 0:
            return f"idle for {state.idle} s"
        server.settimeout(left)
        try:
            connection, _ = server.accept()
        except TimeoutError:
            continue
        with connection:
            stop = _handle(connection, state, (server.fileno(), held))
        if stop:
            return stop


def _handle(connection: socket.socket, state: _State, inherited: tuple[int, int]) -> str | None:
    """Answer one request; a scan is forked off. The reason to stop, if the request is `stop`."""
    name = state.path.stem
    connection.settimeout(_REQUEST_SECONDS)
    try:
        request, fds = warm_client.receive(connection, 3)
    except warm_client.Empty:
        return None
    except (OSError, ValueError) as error:
        warm_client.log(f"{name}: a request could not be read: {error}")
        return None
    try:
        op = request.get("op")
        if op == "status":
            warm_client.send(connection, state.status())
        elif op == "stop":
            warm_client.send(connection, state.status())
            return f"checker warm stop (pid {request.get('pid')})"
        elif op != "scan" or len(fds) != 3 or not isinstance(request.get("env"), dict):
            warm_client.log(f"{name}: an unknown request: {json.dumps(op)}")
        elif warm_client.identity(request["env"]) != state.identity:
            connection.sendall(warm_client.REFUSED)
            warm_client.log(f"{name}: refused a scan whose environment is not this server's identity (it ran cold)")
        else:
            state.scans += 1
            state.last_scan = time.monotonic()
            if os.fork() == 0:
                try:
                    _child(connection, fds, request, inherited, name)
                finally:
                    os._exit(3)
    except OSError as error:
        warm_client.log(f"{name}: a request failed: {error}")
    finally:
        for fd in fds:
            os.close(fd)
    return None


def _child(connection: socket.socket, fds: list[int], request: dict[str, Any], inherited: tuple[int, int],
           name: str) -> None:
    """Become the client's `checker` process: its streams, folder and environment; log and reply the exit code."""
    started, code = time.monotonic(), 3
    try:
        gc.disable()  # as in a cold run (checker/launch.py); its workers turn it back on
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # killed, a scan dies (exit 3 for its client), never exits 0
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited:  # the listening socket and the lock belong to the server alone
            os.close(fd)
        connection.settimeout(None)
        connection.sendall(warm_client.STARTED)  # from here on the client waits for this exit code
        for target, fd in enumerate(fds):
            if fd != target:
                os.dup2(fd, target)
                os.close(fd)
        sys.stdin, sys.stdout, sys.stderr = (os.fdopen(0, "r"), os.fdopen(1, "w"), os.fdopen(2, "w"))
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["CHECKER_WARM"] = "0"
        settings.current.cache_clear()  # the client's variables, not the server's
        os.chdir(request["cwd"])
        from checker.cli import main

        try:
            main(request["argv"], prog_name="checker")
            code = 0
        except SystemExit as exit_:
            code = 0 if exit_.code is None else exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 - what the CLI did not catch fails closed (3), told on the client's stderr
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            pass
        warm_client.log(f"{name}: scan {json.dumps(request.get('argv'))} in {json.dumps(request.get('cwd'))}: "
                        f"exit {code} after {time.monotonic() - started:.2f} s")
        try:
            warm_client.send_code(connection, code)
        finally:
            os._exit(0)


if __name__ == "__main__":
    try:
        serve(Path(sys.argv[1]))
    finally:
        os._exit(0)  # no teardown of Checkov's modules: the log says how it ended
