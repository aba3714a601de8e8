"""The ledger on a real PostgreSQL server, through the real CLI (`--ledger postgresql://...`).

Tamper tests edit the database the way someone with write access would (psql and psycopg), then
`ledger verify` must name the entry (exit 3). The server is tests/postgres_server.py's throwaway one.
"""
from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from ledger_kit import key_id, keypair, write_evidence
from testkit import run_checker

if TYPE_CHECKING:  # imported by pytest_plugins (with assertion rewriting), not here
    from postgres_server import PostgresServer

pytest_plugins = ["postgres_server"]


def ledger(*args: str) -> tuple[int, str]:
    """`checker ledger ...` in a real subprocess: (exit code, stdout + stderr)."""
    result = run_checker("ledger", *args)
    return result.returncode, result.stdout + result.stderr


def rows(url: str, columns: str = "seq") -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT {columns} FROM entries ORDER BY seq").fetchall()


UNGUARDED = "ALTER TABLE entries DISABLE TRIGGER USER; "  # what someone with write access does first


def tamper(url: str, *statements: str) -> None:
    """Edit the ledger as its owner could: switch off the append-only triggers, then change rows."""
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE entries DISABLE TRIGGER USER")
        for statement in statements:
            conn.execute(statement)
        conn.execute("ALTER TABLE entries ENABLE TRIGGER USER")


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return keypair(tmp_path)


@pytest.fixture
def three(tmp_path: Path, keys: tuple[Path, Path]) -> list[Path]:
    """Three signed evidence files: PASSED, FAILED (production, two tickets), INCOMPLETE."""
    private, _ = keys
    return [write_evidence(tmp_path / "1.intoto.jsonl", private, decision="PASSED"),
            write_evidence(tmp_path / "2.intoto.jsonl", private, decision="FAILED", environment="production",
                           tickets=["PAY-42", "PAY-43"]),
            write_evidence(tmp_path / "3.intoto.jsonl", private, decision="INCOMPLETE")]


@pytest.fixture
def filled(postgres_url: str, three: list[Path], keys: tuple[Path, Path]) -> str:
    code, out = ledger("append", *map(str, three), "--ledger", postgres_url, "--key", str(keys[1]))
    assert code == 0, out
    return postgres_url


def test_append_stores_every_column_and_verifies(filled: str, three: list[Path], keys: tuple[Path, Path]) -> None:
    got = rows(filled, "seq, prev_hash, entry_hash, evidence, evidence_sha256, verified, signer, decision, "
                       "environment, tickets, appended_at")
    assert [r[0] for r in got] == [1, 2, 3]
    assert got[0][1] == "0" * 64
    assert [r[1] for r in got[1:]] == [r[2] for r in got[:-1]]  # each entry names the previous one's hash
    for row, path in zip(got, three, strict=True):
        assert bytes(row[3]) == path.read_bytes()  # the exact bytes
        assert row[4] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert row[5] is True and row[6] == key_id(keys[1])
    assert [r[7] for r in got] == ["PASSED", "FAILED", "INCOMPLETE"]
    assert got[1][8] == "production" and json.loads(got[1][9]) == ["PAY-42", "PAY-43"]
    assert got[0][10] <= got[1][10] <= got[2][10] and got[0][10].endswith("Z")
    with psycopg.connect(filled) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert meta["origin"].startswith("checker-ledger/") and meta["schema"] == "1"
    code, out = ledger("verify", "--ledger", filled, "--key", str(keys[1]))
    assert code == 0, out


def test_appending_identical_evidence_again_is_idempotent(filled: str, three: list[Path]) -> None:
    before = rows(filled, "seq, entry_hash")
    code, out = ledger("append", str(three[1]), str(three[0]), "--ledger", filled)
    assert code == 0, out
    assert rows(filled, "seq, entry_hash") == before
    code, out = ledger("verify", "--ledger", filled)
    assert code == 0, out


def test_unsigned_and_unchecked_evidence(postgres_url: str, tmp_path: Path, keys: tuple[Path, Path]) -> None:
    unsigned = write_evidence(tmp_path / "u.intoto.jsonl", None)
    signed = write_evidence(tmp_path / "s.intoto.jsonl", keys[0])
    code, out = ledger("append", str(unsigned), str(signed), "--ledger", postgres_url)  # no --key: not checked
    assert code == 0, out
    assert rows(postgres_url, "verified, signer") == [(None, ""), (None, key_id(keys[1]))]


@pytest.mark.parametrize("edit, what", [
    ("UPDATE entries SET decision = 'PASSED' WHERE seq = 2", "a query column"),
    ("UPDATE entries SET evidence = overlay(evidence placing 'X'::bytea from 200 for 1) WHERE seq = 2",
     "the evidence bytes"),
    ("UPDATE entries SET appended_at = '2020-01-01T00:00:00.000000Z' WHERE seq = 2", "the time appended"),
    ("UPDATE entries SET verified = true, signer = 'somebody' WHERE seq = 2", "the signature record"),
])
def test_an_edited_row_is_named(filled: str, postgres_server: PostgresServer, edit: str, what: str) -> None:
    repository, commit = rows(filled, "repository, commit")[1]
    postgres_server.psql(filled.rsplit("/", 1)[1], UNGUARDED + edit)  # the real psql client, as an administrator
    code, out = ledger("verify", "--ledger", filled)
    assert code == 3, (what, out)
    assert "entry 2 " in out and commit[:12] in out and repository in out, (what, out)


@pytest.mark.parametrize("statement", ["UPDATE entries SET decision = 'PASSED'", "DELETE FROM entries WHERE seq = 3",
                                       "TRUNCATE entries"])
def test_the_table_refuses_updates_and_deletes(filled: str, statement: str) -> None:
    before = rows(filled, "seq, decision, entry_hash")
    with psycopg.connect(filled) as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute(statement)
    assert rows(filled, "seq, decision, entry_hash") == before


def test_a_deleted_row_is_detected(filled: str, keys: tuple[Path, Path]) -> None:
    tamper(filled, "DELETE FROM entries WHERE seq = 2")
    code, out = ledger("verify", "--ledger", filled)
    assert code == 3, out
    assert "entry 3 " in out, out  # the entry after the gap is where the chain breaks


def test_reordered_rows_are_detected(filled: str) -> None:
    tamper(filled, "UPDATE entries SET seq = seq + 1000 WHERE seq IN (2, 3)",  # swap entries 2 and 3
           "UPDATE entries SET seq = CASE seq WHEN 1002 THEN 3 WHEN 1003 THEN 2 END WHERE seq > 1000")
    code, out = ledger("verify", "--ledger", filled)
    assert code == 3, out


def test_checkpoint_proves_the_ledger_still_extends_it(filled: str, tmp_path: Path, keys: tuple[Path, Path],
                                                       three: list[Path]) -> None:
    private, public = keys
    checkpoint = tmp_path / "head.checkpoint"
    code, out = ledger("checkpoint", "--ledger", filled, "--signing-key", str(private), "--output", str(checkpoint))
    assert code == 0, out
    assert checkpoint.exists()
    more = write_evidence(tmp_path / "4.intoto.jsonl", private, decision="PASSED")
    code, out = ledger("append", str(more), "--ledger", filled)
    assert code == 0, out
    code, out = ledger("verify", "--ledger", filled, "--checkpoint", str(checkpoint), "--key", str(public))
    assert code == 0, out

    # Someone with write access rewrites the whole table with a consistent chain of other history:
    # only the checkpoint kept outside shows it.
    tamper(filled, "DELETE FROM entries")
    for path in (three[2], three[0], more):
        code, out = ledger("append", str(path), "--ledger", filled)
        assert code == 0, out
    code, out = ledger("verify", "--ledger", filled)
    assert code == 0, out  # the rewritten chain is internally consistent ...
    code, out = ledger("verify", "--ledger", filled, "--checkpoint", str(checkpoint), "--key", str(public))
    assert code == 3, out  # ... but does not extend the checkpoint


def test_not_evidence_leaves_the_ledger_unchanged(filled: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.intoto.jsonl"
    bad.write_text('{"payloadType": "text/plain", "payload": "aGVsbG8=", "signatures": []}\n')
    before = rows(filled, "seq, entry_hash")
    code, out = ledger("append", str(bad), "--ledger", filled)
    assert code == 2, out
    assert rows(filled, "seq, entry_hash") == before


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_exit_3_without_the_password(tmp_path: Path, three: list[Path]) -> None:
    url = f"postgresql://auditor:Sup3r-s3cret%21@127.0.0.1:{_closed_port()}/ledger"
    code, out = ledger("append", str(three[0]), "--ledger", url)
    assert code == 3, out
    assert "127.0.0.1" in out and "ledger" in out
    assert "Sup3r" not in out and "s3cret" not in out, out
    code, out = ledger("verify", "--ledger", url)
    assert code == 3 and "s3cret" not in out, out


def test_a_wrong_password_is_exit_3_without_the_password(postgres_server: PostgresServer, postgres_url: str,
                                                         three: list[Path]) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    wrong = postgres_server.url(database, postgres_server.password_role, "Wr0ng-guess-xyz")
    code, out = ledger("append", str(three[0]), "--ledger", wrong)
    assert code == 3, out
    assert "Wr0ng-guess-xyz" not in out and postgres_server.password_role in out, out
    right = postgres_server.url(database, postgres_server.password_role, postgres_server.password)
    code, out = ledger("append", str(three[0]), "--ledger", right)
    assert code == 0, out
    assert postgres_server.password not in out
    assert len(rows(postgres_url)) == 1


def test_a_database_that_is_not_a_ledger_is_refused(postgres_url: str, three: list[Path]) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE invoices (id SERIAL PRIMARY KEY, total NUMERIC)")
    code, out = ledger("append", str(three[0]), "--ledger", postgres_url)
    assert code == 2, out
    assert "not a checker ledger" in out and "invoices" in out
    with psycopg.connect(postgres_url) as conn:  # nothing was created beside it
        names = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert names == ["invoices"]


def test_tables_named_like_a_ledger_but_not_one_are_refused(postgres_url: str, three: list[Path]) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        conn.execute("CREATE TABLE entries (id INT)")
    code, out = ledger("verify", "--ledger", postgres_url)
    assert code == 2, out
    assert "not a checker ledger" in out


def test_postgres_scheme_alias_and_a_separate_schema(postgres_server: PostgresServer, postgres_url: str,
                                                     three: list[Path]) -> None:
    """postgres:// works too, and ?options=-csearch_path=... keeps the ledger in its own schema."""
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE invoices (id INT)")  # the organisation's other tables
        conn.execute("CREATE SCHEMA audit")
    url = postgres_url.replace("postgresql://", "postgres://") + "?options=-csearch_path%3Daudit"
    code, out = ledger("append", str(three[0]), str(three[1]), "--ledger", url)
    assert code == 0, out
    code, out = ledger("verify", "--ledger", url)
    assert code == 0, out
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM audit.entries").fetchone() == (2,)


def test_a_connection_lost_mid_append_writes_nothing(filled: str, tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """The server ends the session between the insert and the commit: ScanError (exit 3), no entry, chain intact."""
    from ledger_kit import make_evidence

    from checker.errors import ScanError
    from checker.ledger import chain
    from checker.ledger.postgres import open_postgres

    before = rows(filled, "seq, entry_hash")
    store = open_postgres(filled)
    try:
        with pytest.raises(ScanError) as raised, store.writer() as writer:
            head = writer.head()
            assert head is not None
            item = chain.prepare("late.intoto.jsonl", make_evidence(None, keys[0]), None)
            row = chain.Row(seq=head.seq + 1, appended_at=chain.now(), prev_hash=head.entry_hash, entry_hash="",
                            evidence=item.data, verified=None, **item.columns)
            writer.insert(row)
            with psycopg.connect(filled, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = 'checker-ledger' AND pid <> pg_backend_pid()")
    finally:
        store.close()
    assert "database" in str(raised.value) and "127.0.0.1" in str(raised.value)
    assert rows(filled, "seq, entry_hash") == before
    code, out = ledger("verify", "--ledger", filled)
    assert code == 0, out


def test_verify_of_an_empty_database_is_refused_and_creates_nothing(postgres_url: str) -> None:
    """As for a SQLite path that does not exist: a wrong URL must not look like an empty, verified ledger."""
    code, out = ledger("verify", "--ledger", postgres_url)
    assert code == 2, out
    assert "empty" in out
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


@pytest.mark.parametrize("url, code", [
    ("postgresql://auditor:S3cret-pw@[::1:5/ledger", 2),                      # does not parse
    ("postgresql://auditor:S3cret-pw@127.0.0.1:notaport/ledger", 3),
    ("postgresql://auditor:S3cret%2Dpw@127.0.0.1:1/ledger?sslmode=bogus", 3),  # percent-encoded
    ("postgresql://auditor@127.0.0.1:1/ledger?password=S3cret-pw&connect_timeout=5", 3),
])
def test_a_bad_url_never_shows_its_password(url: str, code: int) -> None:
    got, out = ledger("verify", "--ledger", url)
    assert got == code, out
    assert "S3cret" not in out and "ledger" in out, out
