"""The warm server's client side, and what the server shares with it: when scans use a server,
where its socket and log are, what makes one server's identity, and the wire format.

The server itself is `checker/warm.py`; `checker warm start|stop|status` is `warm_commands.py`.
Kept free of heavy imports: the console script imports this module before every scan.

Opt-in, as a daemon users trust should be: a scan is handed to the server only under pre-commit
(which sets PRE_COMMIT=1 for its hooks) or with CHECKER_WARM=1; CHECKER_WARM=0 and CI (`CI` set)
never use one; anything else runs in-process and starts no process.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import struct
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checker import settings

if TYPE_CHECKING:
    import subprocess

SECRETS = ("CHECKER_SIGNING_KEY", "CHECKER_LEDGER", "CHECKER_CACHE_KEY")  # never kept in a long-lived process

# What the server's import of Checkov and the CLI reads from the environment beyond
# settings.CHECKOV_ENVIRONMENT (CHECKOV_*, CKV_*, BC_*, RENDER_*, ENABLE_*, CREATE_*, TF_*, ...).
# Found by running that import with os.environ watched (tests/test_warm.py does it again and fails
# on a name that is in neither list). A client whose values differ gets a server of its own, since a
# forked child keeps what its server read. "*" ends a prefix.
#   Checkov's env_vars_config and module constants: LOG_LEVEL, RUN_IN_DOCKER, ANSI_COLORS_DISABLED,
#     WORKDIR, PRISMA_API_URL, PROXY_*, HTTPS_PROXY, REQUEST_MAX_TRIES, SLEEP_BETWEEN_REQUEST_TRIES;
#   what it imports: DETECT_SECRETS_* (bc-detect-secrets), CUSTOM_ACCESS_OVERRIDES_FILE (policy_sentry's
#     IAM data), TQDM_* (tqdm's defaults), NO_COLOR, FORCE_COLOR (termcolor), PYCHARM_HOSTED (colorama);
#   the interpreter: PYTHON* (import path, encodings, ...), LANG, LANGUAGE and LC_* (encodings, messages),
#     HOME, TMPDIR, TEMP, TMP (folders settled once per process).
# Left out: the CI platforms' variables (GITHUB_*, CI_*, BITBUCKET_*, JENKINS_URL, ...) that Checkov's
# upload metadata reads (checker never uploads, and CI never uses the server); switches of C
# extensions and debug tracing in aiohttp, yarl, numpy, GitPython and the like (speed, not output);
# and what tqdm sees by listing the whole environment (PATH, PWD, TERM, SHLVL, ...): it keeps TQDM_*.
IMPORT_ENVIRONMENT = (
    "LOG_LEVEL", "RUN_IN_DOCKER", "ANSI_COLORS_DISABLED", "WORKDIR", "PRISMA_*", "PROXY_*", "HTTPS_PROXY",
    "REQUEST_MAX_TRIES", "SLEEP_BETWEEN_REQUEST_TRIES", "DETECT_SECRETS_*", "CUSTOM_ACCESS_OVERRIDES_FILE",
    "TQDM_*", "NO_COLOR", "FORCE_COLOR", "PYCHARM_HOSTED",
    "PYTHON*", "LANG", "LANGUAGE", "LC_*", "HOME", "TMPDIR", "TEMP", "TMP",
)

LOG_NAME = "warm.log"
LOG_LIMIT = 1024 * 1024  # then warm.log becomes warm.log.1 (the one before is dropped): at most 2 MiB
STARTED = b"+"  # the first byte of the reply to a scan that runs (its exit code follows)
REFUSED = b"-"  # the reply to a scan whose environment is not this server's: the client runs it itself
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
_FORMAT = struct.Struct("!I")
_CODE = struct.Struct("!i")


class Empty(ValueError):
    """A connection that closed without a word (a probe of whether anything listens)."""


class Unavailable(OSError):
    """No warm server can be used here (no private folder, a path too long, ...); the reason is the text."""


def wanted() -> tuple[bool, str]:
    """Whether scans in this environment go to the warm server, and why (for `checker warm status`)."""
    environ = os.environ
    if not _supported():
        return False, _UNSUPPORTED
    ci = settings.ci(environ)
    if ci:
        return False, f"{ci} is set: a CI job never uses the warm server"
    warm = settings.current().warm
    if warm is not None:
        return warm, "CHECKER_WARM=1" if warm else "CHECKER_WARM=0"
    if environ.get("PRE_COMMIT") == "1":
        return True, "under pre-commit (PRE_COMMIT=1)"
    return False, "neither PRE_COMMIT=1 (pre-commit's hooks) nor CHECKER_WARM=1 is set"


def enabled() -> bool:
    return wanted()[0]


def _supported() -> bool:
    return hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds") and hasattr(os, "fork")


_UNSUPPORTED = "this platform has no Unix sockets to hand a terminal over, or no fork"


def folder() -> Path:
    """This user's private folder of sockets, locks and the log."""
    if not _supported():
        raise Unavailable(_UNSUPPORTED)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime:
        import tempfile

        runtime = tempfile.gettempdir()
    base = Path(runtime) / f"checker-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        status = base.stat()
    except OSError as error:
        raise Unavailable(f"{base}: {error.strerror or error}") from error
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise Unavailable(f"{base} is not private to this user")
    return base


def installation() -> str:
    """This installation (the interpreter's prefix): `checker warm stop` stops all its servers."""
    return _digest(sys.prefix)[:8]


def environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` that are part of a server's identity (see IMPORT_ENVIRONMENT)."""
    found = settings.checkov_environment(environ)
    for name, value in environ.items():
        if any(name.startswith(entry[:-1]) if entry.endswith("*") else name == entry for entry in IMPORT_ENVIRONMENT):
            found[name] = value
    return dict(sorted(found.items()))


def identity(environ: Mapping[str, str]) -> str:
    """The digest of the identity variables' values (a server compares each request's with its own)."""
    return _digest(json.dumps(environment(environ), sort_keys=True))


def socket_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the server for this installation, this code and this environment listens.

    Its name covers the interpreter, what is installed beside it, every source file of the tool (an
    upgrade or an edit starts a new server) and the identity variables' values (a changed setting
    never meets a server that imported Checkov under the old one). Cheap: every warm scan asks.
    """
    environ = os.environ if environ is None else environ
    stamp = [sys.prefix, sys.executable, sys.version, *_installed(), identity(environ)]
    for source in _sources():
        stamp += [f"{p}:{p.stat().st_mtime_ns}" for p in sorted(source.rglob("*.py"))]
    path = folder() / f"warm-{installation()}-{_digest(chr(10).join(stamp))[:16]}.sock"
    if len(os.fsencode(path)) > _SOCKET_PATH_MAX:
        raise Unavailable(f"{path}: too long for a Unix socket; set XDG_RUNTIME_DIR to a shorter folder")
    return path


def log_path() -> Path:
    return folder() / LOG_NAME


def log(event: str) -> None:
    """One line in the log beside the sockets, by the server or one of its scans; never fails the caller."""
    try:
        path = log_path()
        if path.exists() and path.stat().st_size > LOG_LIMIT:
            path.replace(path.with_name(LOG_NAME + ".1"))
        import datetime

        stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        line = f"{stamp} pid {os.getpid()} {event}\n".encode(errors="backslashreplace")
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)
    except OSError:
        pass


def lock(path: Path) -> int | None:
    """Hold the lock of the server at `path` (an open descriptor), or None when a live server has it.

    The kernel drops the lock when its holder dies, however it dies: the lock, not the socket file,
    says whether a server is alive. Lock files stay (empty, one per server identity): removing one
    could let two servers each hold a lock of the same name.
    """
    import fcntl

    descriptor = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def alive(path: Path) -> bool:
    """Whether a server holds the lock of `path` (it may still be importing Checkov)."""
    if not path.with_suffix(".lock").exists():
        return False
    held = lock(path)
    if held is None:
        return True
    os.close(held)
    return False


# ---------------------------------------------------------------------------------------------
# The wire: a request is a length-prefixed JSON object, a scan's carries the client's stdin, stdout
# and stderr. The reply to a scan is REFUSED, or STARTED and then its exit code (4 bytes) when it
# ends; to `status` and `stop`, a length-prefixed JSON object.


def send(connection: socket.socket, message: Mapping[str, Any], fds: Sequence[int] = ()) -> None:
    body = json.dumps(message).encode()
    data = _FORMAT.pack(len(body)) + body
    if fds:
        sent = socket.send_fds(connection, [data], list(fds))
        if sent < len(data):  # sendall(b"") would still write, and fail on a server that already answered
            connection.sendall(data[sent:])
    else:
        connection.sendall(data)


def receive(connection: socket.socket, fds: int = 0) -> tuple[dict[str, Any], list[int]]:
    """A message and the descriptors sent with it; ValueError or OSError when it is not one."""
    if fds:
        head, received, _, _ = socket.recv_fds(connection, _FORMAT.size, fds)
    else:
        head, received = connection.recv(_FORMAT.size), []
    if not head:
        raise Empty("the connection closed before a request")
    try:
        head += _exactly(connection, _FORMAT.size - len(head))
        message = json.loads(_exactly(connection, _FORMAT.unpack(head)[0]))
        if not isinstance(message, dict):
            raise ValueError("not a JSON object")
    except BaseException:
        for fd in received:
            os.close(fd)
        raise
    return message, received


def send_code(connection: socket.socket, code: int) -> None:
    connection.sendall(_CODE.pack(code))


def _exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(min(size - len(data), 1 << 16))
        if not chunk:
            raise ValueError("the connection closed mid-message")
        data += chunk
    return data


# ---------------------------------------------------------------------------------------------
# The client


def run_remote(argv: Sequence[str]) -> int | None:
    """Run `checker argv` in the warm server and return its exit code.

    None when no server can take it, before anything was written: the caller runs the scan itself.
    When none listens, one is started in the background for the next scan.
    """
    try:
        path = socket_path()
    except OSError:
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with client:
        try:
            client.connect(str(path))
        except OSError:
            if not alive(path):
                spawn(path)
            return None
        try:
            send(client, {"op": "scan", "argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}, [0, 1, 2])
            if client.recv(1) != STARTED:
                return None  # refused, or a server that was just closing: nothing ran
        except OSError:
            return None  # a closed stdin, a server that just went: nothing ran
        except KeyboardInterrupt:
            return _aborted()
        try:
            code: int = _CODE.unpack(_exactly(client, _CODE.size))[0]
        except KeyboardInterrupt:
            return _aborted()
        except (OSError, ValueError):  # it may have written part of its output: never run it twice
            sys.stderr.write("checker: error: the warm server's scan ended without an exit code (see "
                             f"{log_path()}); run it again with CHECKER_WARM=0\n")
            return 3
    return code


def _aborted() -> int:
    sys.stderr.write("\nAborted!\n")  # as the CLI says it (exit 1); a scan in the server finishes on its own
    return 1


def spawn(path: Path) -> subprocess.Popen[bytes]:
    """Start the server for `path` in the background, in a session of its own."""
    import subprocess

    environ = {k: v for k, v in os.environ.items() if k not in SECRETS}  # each scan brings its client's
    # Run from the folder this checker package comes from, never the scanned repository's: `-m`
    # puts the working folder first on the import path, and a repository's own `checker/` must not load.
    home = Path(__file__).resolve().parent.parent
    return subprocess.Popen([sys.executable, "-m", "checker.warm", str(path)], cwd=home, env=environ,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def ask(path: Path, op: str, timeout: float = 30.0) -> dict[str, Any] | None:
    """The server's answer to `status` or `stop`; None when none answers (it waits while Checkov imports)."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    with client:
        try:
            client.connect(str(path))
            send(client, {"op": op, "pid": os.getpid()})
            return receive(client)[0]
        except (OSError, ValueError):
            return None


def servers(every_installation: bool = False) -> list[Path]:
    """The sockets of this installation's servers (any code, any environment), or of every one of this user's."""
    pattern = "warm-*.sock" if every_installation else f"warm-{installation()}-*.sock"
    return sorted(folder().glob(pattern))


def start(timeout: float = 120.0) -> tuple[dict[str, Any], bool]:
    """The status of this environment's server, started first if none runs (True), once it has Checkov imported."""
    path = socket_path()
    started = not alive(path)
    process = spawn(path) if started else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None and not alive(path):
            break  # it ended: the log says why
        if path.exists():
            status = ask(path, "status", max(deadline - time.monotonic(), 0.1))
            if status is not None:
                return status, started
        time.sleep(0.05)
    raise Unavailable(f"the warm server did not start; see {log_path()}")


def stop(path: Path, timeout: float = 30.0) -> dict[str, Any] | None:
    """Stop the server at `path`: its status as it stopped, or None when there was none (a stale socket is removed)."""
    answer = ask(path, "stop", timeout)
    deadline = time.monotonic() + timeout
    while alive(path):
        if time.monotonic() > deadline:
            raise Unavailable(f"the warm server at {path} did not stop within {timeout:.0f} s")
        time.sleep(0.05)
    if answer is None:
        path.unlink(missing_ok=True)  # nobody holds its lock: left by a server that was killed
    return answer


def _sources() -> list[Path]:
    """The tool's source folders: the package, and its policies where they live apart (an editable install)."""
    package = Path(__file__).resolve().parent
    spec = importlib.util.find_spec("checker.policies")
    policies = [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
    return [package, *(p for p in policies if package not in p.parents)]


def _installed() -> list[str]:
    """Checkov's version, and the folder it is installed in as of its last change (pip adds and removes
    entries there on every install, upgrade and removal of a package)."""
    spec = importlib.util.find_spec("checkov")
    if spec is None or not spec.submodule_search_locations:
        return ["no checkov"]
    package = Path(next(iter(spec.submodule_search_locations)))
    return [(package / "version.py").read_text(), f"{package.parent}:{package.parent.stat().st_mtime_ns}"]


def versions() -> list[str]:
    """The tool's and Checkov's versions, as the status and the log show them."""
    import importlib.metadata

    return [f"{name} {importlib.metadata.version(name)}" for name in ("checker", "checkov")]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
