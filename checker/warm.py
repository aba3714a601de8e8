"""A warm server for developer machines: Checkov already imported, every scan in a fresh fork.

Importing Checkov's runners costs about a second, most of a pre-commit run on one file. The
first `checker scan` on a machine starts this server in the background and scans as usual;
later scans hand their argv, working folder, environment and standard streams (the file
descriptors themselves) to the server over a Unix socket. The server forks; the child runs the
ordinary CLI on the client's streams and reports its exit code. Each scan therefore starts from
a clean copy of the pre-imported process and the results are the same as a cold run.

Off in CI (`CI` set) and with CHECKER_WARM=0. The socket lives in a folder only the user can
enter and is named after the interpreter, the versions and the tool's source files, so an
upgrade or an edit starts a new server; an idle server exits after CHECKER_WARM_IDLE seconds.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from checker import settings

PRELOAD = (  # the runners of the frameworks a repository most often has
    "checkov.kubernetes.runner", "checkov.terraform.runner", "checkov.cloudformation.runner",
    "checkov.dockerfile.runner", "checkov.github_actions.runner", "checkov.gitlab_ci.runner",
    "checkov.azure_pipelines.runner", "checkov.secrets.runner", "checkov.kustomize.runner",
    "checkov.helm.runner", "checkov.docs_generator",
)


SECRETS = ("CHECKER_SIGNING_KEY", "CHECKER_LEDGER")  # never kept in a long-lived process


def enabled() -> bool:
    return not os.environ.get("CI") and settings.current().warm and hasattr(socket, "AF_UNIX")


def socket_path() -> Path:
    """Where this exact installation's server listens."""
    source = Path(__file__).resolve().parent
    stamp = [sys.prefix, importlib.metadata.version("checker"), importlib.metadata.version("checkov")]
    stamp += [f"{p}:{p.stat().st_mtime_ns}" for p in sorted(source.rglob("*.py"))]
    key = hashlib.sha256("\n".join(map(str, stamp)).encode()).hexdigest()[:16]
    folder = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"checker-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise OSError(f"{folder} is not private to this user")
    return folder / f"warm-{key}.sock"


def run_remote(argv: Sequence[str]) -> int | None:
    """Run `checker argv` in the warm server; None when there is none (one is then started)."""
    try:
        path = socket_path()
    except OSError:
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
    except OSError:
        client.close()
        _start(path)
        return None
    with client:
        request = json.dumps({"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(client, [struct.pack("!I", len(request)) + request], [0, 1, 2])
        reply = client.recv(4)
        return struct.unpack("!i", reply)[0] if len(reply) == 4 else None


def _start(path: Path) -> None:
    # The server outlives this scan: it keeps no secret (each request brings its client's environment)
    environ = {k: v for k, v in os.environ.items() if k not in SECRETS}
    subprocess.Popen([sys.executable, "-m", "checker.warm", str(path)], stdin=subprocess.DEVNULL, env=environ,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def serve(path: Path) -> None:
    """Pre-import Checkov, then fork a child per request until idle for CHECKER_WARM_IDLE seconds."""
    server = _bind(path)
    if server is None:
        return  # another server is alive
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unlink the socket on the way out
    try:
        os.environ.setdefault("BC_SKIP_MAPPING", "TRUE")
        for module in PRELOAD:
            importlib.import_module(module)
        if socket_path() != path:
            return  # this interpreter imported other code than the client that asked for it
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
        server.settimeout(settings.current().warm_idle)
        while True:
            try:
                connection, _ = server.accept()
            except TimeoutError:
                return
            if os.fork() == 0:
                server.close()
                _child(connection)
            connection.close()
    finally:
        server.close()
        path.unlink(missing_ok=True)


def _bind(path: Path) -> socket.socket | None:
    """The listening socket (clients queue while Checkov imports); a socket file left by a dead
    server is replaced, a live one kept."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        server.listen(16)
        return server
    except OSError:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
            server.close()
            return None
        except OSError:
            path.unlink(missing_ok=True)
            server.bind(str(path))
            server.listen(16)
            return server
        finally:
            probe.close()


def _child(connection: socket.socket) -> None:
    """Become the client's `checker` process: its streams, folder and environment; reply with the exit code."""
    code = 3
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        head, fds, _, _ = socket.recv_fds(connection, 4, 3)
        size = struct.unpack("!I", head)[0]
        body = b""
        while len(body) < size:
            body += connection.recv(size - len(body))
        request = json.loads(body)
        for target, fd in enumerate(fds):
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
            code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            connection.sendall(struct.pack("!i", code))
        finally:
            os._exit(0)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
