"""The ledger in PostgreSQL: the Store protocol over psycopg 3, for an organisation's many pipelines.

Why a lock and not SERIALIZABLE with retries: every append reads the head and writes the next seq,
so concurrent appends conflict by construction; a transaction-scoped advisory lock makes them queue
instead of fail and retry, readers (verify, the report) are never blocked, and a crashed writer's
lock goes with its connection. Only this back end's storage lives here: the chain and the derived
columns are chain.py's.

Tables (created when the database's schema is empty, under the same advisory lock so two first
appends do not race): `meta` (key, value: the origin and the schema version) and `entries`, one
column per Row field (evidence BYTEA, evidence_sha256 UNIQUE, seq PRIMARY KEY, tickets canonical
JSON text as in SQLite), with triggers refusing UPDATE, DELETE and TRUNCATE (accidents; the chain
catches the rest). The meta keys and the origin's form are SQLite's. A schema that holds
other tables, or tables of these names that are not a ledger, is refused (ConfigError), never
written to. Connection failures are ScanError (exit 3) naming host, port, database and user, never
the password.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from checker.errors import ConfigError, ScanError
from checker.evidence.statements import canonical
from checker.ledger.row import Row, column_types, filters

SCHEMA_VERSION = "1"
# One constant key for pg_advisory_xact_lock: the first 8 bytes of sha256(b"checker-ledger"), signed.
# Advisory locks are per database, so two ledgers in two databases never wait for each other.
LOCK_KEY = int.from_bytes(bytes.fromhex("3b5c5b8e7a4a0f1d"), "big", signed=True)
CONNECT_TIMEOUT = 10      # seconds to reach the server
LOCK_TIMEOUT = "120s"     # the longest an append waits for the other writers before giving up (ScanError)
FETCH_ROWS = 1000         # rows per round trip when streaming the ledger (verify, report)

# Column -> SQL type: Row's fields in order; tickets is canonical JSON text, as in SQLite (row.py).
COLUMNS = column_types(seq="BIGINT PRIMARY KEY CHECK (seq > 0)", evidence="BYTEA NOT NULL",
                       evidence_sha256="TEXT NOT NULL UNIQUE", verified="BOOLEAN")

_SELECT = sql.SQL("SELECT {} FROM entries").format(sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS))
_SELECT_LIGHT = sql.SQL("SELECT {} FROM entries").format(sql.SQL(", ").join(
    sql.SQL("''::bytea AS evidence") if c == "evidence" else sql.Identifier(c) for c in COLUMNS))
_INSERT = sql.SQL("INSERT INTO entries ({}) VALUES ({})").format(
    sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS), sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)))
_APPEND_ONLY = "checker_ledger_append_only"
_CREATE: list[sql.SQL | sql.Composed] = [
    sql.SQL("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"),
    sql.SQL("CREATE TABLE IF NOT EXISTS entries ({})").format(
        sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in COLUMNS.items())),
    # The report filters by time, repository and environment; verify reads in seq order (the primary key).
    sql.SQL("CREATE INDEX IF NOT EXISTS entries_appended_at ON entries (appended_at)"),
    sql.SQL("CREATE INDEX IF NOT EXISTS entries_repository ON entries (repository, appended_at)"),
    sql.SQL("CREATE INDEX IF NOT EXISTS entries_environment ON entries (environment, appended_at)"),
    # Append-only against accidents, as in SQLite. They stop no one who may drop them (nor a role that
    # may disable triggers): the chain and checkpoints detect that; grant pipelines INSERT and SELECT only.
    sql.SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the ledger is append-only'; END $$").format(sql.Identifier(_APPEND_ONLY)),
    sql.SQL("CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries "
            "FOR EACH ROW EXECUTE FUNCTION {}()").format(sql.Identifier(_APPEND_ONLY)),
    sql.SQL("CREATE TRIGGER entries_append_only_truncate BEFORE TRUNCATE ON entries "
            "FOR EACH STATEMENT EXECUTE FUNCTION {}()").format(sql.Identifier(_APPEND_ONLY)),
]


# -- naming the database without its secrets ---------------------------------------------------------
_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?P<info>[^@/]*?:(?P<password>[^@/]*))@")
_PASSWORD_PARAM = re.compile(r"[?&\s]password=([^&\s]+)")


def _params(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"the PostgreSQL ledger URL does not parse: {_scrub(str(exc), _secrets_in(url))} (write "
                          "postgresql://USER@HOST:PORT/DATABASE)") from None


def _secrets_in(url: str, params: Mapping[str, Any] | None = None) -> list[str]:
    """Every password that could appear in a message: the URL's (raw and decoded), the whole
    user-info part (for a URL too broken to split), a password= parameter, and PGPASSWORD."""
    from urllib.parse import unquote

    found: list[str] = []
    userinfo = _USERINFO.match(url)
    if userinfo:
        found += [userinfo["info"], userinfo["password"], unquote(userinfo["password"])]
    found += _PASSWORD_PARAM.findall(url)
    if params and params.get("password"):
        found.append(str(params["password"]))
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    return sorted({s for s in found if s}, key=len, reverse=True)


def _scrub(text: str, secrets_: list[str]) -> str:
    """`text` on one line with every secret replaced by ***."""
    for secret in secrets_:
        text = text.replace(secret, "***")
    return " ".join(text.split())


def _place(params: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    host = str(params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    user = params.get("user") or os.environ.get("PGUSER")
    name = str(params.get("dbname") or os.environ.get("PGDATABASE") or user or "")
    return host, port, name, str(user) if user else None


def describe(params: Mapping[str, Any]) -> str:
    """'database NAME on HOST:PORT as USER': what a message may say about where the ledger is."""
    host, port, name, user = _place(params)
    return f"database {name or '(default)'!r} on {host}:{port}" + (f" as {user!r}" if user else "")


def location(params: Mapping[str, Any]) -> str:
    """The ledger as a postgresql:// URL without its password (for messages and checkpoints)."""
    from urllib.parse import quote

    host, port, name, user = _place(params)
    shown = f"[{host}]" if ":" in host else quote(host, safe="")  # an IPv6 address, or a socket folder
    return f"postgresql://{quote(user, safe='') + '@' if user else ''}{shown}:{port}/{quote(name, safe='')}"


# -- the store ---------------------------------------------------------------------------------------
class PostgresStore:
    """A ledger in one PostgreSQL schema (the connection's current schema, normally `public`)."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        params = _params(url)
        self._where = describe(params)
        self.location = location(params)
        self._secrets = _secrets_in(url, params)
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        params.setdefault("application_name", "checker-ledger")
        try:
            self._conn = psycopg.connect(**params, autocommit=True)
        except psycopg.Error as exc:
            raise self._unreachable(exc) from None
        try:
            self.origin = self._open(create)
        except BaseException:
            self._conn.close()
            raise

    def _unreachable(self, exc: BaseException) -> ScanError:
        message = _scrub(str(exc).strip(), self._secrets) or type(exc).__name__
        return ScanError(f"cannot use the PostgreSQL ledger ({self._where}): {message}")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """psycopg's errors as ScanError (the transaction is rolled back: nothing half-written)."""
        try:
            yield
        except psycopg.errors.LockNotAvailable:
            raise ScanError(f"the PostgreSQL ledger ({self._where}) stayed locked by another writer for more than "
                            f"{LOCK_TIMEOUT}; nothing was appended") from None
        except psycopg.Error as exc:
            raise self._unreachable(exc) from None

    # -- opening: recognise or create ---------------------------------------------------------------
    def _tables(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for table, column in self._conn.execute(
                "SELECT CASE WHEN c.relkind IN ('r', 'p') THEN c.relname "
                "ELSE c.relname || ' (a view or foreign table, not a table)' END, a.attname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() "
                "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
                "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname, a.attnum"):
            found.setdefault(table, []).append(column)
        return found

    def _open(self, create: bool) -> str:
        """The ledger's origin; with `create`, an empty schema becomes a ledger first (under the lock)."""
        with self._errors():
            if self._conn.execute("SELECT current_schema()").fetchone() == (None,):
                raise ConfigError(f"the PostgreSQL ledger ({self._where}) has no schema to use: "
                                  "set search_path to an existing schema")
            tables = self._tables()
            if not tables and create:
                with self._conn.transaction():
                    self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                    tables = self._tables()  # another process may have created it while we waited
                    if not tables:
                        for statement in _CREATE:
                            self._conn.execute(statement)
                        self._conn.execute("INSERT INTO meta (key, value) VALUES ('origin', %s), ('schema', %s)",
                                           (f"checker-ledger/{secrets.token_hex(16)}", SCHEMA_VERSION))
                        tables = self._tables()
            self._check(tables)
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != SCHEMA_VERSION or not meta.get("origin"):
            raise ConfigError(f"the PostgreSQL {self._where} is not a checker ledger: its meta table holds "
                              f"schema {meta.get('schema')!r} and origin {meta.get('origin')!r} "
                              f"(this checker writes schema {SCHEMA_VERSION})")
        return str(meta["origin"])

    def _check(self, tables: dict[str, list[str]]) -> None:
        """Refuse a schema that is not (exactly) a ledger: never write into someone else's tables."""
        ours = {"meta": ["key", "value"], "entries": list(COLUMNS)}
        if set(tables) == set(ours) and all(tables[t] == ours[t] for t in ours):
            return
        if not tables:
            raise ConfigError(f"the PostgreSQL {self._where} is empty, not a ledger (`checker ledger append` "
                              "makes it one)")
        other = sorted(set(tables) - set(ours))
        if other:
            shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
            why = f"its schema holds other tables ({shown})"
        else:
            why = "its tables " + ", ".join(sorted(tables)) + " do not have a ledger's columns"
        raise ConfigError(f"the PostgreSQL {self._where} is not a checker ledger: {why}; give a database "
                          "(or a schema, with ?options=-csearch_path%3DNAME) that is empty or holds a ledger")

    # -- the protocol ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self) -> Iterator[PostgresWriter]:
        """One transaction holding the ledger's advisory lock: appends from every process queue here."""
        with self._errors(), self._conn.transaction():
            self._conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            yield PostgresWriter(self._conn)

    def rows(self, since: str | None = None, until: str | None = None, *, seqs: tuple[int, int] | None = None,
             evidence: bool = True) -> Iterator[Row]:
        """Entries by seq, appended at or after `since` and before `until` (RFC 3339 text, which sorts),
        within `seqs` (first, last) when given; without `evidence` the bytes are left out (b"")."""
        chosen = filters(since, until, seqs)
        where = [sql.SQL("{} " + operator + " %s").format(sql.Identifier(column)) for column, operator, _ in chosen]
        args = [value for _, _, value in chosen]
        query = _SELECT if evidence else _SELECT_LIGHT
        if where:
            query = sql.SQL("{} WHERE {}").format(query, sql.SQL(" AND ").join(where))
        query = sql.SQL("{} ORDER BY seq").format(query)
        with self._errors(), self._conn.transaction(), \
                self._conn.cursor(name=f"ledger_rows_{secrets.token_hex(4)}") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(query, args)
            for record in cursor:
                yield _row(record)

    def span(self) -> tuple[int, int, int]:
        """(number of entries, lowest seq, highest seq): 1..n without a gap lets verify split the work."""
        with self._errors():
            record = self._conn.execute("SELECT count(*), min(seq), max(seq) FROM entries").fetchone()
        count, low, high = record or (0, 0, 0)
        return int(count), int(low or 0), int(high or 0)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PostgresWriter:
    """The reads and the insert of one append, inside the store's locked transaction."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def head(self) -> Row | None:
        record = self._conn.execute(sql.SQL("{} ORDER BY seq DESC LIMIT 1").format(_SELECT)).fetchone()
        return _row(record) if record else None

    def find(self, evidence_sha256: str) -> Row | None:
        record = self._conn.execute(sql.SQL("{} WHERE evidence_sha256 = %s").format(_SELECT),
                                    (evidence_sha256,)).fetchone()
        return _row(record) if record else None

    def insert(self, row: Row) -> None:
        values = [getattr(row, c) for c in COLUMNS]
        values[list(COLUMNS).index("tickets")] = canonical(list(row.tickets))
        self._conn.execute(_INSERT, values)


def _row(record: tuple[Any, ...]) -> Row:
    """A Row from a record, as stored: a value edited into nonsense stays wrong (verify names it), never a crash."""
    fields = dict(zip(COLUMNS, record, strict=True))
    fields["evidence"] = bytes(fields["evidence"])
    try:
        tickets = json.loads(fields["tickets"])
        fields["tickets"] = tuple(tickets) if isinstance(tickets, list) else (fields["tickets"],)
    except (TypeError, ValueError):
        fields["tickets"] = (str(fields["tickets"]),)
    return Row(**fields)


def open_postgres(url: str, *, create: bool = True) -> PostgresStore:
    """The ledger at a postgresql:// (or postgres://) URL; with `create`, made when the database's schema is empty."""
    return PostgresStore(url, create=create)
