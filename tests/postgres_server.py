"""A throwaway PostgreSQL server for the tests, and its pytest fixtures.

Why a real server: the ledger's PostgreSQL back end is only worth something if appends from many
processes serialise on a real server, and a tamper test edits a real row. The server is started once
per test session (`postgres_server`), each test gets a fresh database (`postgres_url`), and the whole
folder (data, socket, log) is deleted when the session ends.

Where the binaries come from: `initdb`/`pg_ctl` under /usr/lib/postgresql/*/bin (Debian's layout,
newest version first) or on PATH. When they are missing, apt is there and we are root (CI), Debian's
`postgresql` package is installed and the cluster the package may start is stopped again: the tests
use their own cluster on a free port. `initdb` refuses to run as root, so as root the server runs as
the `postgres` system user (the package creates it; otherwise `checker-pg` is created).

Without PostgreSQL (no apt, not root) the tests skip with the reason, except when the variable CI is
set: CI must run them, so there they fail.

Use: `pytest_plugins = ["postgres_server"]` in tests/conftest.py (or import the two fixtures there).
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

WAIT_SECONDS = 60          # every pg_ctl wait is bounded (pg_ctl -w -t)
APT_SECONDS = 900          # apt-get update / install
SUPERUSER = "postgres"     # the cluster's superuser role (initdb -U); not the system user
PASSWORD_ROLE = "ledger_pw"  # a role that must give a password over TCP (tests that secrets stay out of messages)


class Unavailable(Exception):
    """PostgreSQL cannot be had on this machine (the reason is the message)."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", Path(path).parent.name)) or (0,)


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if all(os.access(Path(candidate) / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(candidate)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        folder = Path(os.path.realpath(initdb)).parent
        if (folder / "pg_ctl").exists():
            return folder
        return Path(initdb).parent
    return None


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, env=env, timeout=APT_SECONDS,
                          check=False)


def _stop_package_clusters() -> None:
    """Stop any cluster the package's post-install started: our tests use their own, and leave none running."""
    if not shutil.which("pg_lsclusters"):
        return
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=60,
                             check=False)
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3].startswith("online"):
            subprocess.run(["pg_ctlcluster", fields[0], fields[1], "stop"], capture_output=True, timeout=120,
                           check=False)


def install_postgresql() -> Path:
    """Install Debian's `postgresql` package (root and apt only), stop what it started, return the bin folder."""
    if shutil.which("apt-get") is None:
        raise Unavailable("PostgreSQL (initdb, pg_ctl) is not installed and apt-get is not available to install it")
    if os.geteuid() != 0:
        raise Unavailable("PostgreSQL (initdb, pg_ctl) is not installed, and installing Debian's postgresql "
                          "package needs root (CI runs as root; or: sudo apt-get install postgresql)")
    command = ("install", "-y", "--no-install-recommends", "postgresql")
    result = _apt(*command)
    if result.returncode != 0:  # a fresh image has no package lists yet
        _apt("update")
        result = _apt(*command)
    _stop_package_clusters()
    if result.returncode != 0:
        raise Unavailable(f"apt-get install postgresql failed: {result.stderr.strip()[-500:]}")
    found = find_bin_dir()
    if found is None:
        raise Unavailable("apt-get installed postgresql but no initdb/pg_ctl was found under /usr/lib/postgresql")
    return found


@dataclass(frozen=True)
class Account:
    """Who runs initdb/pg_ctl: the current user, or (as root) an unprivileged system user."""

    uid: int
    gid: int
    name: str

    @classmethod
    def for_server(cls) -> Account:
        if os.geteuid() != 0:
            return cls(os.geteuid(), os.getegid(), pwd.getpwuid(os.geteuid()).pw_name)
        for name in ("postgres", "checker-pg"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(entry.pw_uid, entry.pw_gid, name)
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        "checker-pg"], check=True, capture_output=True, timeout=60)
        entry = pwd.getpwnam("checker-pg")
        return cls(entry.pw_uid, entry.pw_gid, "checker-pg")

    @property
    def switches(self) -> bool:
        return self.uid != os.geteuid()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One cluster in a temporary folder: `start()`, `create_database()`, `stop()` (deletes the folder)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.account = Account.for_server()
        # Under /tmp, not pytest's 0700 tmp folders: the server's user must reach it, and a Unix
        # socket path must stay under 108 bytes.
        self.base = Path(tempfile.mkdtemp(prefix="checker-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
        self.data = self.base / "data"
        self.socket_dir = self.base / "socket"
        self.log = self.base / "server.log"
        self.port = 0
        self.password_role = PASSWORD_ROLE  # a role that must log in with `password` over TCP
        self.password = secrets.token_hex(12)  # its password, for tests that check a password never leaks
        self.started = False

    # -- running the binaries -------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"LC_ALL": "C", "LANG": "C"})
        if self.account.switches:
            env.update({"HOME": str(self.base), "USER": self.account.name, "LOGNAME": self.account.name})
        return env

    def _run(self, *args: str, timeout: float = WAIT_SECONDS + 30) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.account.switches:
            kwargs = {"user": self.account.uid, "group": self.account.gid, "extra_groups": []}
        return subprocess.run([str(self.bin_dir / args[0]), *args[1:]], capture_output=True, text=True,
                              env=self._env(), cwd=self.base, timeout=timeout, check=False,
                              **kwargs)  # type: ignore[call-overload]

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.socket_dir.mkdir()
        if self.account.switches:
            for path in (self.base, self.socket_dir):
                os.chown(path, self.account.uid, self.account.gid)
        init = self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                         "--no-locale", "--no-sync")
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {init.stderr.strip()}")
        # Local (socket) and loopback connections are trusted, except PASSWORD_ROLE over TCP.
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n"
            "host all all ::1/128 trust\n")
        last = ""
        for _attempt in range(3):  # the free port may be taken between choosing it and binding it
            self.port = _free_port()
            options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                       f"-c unix_socket_directories={self.socket_dir} -c max_connections=200 "
                       "-c password_encryption=scram-sha-256")
            result = self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w",
                               "-t", str(WAIT_SECONDS), "-o", options)
            if result.returncode == 0:
                self.started = True
                break
            last = f"{result.stdout.strip()} {result.stderr.strip()} {self._log_tail()}"
        else:
            raise RuntimeError(f"pg_ctl start failed: {last}")
        self.psql("postgres", f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{self.password}'")

    def stop(self) -> None:
        try:
            if self.started:
                result = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", str(WAIT_SECONDS))
                if result.returncode != 0:
                    self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w",
                              "-t", str(WAIT_SECONDS))
                self.started = False
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    # -- using it -------------------------------------------------------------------------------
    def psql(self, database: str, sql: str) -> str:
        """Run SQL through the real `psql` client over the Unix socket (as the superuser); its output."""
        psql = self.bin_dir / "psql"
        command = [str(psql) if psql.exists() else (shutil.which("psql") or "psql"), "-X", "-q", "-A", "-t",
                   "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER,
                   "-d", database, "-c", sql]
        result = subprocess.run(command, capture_output=True, text=True, timeout=WAIT_SECONDS, check=False,
                                env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        auth = f"{user}:{password}" if password is not None else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (owned by the superuser, open to PASSWORD_ROLE); its URL."""
        name = name or f"ledger_{secrets.token_hex(6)}"
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        self.psql(name, f"GRANT ALL ON SCHEMA public TO {PASSWORD_ROLE}")
        return self.url(name)


@contextlib.contextmanager
def running_server(bin_dir: Path | None = None) -> Iterator[PostgresServer]:
    """Start a throwaway cluster (finding or installing PostgreSQL); stop it and delete its folder afterwards."""
    server = PostgresServer(bin_dir or find_bin_dir() or install_postgresql())
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the PostgreSQL tests must run, but: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL is not available: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's throwaway PostgreSQL server (skipped with the reason where it cannot be had; fails in CI)."""
    try:
        bin_dir = find_bin_dir() or install_postgresql()
    except Unavailable as exc:
        _unavailable(str(exc))
        raise  # not reached: skip and fail raise
    with running_server(bin_dir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh empty database on the session's server, as a postgresql:// URL."""
    return postgres_server.create_database()


__all__ = [
    "PASSWORD_ROLE",
    "SUPERUSER",
    "PostgresServer",
    "Unavailable",
    "find_bin_dir",
    "install_postgresql",
    "postgres_server",
    "postgres_url",
    "running_server",
]
