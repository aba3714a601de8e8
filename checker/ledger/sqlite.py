"""The ledger in a SQLite file: embedded, no server, the default.

Why these settings:
- WAL: readers (verify, the report) never block the writer nor it them.
- `BEGIN IMMEDIATE` for every append, with a busy timeout: the write lock is taken before the head
  is read, so two processes can never both read head N and both write N + 1 (no fork, no lost
  entry); the others wait their turn (up to BUSY_SECONDS, then a ScanError: nothing appended).
- `synchronous=FULL`: an entry reported appended survives a power cut (an audit record, not a cache).
- Triggers refuse UPDATE and DELETE on `entries`: append-only against accidents. They stop no one
  with write access to the file (they can drop them); the hash chain and checkpoints are what detect
  that.

Tables: `meta` (key, value: `origin`, a random id made when the ledger is created, and `schema`,
the layout's version; the same keys as the PostgreSQL back end) and `entries`, one column per
Row field (`tickets` as canonical JSON text, `verified` NULL/0/1), seq the primary key,
evidence_sha256 UNIQUE, indexes on appended_at, repository and environment for the report.

Bad files: a path that does not exist (when not creating), a folder, a file that is not SQLite,
or a SQLite database holding other tables is a ConfigError (exit 2) naming it, and nothing is
written to it. Errors while reading or writing an opened ledger (disk full, I/O, a lock held too
long) are ScanErrors (exit 3); the transaction is rolled back, so nothing is half-written.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from checker.errors import ConfigError, ScanError
from checker.evidence.statements import canonical
from checker.ledger.row import COLUMNS, Row, column_types, filters

SCHEMA_VERSION = "1"
BUSY_SECONDS = 120  # the longest an append waits for other writers (20 pipelines at once wait far less)
HEADER = b"SQLite format 3\x00"

_TYPES = column_types(seq="INTEGER PRIMARY KEY CHECK (seq > 0)", evidence="BLOB NOT NULL",
                      evidence_sha256="TEXT NOT NULL UNIQUE", verified="INTEGER CHECK (verified IN (0, 1))")

_NAMES = ", ".join(f'"{c}"' for c in COLUMNS)
_SELECT = f"SELECT {_NAMES} FROM entries"
_SELECT_LIGHT = ("SELECT " + ", ".join("X'' AS evidence" if c == "evidence" else f'"{c}"' for c in COLUMNS)
                 + " FROM entries")
_INSERT = f"INSERT INTO entries ({_NAMES}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SCHEMA = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"CREATE TABLE entries ({', '.join(f'{chr(34)}{c}{chr(34)} {t}' for c, t in _TYPES.items())})",
    "CREATE INDEX entries_appended_at ON entries (appended_at)",
    "CREATE INDEX entries_repository ON entries (repository, appended_at)",
    "CREATE INDEX entries_environment ON entries (environment, appended_at)",
    *(f"CREATE TRIGGER entries_append_only_{verb.lower()} BEFORE {verb} ON entries "
      "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END" for verb in ("UPDATE", "DELETE")),
]


class SqliteStore:
    """A ledger in one SQLite file; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False, make_parents: bool = False) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._conn = self._connect(create, make_parents)
        try:
            self.origin = self._open(create)
        except BaseException:
            self._conn.close()
            raise

    # -- opening ----------------------------------------------------------------------------------------------
    def _connect(self, create: bool, make_parents: bool) -> sqlite3.Connection:
        path = self.path
        try:
            kind = path.stat().st_mode
        except FileNotFoundError:
            kind = None
        except OSError as error:  # no permission to look, a name too long, a loop of links
            raise ConfigError(f"{path}: cannot reach the ledger file: {error.strerror or error}") from None
        if kind is not None and stat.S_ISDIR(kind):
            raise ConfigError(f"{path}: is a folder, not a ledger file")
        if kind is None:
            if not create:
                raise ConfigError(f"{path}: no ledger there (nothing appended yet, or another path?); "
                                  "`checker ledger append` creates it")
            if make_parents:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise ConfigError(f"{path.parent}: could not create the ledger's folder: "
                                      f"{error.strerror or error}") from None
            elif not path.parent.is_dir():
                raise ConfigError(f"{path}: no such folder for the ledger file ({path.parent})")
        else:
            self._check_header()
        try:
            uri = "file:" + _quote(str(path.absolute())) + ("?mode=rwc" if create else "?mode=rw")
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as error:
            raise ConfigError(f"{path}: could not open the ledger: {error}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_SECONDS * 1000}")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as error:
            conn.close()
            raise ConfigError(f"{path}: not a ledger ({error})") from None
        return conn

    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                header = handle.read(len(HEADER))
        except OSError as error:
            raise ConfigError(f"{self.path}: could not read the ledger: {error.strerror or error}") from None
        if (header and header != HEADER[:len(header)]) or 0 < len(header) < len(HEADER):
            raise ConfigError(f"{self.path}: not a SQLite database, so not a ledger; give the ledger's file (or "
                              "a new path to start one)")

    def _open(self, create: bool) -> str:
        """The ledger's origin; with `create`, an empty database becomes a ledger first (under the write lock)."""
        try:
            tables = self._tables()
            created = False
            if not tables and create:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    if not self._tables():  # another process may have made it while we waited
                        created = True
                        for statement in _SCHEMA:
                            self._conn.execute(statement)
                        self._conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                               [("origin", f"checker-ledger/{secrets.token_hex(16)}"),
                                                ("schema", SCHEMA_VERSION)])
                    self._conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise
                tables = self._tables()
            self._check(tables)
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
            if created:  # persistent: set once, by the process that made the ledger
                self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as error:  # locked too long, I/O: the file may be fine
            raise ScanError(f"{self.path}: could not open the ledger: {error}") from None
        except sqlite3.DatabaseError as error:  # "file is not a database", a damaged file
            raise ConfigError(f"{self.path}: could not read it as a ledger: {error}") from None
        if meta.get("schema") != SCHEMA_VERSION or not meta.get("origin"):
            raise ConfigError(f"{self.path}: not a checker ledger of schema {SCHEMA_VERSION}: its meta table holds "
                              f"schema {meta.get('schema')!r} (a newer checker's ledger, or another program's "
                              "table?)")
        return str(meta["origin"])

    def _tables(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        objects = self._conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') AND "
                                     "name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall()
        for name, kind in objects:
            shown = name if kind == "table" else f"{name} (a {kind}, not a table)"  # a view can hide entries
            found[shown] = [r[1] for r in self._conn.execute(f'PRAGMA table_info("{name}")')]
        return found

    def _check(self, tables: dict[str, list[str]]) -> None:
        """Refuse a database that is not (exactly) a ledger: never write into another program's tables."""
        ours = {"meta": ["key", "value"], "entries": list(COLUMNS)}
        if tables == ours:
            return
        if not tables:
            raise ConfigError(f"{self.path}: an empty SQLite database, not a ledger (`checker ledger append` "
                              "makes it one)")
        other = sorted(set(tables) - set(ours))
        why = (f"it holds other tables ({', '.join(other[:5])}{' ...' if len(other) > 5 else ''})" if other
               else "its tables do not have a ledger's columns")
        raise ConfigError(f"{self.path}: a SQLite database but not a checker ledger: {why}; give the ledger's file "
                          "(or a new path to start one)")

    # -- the protocol ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self) -> Iterator[SqliteWriter]:
        """`BEGIN IMMEDIATE` ... `COMMIT`: one writer across every process; rolled back on any error."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise ScanError(f"{self.path}: could not lock the ledger for writing within {BUSY_SECONDS} s: {error}; "
                            "nothing was appended") from None
        try:
            yield SqliteWriter(self._conn)
            self._conn.execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise ScanError(f"{self.path}: could not write the ledger: {error}; nothing was appended") from None
            raise

    def rows(self, since: str | None = None, until: str | None = None, *, seqs: tuple[int, int] | None = None,
             evidence: bool = True) -> Iterator[Row]:
        """Entries by seq, appended at or after `since` and before `until` (RFC 3339 text, which sorts),
        within `seqs` (first, last) when given; without `evidence` the bytes are left out (b"")."""
        chosen = filters(since, until, seqs)
        where, args = [f'"{column}" {operator} ?' for column, operator, _ in chosen], [v for _, _, v in chosen]
        query = (_SELECT if evidence else _SELECT_LIGHT) + (" WHERE " + " AND ".join(where) if where else "") \
            + " ORDER BY seq"
        try:
            cursor = self._conn.execute(query, args)
            while batch := cursor.fetchmany(1000):
                for record in batch:
                    yield _row(record)
        except sqlite3.Error as error:
            raise ScanError(f"{self.path}: could not read the ledger: {error}") from None

    def span(self) -> tuple[int, int, int]:
        """(number of entries, lowest seq, highest seq): 1..n without a gap lets verify split the work."""
        try:
            count, low, high = self._conn.execute("SELECT count(*), min(seq), max(seq) FROM entries").fetchone()
        except sqlite3.Error as error:
            raise ScanError(f"{self.path}: could not read the ledger: {error}") from None
        return count, low or 0, high or 0

    def close(self) -> None:
        self._conn.close()



class SqliteWriter:
    """The reads and the insert of one append, inside the store's `BEGIN IMMEDIATE` transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def head(self) -> Row | None:
        record = self._conn.execute(_SELECT + " ORDER BY seq DESC LIMIT 1").fetchone()
        return _row(record) if record else None

    def find(self, evidence_sha256: str) -> Row | None:
        record = self._conn.execute(_SELECT + " WHERE evidence_sha256 = ?", (evidence_sha256,)).fetchone()
        return _row(record) if record else None

    def insert(self, row: Row) -> None:
        values: list[Any] = [getattr(row, c) for c in COLUMNS]
        values[COLUMNS.index("tickets")] = canonical(list(row.tickets))
        values[COLUMNS.index("verified")] = None if row.verified is None else int(row.verified)
        self._conn.execute(_INSERT, values)


def _row(record: tuple[Any, ...]) -> Row:
    """A Row from a record, as stored: a value edited to the wrong type stays wrong (verify names it), never a crash."""
    fields = dict(zip(COLUMNS, record, strict=True))
    evidence = fields["evidence"]
    fields["evidence"] = evidence.encode("utf-8", "surrogateescape") if isinstance(evidence, str) else bytes(evidence)
    try:
        tickets = json.loads(fields["tickets"])
        fields["tickets"] = tuple(tickets) if isinstance(tickets, list) else (fields["tickets"],)
    except (TypeError, ValueError):
        fields["tickets"] = (str(fields["tickets"]),)
    verified = fields["verified"]
    fields["verified"] = None if verified is None else bool(verified) if verified in (0, 1) else verified
    return Row(**fields)


def _quote(path: str) -> str:
    """A path for a `file:` URI: characters that URIs give meaning to, escaped."""
    from urllib.parse import quote

    return quote(path, safe="/")
