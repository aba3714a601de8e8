"""The SQLite ledger for real: files in tmp_path, real signed evidence, the real CLI; every tampering named (exit 3).

Tampering is done the way an insider would: with the sqlite3 module on the file, after dropping
the append-only triggers. Concurrency across processes on both back ends is
tests/test_ledger_concurrency.py; here only a smoke test of the SQLite writer.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ledger_kit import evidence_files, key_id, keypair, make_evidence, write_evidence
from testkit import run_checker

from checker.errors import ConfigError
from checker.evidence import keys as evidence_keys
from checker.ledger import chain, checkpoint
from checker.ledger.open import default_path, open_store
from checker.ledger.row import COLUMNS, DERIVED, ZERO_HASH, Row
from checker.ledger.sqlite import SqliteStore

# --- helpers --------------------------------------------------------------------------------------------------------


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, Path]:
    """(private key file, public key file), written by checker.evidence.keys.generate."""
    return keypair(tmp_path)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    (tmp_path / "audit").mkdir()
    return tmp_path / "audit" / "ledger.sqlite"


def evidence(tmp_path: Path, name: str, private: Path | None, **choices: Any) -> Path:
    return write_evidence(tmp_path / "evidence" / name, private, **choices)


def append(cli, ledger: Path, *files: Path, key: Path | None = None):
    args = ["ledger", "append", *map(str, files), "--ledger", str(ledger)]
    return cli(*args, *(["--key", str(key)] if key else []))


def verify(cli, ledger: Path, *args: str):
    return cli("ledger", "verify", "--ledger", str(ledger), *args)


def rows(ledger: Path) -> list[Row]:
    store = SqliteStore(ledger)
    try:
        return list(store.rows())
    finally:
        store.close()


def tamper(ledger: Path, statement: str, *args: Any) -> None:
    """Run SQL on the ledger as an insider would: the append-only triggers dropped first."""
    conn = sqlite3.connect(ledger)
    try:
        conn.execute("DROP TRIGGER IF EXISTS entries_append_only_update")
        conn.execute("DROP TRIGGER IF EXISTS entries_append_only_delete")
        conn.execute(statement, args)
        conn.commit()
    finally:
        conn.close()


def forge_chain(ledger: Path, edit) -> None:
    """Rewrite the whole table consistently: `edit(row) -> row` on every entry, then every hash recomputed."""
    old = rows(ledger)
    tamper(ledger, "DELETE FROM entries")
    conn = sqlite3.connect(ledger)
    prev = ZERO_HASH
    try:
        for row in old:
            row = edit(row)
            row = replace(row, prev_hash=prev, entry_hash="")
            row = replace(row, entry_hash=chain.entry_hash(row))
            prev = row.entry_hash
            values = [getattr(row, c) for c in COLUMNS]
            values[COLUMNS.index("tickets")] = json.dumps(list(row.tickets), separators=(",", ":"))
            values[COLUMNS.index("verified")] = None if row.verified is None else int(row.verified)
            conn.execute(f"INSERT INTO entries ({', '.join(repr(c) for c in COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(COLUMNS))})", values)
        conn.commit()
    finally:
        conn.close()


def three(cli, tmp_path: Path, ledger: Path, key: tuple[Path, Path]) -> list[Path]:
    """A ledger of three signed entries (FAILED, PASSED, INCOMPLETE), appended with --key."""
    files = [evidence(tmp_path, f"{n}.intoto.jsonl", key[0], decision=d, repository=f"https://github.com/acme/app{n}")
             for n, d in enumerate(("FAILED", "PASSED", "INCOMPLETE"), start=1)]
    result = append(cli, ledger, *files, key=key[1])
    assert result.exit_code == 0, result.output
    return files


# --- appending ------------------------------------------------------------------------------------------------------

def test_append_records_the_evidence_and_its_columns_and_verify_is_clean(tmp_path, cli, ledger, key):
    path = evidence(tmp_path, "gate.intoto.jsonl", key[0], decision="FAILED", environment="production",
                    tickets=["PAY-42", "PAY-7"], commit="a" * 40, branch="release/1.2")
    result = append(cli, ledger, path, key=key[1])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{path}: appended as entry 1 (FAILED, https://github.com/example/payments "
                                    f"aaaaaaaaaaaa; verified)")
    [row] = rows(ledger)
    assert row.evidence == path.read_bytes()
    assert row.evidence_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (row.seq, row.prev_hash, row.verified, row.signer) == (1, ZERO_HASH, True, key_id(key[1]))
    assert (row.repository, row.environment, row.commit, row.branch, row.decision, row.tickets) == (
        "https://github.com/example/payments", "production", "a" * 40, "release/1.2", "FAILED", ("PAY-42", "PAY-7"))
    assert (row.ruleset_name, row.ruleset_version, row.ruleset_digest[:7]) == ("payments", "2.3.0", "sha256:")
    assert (row.started, row.finished, row.decided_on) == (
        "2030-06-01T10:00:00Z", "2030-06-01T10:00:41Z", "2030-06-01T10:00:42Z")
    assert json.loads(row.predicate)["decision"] == "FAILED"
    assert row.entry_hash == chain.entry_hash(row)
    assert chain.TIME.fullmatch(row.appended_at)

    checked = verify(cli, ledger, "--key", str(key[1]))
    assert checked.exit_code == 0, checked.output
    assert checked.output.splitlines()[-1] == (f"verified: {ledger}: 1 entries, hashes, chain, columns and signatures; "
                                               f"head {row.entry_hash}")


def test_appending_identical_evidence_again_is_idempotent(tmp_path, cli, ledger, key):
    path = evidence(tmp_path, "gate.intoto.jsonl", key[0])
    assert append(cli, ledger, path).exit_code == 0
    [first] = rows(ledger)
    again = append(cli, ledger, path, key=key[1])
    assert again.exit_code == 0, again.output
    assert again.output == (f"{path}: already in the ledger as entry 1 (appended {first.appended_at}); "
                            "not added again\n")
    copy = tmp_path / "copy.intoto.jsonl"
    copy.write_bytes(path.read_bytes())  # the same bytes under another name: the same evidence
    both = append(cli, ledger, copy, copy)
    assert both.exit_code == 0
    assert both.output.count("already in the ledger as entry 1") == 2
    assert rows(ledger) == [first]


def test_several_files_are_consecutive_entries_in_order_and_duplicates_in_one_call_added_once(tmp_path, cli, ledger,
                                                                                              key):
    files = [evidence(tmp_path, f"{n}.jsonl", key[0], commit=f"{n}" * 40) for n in range(1, 4)]
    result = append(cli, ledger, files[0], files[1], files[0], files[2])
    assert result.exit_code == 0, result.output
    assert [line.split(": ", 1)[1][:28] for line in result.output.splitlines()] == [
        "appended as entry 1 (PASSED,", "appended as entry 2 (PASSED,", "already in the ledger as ent",
        "appended as entry 3 (PASSED,"]
    stored = rows(ledger)
    assert [r.commit[0] for r in stored] == ["1", "2", "3"]
    assert [r.prev_hash for r in stored[1:]] == [r.entry_hash for r in stored[:-1]]
    assert [r.appended_at for r in stored] == sorted(r.appended_at for r in stored)


def test_one_file_that_is_not_evidence_appends_nothing(tmp_path, cli, ledger, key):
    good = evidence(tmp_path, "good.jsonl", key[0])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": "world"}\n')
    result = append(cli, ledger, good, bad)
    assert result.exit_code == 2
    assert f"{bad}:1: not a DSSE envelope: no 'payloadType'" in result.output
    assert "the ledger is unchanged" in result.output
    assert not ledger.exists()  # checked before the ledger was even opened
    assert append(cli, ledger, good).exit_code == 0
    before = rows(ledger)
    assert append(cli, ledger, bad, good).exit_code == 2
    assert rows(ledger) == before


def _envelopes(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines()]


def _statement(envelope: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(envelope["payload"]))


def _rewrap(envelope: dict[str, Any], statement: dict[str, Any]) -> dict[str, Any]:
    return {**envelope, "payload": base64.b64encode(json.dumps(statement).encode()).decode()}


def lines(*envelopes: dict[str, Any]) -> bytes:
    """Envelopes as a JSON Lines file."""
    return b"".join(json.dumps(x).encode() + b"\n" for x in envelopes)


def _not_evidence(good: bytes) -> dict[str, tuple[bytes, str]]:
    gate, vsa = _envelopes(good)
    no_vsa = json.dumps(gate).encode() + b"\n"
    wrong_schema = _statement(gate)
    wrong_schema["predicate"]["decision"] = "MAYBE"
    disagree = _statement(vsa)
    disagree["predicate"]["verificationResult"] = "FAILED"  # the gate PASSED
    other_type = {**gate, "payloadType": "text/plain"}
    return {
        "empty": (b"", "empty: no DSSE envelope"),
        "binary": (b"\xff\xfe\x00garbage", "not UTF-8 text"),
        "json array": (b"[1, 2]\n", "a JSON array, not a DSSE envelope"),
        "a SARIF": (b'{"version": "2.1.0", "runs": []}\n', "not a DSSE envelope: no 'payloadType'"),
        "another payload type": (lines(other_type, vsa), "unknown payloadType 'text/plain'"),
        "no VSA": (no_vsa, "0 SLSA VSA statement(s)"),
        "predicate off its schema": (lines(_rewrap(gate, wrong_schema), vsa), "does not match its schema"),
        "statements that disagree": (lines(gate, _rewrap(vsa, disagree)),
                                     "the VSA says 'FAILED' but the gate decision is PASSED"),
    }


@pytest.mark.parametrize("case", ["empty", "binary", "json array", "a SARIF", "another payload type", "no VSA",
                                  "predicate off its schema", "statements that disagree"])
def test_evidence_that_is_not_evidence_is_exit_2_naming_the_file_and_the_ledger_is_unchanged(tmp_path, cli, ledger,
                                                                                              key, case):
    assert append(cli, ledger, evidence(tmp_path, "first.jsonl", key[0])).exit_code == 0
    before = rows(ledger)
    data, said = _not_evidence(make_evidence(tmp_path, key[0]))[case]
    bad = tmp_path / "bad.intoto.jsonl"
    bad.write_bytes(data)
    result = append(cli, ledger, bad, key=key[1])
    assert result.exit_code == 2, result.output
    assert str(bad) in result.output and said in result.output, result.output
    assert rows(ledger) == before


def test_with_key_the_entry_records_whether_it_verified(tmp_path, cli, ledger, key):
    other = keypair(tmp_path, "other.key")
    signed = evidence(tmp_path, "signed.jsonl", key[0])
    unsigned = evidence(tmp_path, "unsigned.jsonl", None)
    foreign = evidence(tmp_path, "foreign.jsonl", other[0])
    result = append(cli, ledger, signed, unsigned, foreign, key=key[1])
    assert result.exit_code == 0, result.output
    assert "entry 2 (PASSED" in result.output and "NOT VERIFIED)" in result.output
    assert (f"checker: warning: {unsigned}: entry 2 does not verify under the --key files: line 1: unsigned"
            in result.output)
    assert f"checker: warning: {foreign}: entry 3 does not verify under the --key files: line 1: signed by an " \
           f"unknown key {key_id(other[1])}" in result.output
    unchecked = evidence(tmp_path, "unchecked.jsonl", key[0])
    assert "signatures not checked (no --key)" in append(cli, ledger, unchecked).output
    assert [(r.verified, r.signer) for r in rows(ledger)] == [
        (True, key_id(key[1])), (False, ""), (False, key_id(other[1])), (None, key_id(key[1]))]


def test_verify_with_keys_warns_about_entries_flagged_at_append_and_fails_on_others(tmp_path, cli, ledger, key):
    assert append(cli, ledger, evidence(tmp_path, "flagged.jsonl", None), key=key[1]).exit_code == 0
    clean = verify(cli, ledger, "--key", str(key[1]))
    assert clean.exit_code == 0, clean.output
    assert clean.output.startswith("warn entry 1 (")
    assert "recorded as not verified when appended: line 1: unsigned" in clean.output
    assert "(1 recorded as not verified when appended)" in clean.output
    # appended without --key (never checked): known too, a warning (the report lists it as an exception)
    assert append(cli, ledger, evidence(tmp_path, "unchecked.jsonl", None)).exit_code == 0
    known = verify(cli, ledger, "--key", str(key[1]))
    assert known.exit_code == 0 and "recorded as never checked (appended without --key) when appended" in known.output
    # recorded as verified (under another key) but not under the keys trusted now: that breaks it
    other = keypair(tmp_path, "other.key")
    assert append(cli, ledger, evidence(tmp_path, "other.jsonl", other[0]), key=other[1]).exit_code == 0
    failed = verify(cli, ledger, "--key", str(key[1]))
    assert failed.exit_code == 3
    assert "FAIL entry 3 (" in failed.output and "does not verify under the keys given" in failed.output
    assert verify(cli, ledger).exit_code == 0  # without keys, the chain alone: intact


# --- verify: tampering ----------------------------------------------------------------------------------------------

def _first_break(cli, ledger: Path, *args: str) -> dict[str, Any]:
    result = verify(cli, ledger, "--format", "json", *args)
    assert result.exit_code == 3, result.output
    report = json.loads(result.output)
    assert report["verified"] is False and report["exitCode"] == 3
    return report["firstBreak"]


def test_a_decision_edited_in_its_column_is_named(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    before = rows(ledger)
    tamper(ledger, "UPDATE entries SET decision = 'PASSED' WHERE seq = 1")
    first = _first_break(cli, ledger)
    assert (first["seq"], first["appendedAt"], first["repository"], first["commit"]) == (
        1, before[0].appended_at, "https://github.com/acme/app1", before[0].commit)
    assert "column(s) decision do not match the stored evidence (decision is 'PASSED', the evidence says " \
           "'FAILED')" in first["problem"]
    text = verify(cli, ledger)
    assert text.output.startswith(f"FAIL entry 1 ({before[0].appended_at}, https://github.com/acme/app1 "
                                  f"{before[0].commit[:12]}): column(s) decision")
    assert text.output.splitlines()[-1].startswith(f"NOT VERIFIED: {ledger}: 1 broken entry; the first entry that "
                                                   "breaks is entry 1")


def test_a_column_edited_with_its_hash_recomputed_is_still_named(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    forge_chain(ledger, lambda r: replace(r, decision="PASSED") if r.seq == 1 else r)
    first = _first_break(cli, ledger)
    assert first["seq"] == 1 and "decision" in first["problem"]


def test_edited_evidence_bytes_are_named(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    stored = rows(ledger)[1]
    forged = stored.evidence.replace(b'"payloadType"', b'"payloadType" ', 1)  # same JSON, other bytes
    tamper(ledger, "UPDATE entries SET evidence = ? WHERE seq = 2", forged)
    first = _first_break(cli, ledger)
    assert first["seq"] == 2 and "evidence_sha256 do not match the stored evidence" in first["problem"]


def test_evidence_swapped_for_forged_evidence_with_consistent_columns_fails_with_keys(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    original = rows(ledger)[0]
    fake = make_evidence(tmp_path, None, decision="PASSED", repository=original.repository, commit=original.commit)

    def swap(row: Row) -> Row:
        if row.seq != 1:
            return row
        return replace(row, evidence=fake, **chain.describe(fake))

    forge_chain(ledger, swap)
    assert verify(cli, ledger).exit_code == 0  # the chain alone cannot tell: that is what keys and checkpoints are for
    first = _first_break(cli, ledger, "--key", str(key[1]))
    assert first["seq"] == 1 and "does not verify under the keys given: line 1: unsigned" in first["problem"]


def test_a_deleted_entry_is_named(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    tamper(ledger, "DELETE FROM entries WHERE seq = 2")
    first = _first_break(cli, ledger)
    assert first["seq"] == 3 and "seq 3 where 2 was expected: entries were deleted or reordered" in first["problem"]


def test_entries_reordered_by_swapping_seqs_are_named(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    tamper(ledger, "UPDATE entries SET seq = 1000 WHERE seq = 2")
    tamper(ledger, "UPDATE entries SET seq = 2 WHERE seq = 3")
    tamper(ledger, "UPDATE entries SET seq = 3 WHERE seq = 1000")
    result = verify(cli, ledger, "--format", "json")
    report = json.loads(result.output)
    assert result.exit_code == 3
    assert report["firstBreak"]["seq"] == 2 and report["firstBreak"]["repository"] == "https://github.com/acme/app3"
    assert "prev_hash is not the previous entry's hash" in report["firstBreak"]["problem"]
    assert [p["seq"] for p in report["problems"]] == [2, 3] and report["problemCount"] == 2


def test_an_edited_time_is_named(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    tamper(ledger, "UPDATE entries SET appended_at = '2020-01-01T00:00:00.000000Z' WHERE seq = 3")
    first = _first_break(cli, ledger)
    assert (first["seq"], first["appendedAt"]) == (3, "2020-01-01T00:00:00.000000Z")
    assert "entry_hash does not match the entry" in first["problem"]


@pytest.mark.parametrize(("column", "value", "said"), [
    ("verified", 0, "entry_hash does not match"),
    ("tickets", "not json", "column(s) tickets do not match"),
    ("evidence", "text, not bytes", "the stored evidence is not evidence"),
    ("appended_at", 12, "appended_at '12' is not RFC 3339"),  # TEXT affinity: stored as text
    ("verified", 7, "verified is 7"),
    ("predicate", '{"decision":"PASSED"}', "column(s) predicate do not match"),
    ("predicate", "", "column(s) predicate do not match"),
])
def test_odd_values_in_any_column_are_named_never_a_crash(tmp_path, cli, ledger, key, column, value, said):
    three(cli, tmp_path, ledger, key)
    conn = sqlite3.connect(ledger)
    conn.execute("PRAGMA ignore_check_constraints = 1")
    conn.execute("DROP TRIGGER IF EXISTS entries_append_only_update")
    conn.execute(f'UPDATE entries SET "{column}" = ? WHERE seq = 2', (value,))
    conn.commit()
    conn.close()
    first = _first_break(cli, ledger)
    assert first["seq"] == 2 and said in first["problem"], first


def test_the_ledger_refuses_updates_and_deletes_itself(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    conn = sqlite3.connect(ledger)
    for statement in ("UPDATE entries SET decision = 'PASSED'", "DELETE FROM entries"):
        with pytest.raises(sqlite3.IntegrityError, match="the ledger is append-only"):
            conn.execute(statement)
    conn.close()


# --- checkpoints ----------------------------------------------------------------------------------------------------

def _checkpoint(cli, tmp_path: Path, ledger: Path, key: tuple[Path, Path], name: str = "checkpoint.txt") -> Path:
    out = tmp_path / name
    result = cli("ledger", "checkpoint", "--ledger", str(ledger), "--signing-key", str(key[0]), "--output", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_a_checkpoint_is_a_signed_note_of_origin_size_and_head_hash(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    text = _checkpoint(cli, tmp_path, ledger, key).read_text(encoding="utf-8")
    store = SqliteStore(ledger)
    origin, head = store.origin, rows(ledger)[-1]
    store.close()
    note, signature = text.split("\n\n")
    assert note == f"{origin}\n3\n{base64.b64encode(bytes.fromhex(head.entry_hash)).decode()}"
    dash, name, blob = signature.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", key_id(key[1]))
    raw = base64.b64decode(blob)
    assert raw[:4] == bytes.fromhex(key_id(key[1]))[:4]
    evidence_keys.public_keys([key[1]])[name].verify(raw[4:], (note + "\n").encode())  # raises if it does not verify
    result = verify(cli, ledger, "--key", str(key[1]), "--checkpoint", str(tmp_path / "checkpoint.txt"))
    assert result.exit_code == 0, result.output
    assert f"ok   the ledger extends the checkpoint of {origin} at size 3 (signed by {name})" in result.output


def test_a_checkpoint_still_holds_after_more_appends(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    saved = _checkpoint(cli, tmp_path, ledger, key)
    assert append(cli, ledger, evidence(tmp_path, "later.jsonl", key[0]), key=key[1]).exit_code == 0
    assert verify(cli, ledger, "--key", str(key[1]), "--checkpoint", str(saved)).exit_code == 0


def test_a_rewrite_of_the_whole_table_is_detected_by_the_checkpoint(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    saved = _checkpoint(cli, tmp_path, ledger, key)
    forge_chain(ledger, lambda r: replace(r, appended_at=r.appended_at.replace(r.appended_at[:4], "2025")))
    assert verify(cli, ledger, "--key", str(key[1])).exit_code == 0  # a consistent forgery: the chain alone passes
    result = verify(cli, ledger, "--key", str(key[1]), "--checkpoint", str(saved), "--format", "json")
    assert result.exit_code == 3
    report = json.loads(result.output)
    assert report["problemCount"] == 0 and report["checkpoint"]["ok"] is False
    assert "entry 3 has hash" in report["checkpoint"]["message"]
    assert "the ledger was rewritten up to there" in report["checkpoint"]["message"]


def test_entries_deleted_from_the_end_are_detected_by_the_checkpoint(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    saved = _checkpoint(cli, tmp_path, ledger, key)
    tamper(ledger, "DELETE FROM entries WHERE seq = 3")
    assert verify(cli, ledger).exit_code == 0  # a shorter chain is still a chain
    result = verify(cli, ledger, "--key", str(key[1]), "--checkpoint", str(saved))
    assert result.exit_code == 3
    assert "the ledger has only 2 entries now: entries were deleted" in result.output


def test_a_checkpoint_of_another_ledger_is_refused(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    other = tmp_path / "other.sqlite"
    assert append(cli, other, evidence(tmp_path, "o1.jsonl", key[0])).exit_code == 0
    saved = _checkpoint(cli, tmp_path, other, key, "other.txt")
    result = verify(cli, ledger, "--key", str(key[1]), "--checkpoint", str(saved))
    assert result.exit_code == 3
    assert "is of another ledger: this one's origin is checker-ledger/" in result.output


def test_a_checkpoint_whose_signature_does_not_verify_is_refused(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    saved = _checkpoint(cli, tmp_path, ledger, key)
    origin, _size, rest = saved.read_text(encoding="utf-8").split("\n", 2)
    edited = tmp_path / "edited.txt"
    edited.write_text(f"{origin}\n2\n{rest}", encoding="utf-8")  # claims a smaller size
    result = verify(cli, ledger, "--key", str(key[1]), "--checkpoint", str(edited))
    assert result.exit_code == 3
    assert "the checkpoint's signature does not verify under the --key files given" in result.output
    other = keypair(tmp_path, "other.key")
    assert verify(cli, ledger, "--key", str(other[1]), "--checkpoint", str(saved)).exit_code == 3
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("hello\n")
    assert "not a checkpoint" in verify(cli, ledger, "--key", str(key[1]), "--checkpoint", str(garbage)).output
    unsigned = tmp_path / "unsigned.txt"
    unsigned.write_text(saved.read_text(encoding="utf-8").split("\n\n")[0] + "\n\n", encoding="utf-8")
    assert "carries no signature line" in verify(cli, ledger, "--key", str(key[1]), "--checkpoint",
                                                 str(unsigned)).output


def test_checkpoint_usage_errors(tmp_path, cli, ledger, key):
    no_key = cli("ledger", "checkpoint", "--ledger", str(ledger))
    assert no_key.exit_code == 2 and "give --signing-key KEYFILE or set CHECKER_SIGNING_KEY" in no_key.output
    SqliteStore(ledger.with_name("empty.sqlite"), create=True).close()
    empty = cli("ledger", "checkpoint", "--ledger", str(ledger.with_name("empty.sqlite")), "--signing-key",
                str(key[0]))
    assert empty.exit_code == 2 and "the ledger is empty" in empty.output
    three(cli, tmp_path, ledger, key)
    saved = _checkpoint(cli, tmp_path, ledger, key)
    needs_key = verify(cli, ledger, "--checkpoint", str(saved))
    assert needs_key.exit_code == 2 and "--checkpoint needs --key PUB" in needs_key.output
    missing = verify(cli, ledger, "--key", str(key[1]), "--checkpoint", str(tmp_path / "nope.txt"))
    assert missing.exit_code == 2 and "no such checkpoint file" in missing.output


def test_no_checkpoint_of_a_broken_ledger(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    tamper(ledger, "UPDATE entries SET decision = 'PASSED' WHERE seq = 1")
    out = tmp_path / "cp.txt"
    result = cli("ledger", "checkpoint", "--ledger", str(ledger), "--signing-key", str(key[0]), "--output", str(out))
    assert result.exit_code == 3
    assert "the ledger does not verify, so no checkpoint was written" in result.output
    assert not out.exists()


def test_checkpoint_with_the_signing_key_from_the_environment_in_a_subprocess(tmp_path, ledger, key, monkeypatch):
    monkeypatch.setenv("CHECKER_LEDGER", str(ledger))
    files = [evidence(tmp_path, f"{n}.jsonl", key[0]) for n in range(2)]
    appended = run_checker("ledger", "append", *map(str, files), "--key", str(key[1]))
    assert appended.returncode == 0, appended.stderr
    monkeypatch.setenv("CHECKER_SIGNING_KEY", key[0].read_text())
    made = run_checker("ledger", "checkpoint")
    assert made.returncode == 0, made.stderr
    assert "PRIVATE" not in made.stdout + made.stderr
    saved = tmp_path / "cp.txt"
    saved.write_text(made.stdout, encoding="utf-8")
    checked = run_checker("ledger", "verify", "--key", str(key[1]), "--checkpoint", str(saved))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "the ledger extends the checkpoint" in checked.stdout


# --- where the ledger lives, and bad input --------------------------------------------------------------------------

def test_the_default_ledger_is_under_xdg_data_home_its_folders_created(tmp_path, key, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("CHECKER_LEDGER", raising=False)
    path = evidence(tmp_path, "gate.jsonl", key[0])
    done = run_checker("ledger", "append", str(path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "checker" / "ledger.sqlite").is_file()
    assert default_path() == tmp_path / "data" / "checker" / "ledger.sqlite"
    checked = run_checker("ledger", "verify")
    assert checked.returncode == 0 and "1 entries" in checked.stdout, checked.stdout + checked.stderr
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_path() == Path.home() / ".local" / "share" / "checker" / "ledger.sqlite"


@pytest.mark.parametrize("form", ["plain", "sqlite:///", "sqlite:"])
def test_sqlite_url_forms(tmp_path, cli, key, form, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = evidence(tmp_path, "gate.jsonl", key[0])
    url = {"plain": "rel/ledger.sqlite", "sqlite:///": f"sqlite://{tmp_path}/rel/ledger.sqlite",
           "sqlite:": "sqlite:rel/ledger.sqlite"}[form]
    (tmp_path / "rel").mkdir()
    assert cli("ledger", "append", str(path), "--ledger", url).exit_code == 0
    assert len(rows(tmp_path / "rel" / "ledger.sqlite")) == 1


def test_an_unknown_scheme_is_exit_2_naming_it_never_the_password(tmp_path, cli, key):
    path = evidence(tmp_path, "gate.jsonl", key[0])
    result = cli("ledger", "append", str(path), "--ledger", "mysql://auditor:s3cret@db.example.com/audit")
    assert result.exit_code == 2
    assert "unknown ledger URL scheme 'mysql'" in result.output and "s3cret" not in result.output
    assert cli("ledger", "verify", "--ledger", "sqlite://host/x").exit_code == 2


def test_a_file_that_is_not_a_ledger_is_exit_2_and_left_alone(tmp_path, cli, key):
    path = evidence(tmp_path, "gate.jsonl", key[0])
    other = tmp_path / "app.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    for command in (["ledger", "append", str(path)], ["ledger", "verify"]):
        result = cli(*command, "--ledger", str(other))
        assert result.exit_code == 2
        assert f"{other}: a SQLite database but not a checker ledger: it holds other tables (users)" in result.output
    assert other.read_bytes() == before
    text = tmp_path / "notes.txt"
    text.write_text("my notes, not a database\n" * 10)
    result = cli("ledger", "append", str(path), "--ledger", str(text))
    assert result.exit_code == 2 and f"{text}: not a SQLite database, so not a ledger" in result.output
    assert text.read_text() == "my notes, not a database\n" * 10
    folder = cli("ledger", "verify", "--ledger", str(tmp_path))
    assert folder.exit_code == 2 and "is a folder, not a ledger file" in folder.output


def test_a_ledger_of_a_newer_schema_is_refused(tmp_path, cli, ledger, key):
    three(cli, tmp_path, ledger, key)
    tamper(ledger, "UPDATE meta SET value = '99' WHERE key = 'schema'")
    result = verify(cli, ledger)
    assert result.exit_code == 2 and "not a checker ledger of schema 1" in result.output


def test_verify_of_a_ledger_that_does_not_exist_is_exit_2_and_creates_nothing(tmp_path, cli):
    missing = tmp_path / "nowhere.sqlite"
    result = verify(cli, missing)
    assert result.exit_code == 2 and f"{missing}: no ledger there" in result.output
    assert not missing.exists()
    deep = tmp_path / "no" / "such" / "folder" / "ledger.sqlite"
    appended = cli("ledger", "append", str(evidence(tmp_path, "g.jsonl", None)), "--ledger", str(deep))
    assert appended.exit_code == 2 and "no such folder for the ledger file" in appended.output


def test_an_unreadable_path_is_exit_2_naming_it(tmp_path, cli, ledger, key):
    missing = tmp_path / "missing.intoto.jsonl"
    result = append(cli, ledger, missing)
    assert result.exit_code == 2 and f"{missing}: no such evidence file" in result.output
    assert not ledger.exists()
    assert append(cli, ledger, tmp_path).exit_code == 2  # a folder given as evidence (click refuses it)


def test_a_ledger_the_user_may_not_read_is_exit_2_naming_it(tmp_path, cli, key):
    """Run as an unprivileged user (root reads every file): a file, and a folder, it may not read."""
    folder = Path(tempfile.mkdtemp(prefix="ledger-perm-"))
    try:
        folder.chmod(0o755)
        ledger = folder / "ledger.sqlite"
        assert append(cli, ledger, evidence(tmp_path, "g.jsonl", key[0])).exit_code == 0
        ledger.chmod(0o600)
        private = folder / "private"
        private.mkdir(mode=0o700)
        for target in (ledger, private / "ledger.sqlite"):
            command = [sys.executable, "-m", "checker", "ledger", "verify", "--ledger", str(target)]
            if os.geteuid() == 0:
                if shutil.which("setpriv") is None:
                    pytest.skip("running as root without setpriv: cannot drop to an unprivileged user")
                drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
                probe = subprocess.run([*drop, sys.executable, "-c", "import checker"], check=False,
                                       capture_output=True, timeout=60)
                if probe.returncode != 0:
                    pytest.skip("the unprivileged user cannot read this checkout (a private folder), so it cannot "
                                "run checker")
                command = [*drop, *command]
            else:
                (target if target == ledger else private).chmod(0)
            done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, cwd=folder,
                                  env={**os.environ, "CHECKER_WARM": "0", "HOME": str(folder)})
            assert done.returncode == 2, done.stdout + done.stderr
            assert f"checker: error: {target}: " in done.stderr, done.stderr
    finally:
        for path in (folder / "private", folder / "ledger.sqlite"):
            if path.exists():
                path.chmod(0o700)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_urls_go_to_the_postgres_back_end(tmp_path, cli):
    pytest.importorskip("psycopg")
    result = cli("ledger", "verify", "--ledger", "postgresql://auditor:s3cret@127.0.0.1:1/audit?connect_timeout=2")
    assert result.exit_code == 3, result.output  # nothing listens on port 1: cannot be reached
    assert "s3cret" not in result.output


def test_checker_ledger_variable_names_the_ledger(tmp_path, ledger, key, monkeypatch):
    monkeypatch.setenv("CHECKER_LEDGER", str(ledger))
    done = run_checker("ledger", "append", str(evidence(tmp_path, "g.jsonl", key[0])))
    assert done.returncode == 0, done.stderr
    assert len(rows(ledger)) == 1
    monkeypatch.setenv("CHECKER_LEDGER", "ftp://x")
    wrong = run_checker("ledger", "verify")
    assert wrong.returncode == 2 and "CHECKER_LEDGER: unknown ledger URL scheme 'ftp'" in wrong.stderr


# --- the API --------------------------------------------------------------------------------------------------------

def test_entry_hash_covers_every_field_but_itself(tmp_path, key):
    data = make_evidence(tmp_path, key[0])
    row = Row(seq=1, appended_at="2030-01-01T00:00:00.000000Z", prev_hash=ZERO_HASH, entry_hash="", evidence=data,
              verified=True, **chain.describe(data))
    base = chain.entry_hash(row)
    changed = {"seq": 2, "appended_at": "2030-01-01T00:00:00.000001Z", "prev_hash": "1" * 64, "evidence": data + b"\n",
               "verified": None, "tickets": ("X-1",)}
    for name in COLUMNS:
        if name == "entry_hash":
            assert chain.entry_hash(replace(row, entry_hash="f" * 64)) == base
            continue
        value = changed.get(name, getattr(row, name) + "x" if isinstance(getattr(row, name), str) else None)
        assert chain.entry_hash(replace(row, **{name: value})) != base, name
    assert set(chain.describe(data)) == set(DERIVED)


def test_append_and_verify_through_the_api(tmp_path, key):
    store = open_store(str(tmp_path / "api.sqlite"), create=True)
    trusted = evidence_keys.public_keys([key[1]])
    data = make_evidence(tmp_path, key[0], environment="staging")
    row, added = chain.append(store, data, trusted, name="api")
    assert added and row.seq == 1 and row.verified is True and row.environment == "staging"
    again, added_again = chain.append(store, data, trusted)
    assert (again, added_again) == (row, False)
    with pytest.raises(ConfigError, match="not-evidence: empty"):
        chain.append(store, b"", trusted, name="not-evidence")
    report = chain.verify(store, trusted)
    assert (report.exit_code, report.entries, report.head_hash) == (0, 1, row.entry_hash)
    store.close()


def test_rows_filter_on_the_time_appended(tmp_path, key):
    store = open_store(str(tmp_path / "t.sqlite"), create=True)
    for _ in range(3):
        chain.append(store, make_evidence(tmp_path, key[0], fast=True))
    times = [r.appended_at for r in store.rows()]
    assert [r.appended_at for r in store.rows(since=times[1])] == times[1:]
    assert [r.appended_at for r in store.rows(until=times[1])] == times[:1]
    assert [r.appended_at for r in store.rows(since=times[1], until=times[2])] == times[1:2]
    store.close()


def test_checkpoint_module_round_trip(tmp_path, key):
    private = evidence_keys.read_private_key(key[0])
    text = checkpoint.make("checker-ledger/abc", 7, "ab" * 32, private)
    (tmp_path / "cp").write_text(text, encoding="utf-8")
    loaded = checkpoint.load(tmp_path / "cp", evidence_keys.public_keys([key[1]]))
    assert (loaded.origin, loaded.size, loaded.root_hex, loaded.keyid) == ("checker-ledger/abc", 7, "ab" * 32,
                                                                           key_id(key[1]))


def test_concurrent_appending_processes_never_fork_the_chain(tmp_path, key):
    """A smoke test of the SQLite writer (the full test, on both back ends, is test_ledger_concurrency.py)."""
    ledger = tmp_path / "busy.sqlite"
    SqliteStore(ledger, create=True).close()
    batches = []
    for n in range(8):
        folder = tmp_path / f"p{n}"
        batches.append([write_evidence(folder / f"{i}.jsonl", key[0], fast=True) for i in range(4)])
    env = {**os.environ, "CHECKER_WARM": "0"}
    procs = [subprocess.Popen([sys.executable, "-m", "checker", "ledger", "append", *map(str, batch), "--ledger",
                               str(ledger)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for batch in batches]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    stored = rows(ledger)
    assert [r.seq for r in stored] == list(range(1, 33))
    store = SqliteStore(ledger)
    assert chain.verify(store).exit_code == 0
    store.close()
    for batch in batches:  # each process's files are consecutive entries (one transaction)
        seqs = [next(r.seq for r in stored if r.evidence == p.read_bytes()) for p in batch]
        assert seqs == list(range(seqs[0], seqs[0] + 4))


def test_the_cli_imports_no_ledger_machinery_at_start():
    code = ("import sys, checker.cli; print([m for m in ('checker.ledger.chain', 'checker.ledger.sqlite', "
            "'checker.ledger.postgres', 'psycopg') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("edited", [None, 1, 10, 11, 12, 30])
def test_verify_across_cores_finds_what_one_process_finds(tmp_path, cli, ledger, key, monkeypatch, edited):
    """A large ledger is verified in one process per core, each on its own run of seqs: the runs join
    at the stored hashes, so an edit anywhere, at a run's first or last entry too, is found the same."""
    from checker.ledger import chain
    from checker.ledger.open import open_store

    files = evidence_files(tmp_path / "many", key[0], 30)
    assert append(cli, ledger, *files).exit_code == 0
    if edited is not None:
        tamper(ledger, "UPDATE entries SET entry_hash = ? WHERE seq = ?", "0" * 64, edited)
    monkeypatch.setattr(chain, "PARALLEL_FROM", 10)
    monkeypatch.setattr(chain.os, "cpu_count", lambda: 3)  # three runs of ten: 1-10, 11-20, 21-30
    store = open_store(str(ledger))
    try:
        spread = chain.verify(store, reopen=lambda: open_store(str(ledger)))
        alone = chain.verify(store)
    finally:
        store.close()
    assert spread == alone and spread.entries == 30
    assert [p.seq for p in spread.problems] == ([] if edited is None else [edited] + ([edited + 1] if edited < 30
                                                                                    else []))


def test_an_entry_stamped_in_the_future_breaks_verify_and_stops_appends(tmp_path, cli, ledger, key):
    """One entry stamped years ahead would drag every later entry's time with it, out of every dated report."""
    assert append(cli, ledger, evidence(tmp_path, "a.jsonl", key[0])).exit_code == 0
    forge_chain(ledger, lambda r: replace(r, appended_at="2099-01-01T00:00:00.000000Z"))
    first = _first_break(cli, ledger)
    assert first["seq"] == 1 and "in the future" in first["problem"], first
    refused = append(cli, ledger, evidence(tmp_path, "b.jsonl", key[0]))
    assert refused.exit_code == 3 and "in the future" in refused.output and len(rows(ledger)) == 1


@pytest.mark.parametrize("url", ["postgresql://ci:Xy/Secret9@127.0.0.1:1/audit",
                                 "postgresql://ci:Xy@Secret9@127.0.0.1:1/audit"])
def test_a_password_that_would_split_the_url_is_refused_unrepeated(cli, url):
    result = cli("ledger", "verify", "--ledger", url)
    assert result.exit_code == 2 and "percent-encode" in result.output, result.output
    assert "Secret9" not in result.output and "Xy" not in result.output


@pytest.mark.parametrize("size", ["\u00b2", "9" * 5000, "0", "-1"])
def test_a_checkpoint_whose_size_is_not_a_number_is_refused_cleanly(tmp_path, cli, ledger, key, size):
    assert append(cli, ledger, evidence(tmp_path, "a.jsonl", key[0])).exit_code == 0
    bad = tmp_path / "cp.txt"
    bad.write_text(f"origin\n{size}\nAAAA\n\n\u2014 a b\n", encoding="utf-8")
    result = verify(cli, ledger, "--key", str(key[1]), "--checkpoint", str(bad))
    assert result.exit_code in (2, 3) and "Traceback" not in result.output and "not a checkpoint" in result.output


def test_a_seq_that_is_not_a_number_is_named_not_a_crash(tmp_path, cli, ledger, key):
    both = (evidence(tmp_path, "a.jsonl", key[0]), evidence(tmp_path, "b.jsonl", key[0]))
    assert append(cli, ledger, *both).exit_code == 0
    conn = sqlite3.connect(ledger)
    conn.executescript("DROP TRIGGER IF EXISTS entries_append_only_update; DROP TRIGGER IF EXISTS "
                       "entries_append_only_delete; ALTER TABLE entries RENAME TO old; CREATE TABLE entries AS "
                       "SELECT * FROM old; DROP TABLE old; UPDATE entries SET seq = 'two' WHERE seq = 2;")
    conn.close()
    result = verify(cli, ledger)
    assert result.exit_code in (2, 3) and "Traceback" not in result.output, result.output


def test_a_view_standing_in_for_the_entries_table_is_not_a_ledger(tmp_path, cli, ledger, key):
    """An insider hides an entry behind a view named `entries` (and `sqliteX...` is no SQLite table)."""
    files = [evidence(tmp_path, f"{n}.jsonl", key[0]) for n in range(3)]
    assert append(cli, ledger, *files).exit_code == 0
    conn = sqlite3.connect(ledger)
    conn.executescript("ALTER TABLE entries RENAME TO sqliteXreal; "
                       "CREATE VIEW entries AS SELECT * FROM sqliteXreal WHERE seq <> 3;")
    conn.close()
    result = verify(cli, ledger)
    assert result.exit_code == 2 and "not a table" in result.output, result.output
