"""Many pipelines at once: concurrent `checker ledger append` PROCESSES never lose an entry or fork the chain.

Each back end gets PROCESSES real subprocesses started together, each appending FILES distinct
evidence files plus one file every process appends (identical bytes: exactly one entry may hold it).
Afterwards: every evidence file is in the ledger exactly once, seq runs 1..n without gaps, and
`ledger verify` (with the key) recomputes the whole chain. The PostgreSQL ledger starts from an
empty database, so the processes also race to create its tables.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from ledger_kit import evidence_files, keypair, write_evidence
from testkit import run_checker

pytest_plugins = ["postgres_server"]

PROCESSES = 24
FILES = 4  # distinct evidence files per process
DEADLINE = 300  # seconds for all the appends together (they take a few)


def _entries(url: str) -> list[tuple[int, str, str, str]]:
    """(seq, evidence_sha256, prev_hash, entry_hash) of every entry, read straight from the database."""
    query = "SELECT seq, evidence_sha256, prev_hash, entry_hash FROM entries ORDER BY seq"
    if url.startswith("postgresql://"):
        with psycopg.connect(url) as conn:
            return [tuple(r) for r in conn.execute(query).fetchall()]
    with sqlite3.connect(f"file:{url}?mode=ro", uri=True) as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]


def _append_concurrently(url: str, tmp_path: Path) -> None:
    private, public = keypair(tmp_path)
    shared = write_evidence(tmp_path / "shared.intoto.jsonl", private, fast=True)
    batches = [evidence_files(tmp_path / f"p{n:02}", private, FILES, repository=f"https://git.example.com/team-{n}")
               for n in range(PROCESSES)]
    expected = {hashlib.sha256(p.read_bytes()).hexdigest() for batch in batches for p in batch}
    expected.add(hashlib.sha256(shared.read_bytes()).hexdigest())
    assert len(expected) == PROCESSES * FILES + 1  # all distinct: nothing may be merged as a duplicate

    env = {**os.environ, "CHECKER_WARM": "0"}
    env.pop("CHECKER_LEDGER", None)
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "checker", "ledger", "append", *map(str, batch), str(shared),
                               "--ledger", url, "--key", str(public)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for batch in batches]
    outcomes = []
    for proc in procs:
        remaining = max(1.0, DEADLINE - (time.monotonic() - started))
        try:
            out, err = proc.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            pytest.fail(f"the concurrent appends did not finish within {DEADLINE} s")
        outcomes.append((proc.returncode, out + err))
    elapsed = time.monotonic() - started
    failed = [text for code, text in outcomes if code != 0]
    assert not failed, f"{len(failed)} of {PROCESSES} appends failed; the first said: {failed[0]}"

    entries = _entries(url)
    total = len(expected)
    kind = url.split(":", 1)[0] if "://" in url else "sqlite"
    print(f"\n{kind}: {PROCESSES} processes appended {total} entries in {elapsed:.2f} s "
          f"({total / elapsed:.0f} appends/s, process start-up included)")
    assert len(entries) == total, f"{total} appended, {len(entries)} in the ledger: entries were lost"
    assert [e[0] for e in entries] == list(range(1, total + 1)), "seq has gaps or duplicates"
    assert {e[1] for e in entries} == expected
    assert all(later[2] == earlier[3] for earlier, later in itertools.pairwise(entries)), "the chain forked"

    result = run_checker("ledger", "verify", "--ledger", url, "--key", str(public), "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["entries"] == total and report["verified"] is True


def test_concurrent_appends_to_sqlite(tmp_path: Path) -> None:
    _append_concurrently(str(tmp_path / "ledger.sqlite"), tmp_path)


def test_concurrent_appends_to_postgresql(postgres_url: str, tmp_path: Path) -> None:
    _append_concurrently(postgres_url, tmp_path)
