#!/usr/bin/env python3
"""The ledger at scale, on each back end: a synthetic ledger of N entries of real signed evidence,
then what an organisation pays for it.

    .venv/bin/python bench/ledger_scale.py                         # 100,000 entries, SQLite and PostgreSQL
    .venv/bin/python bench/ledger_scale.py --entries 20000 --backends sqlite

Measured, each as a fresh process where a user would run one:
- concurrent appends per second: `--appenders` processes (20) append `--per` (25) distinct evidence
  files each, all at once, one writer transaction per evidence file (chain.append, what `checker
  ledger append` runs after starting Python), onto the full ledger; then the chain is verified;
- `checker ledger verify` of the whole ledger (without and with `--key`);
- `checker report changes` over the whole ledger (text), and over one day;
- bytes per entry (the SQLite file; PostgreSQL's `pg_total_relation_size`).

The PostgreSQL server is the throwaway one the tests use (tests/postgres_server.py). Synthetic
entries are built in-process in large transactions (only the measurements above use the CLI).
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from checker.ledger import chain
from checker.ledger.open import open_store
from checker.ledger.row import ZERO_HASH, Row

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from ledger_kit import keypair, make_evidence  # noqa: E402 - it lives in tests/, put on the path just above

DAYS = 30


def build(url: str, key: Path, entries: int) -> None:
    """`entries` entries of signed evidence over DAYS days, times in order, in transactions of 5,000."""
    store = open_store(url, create=True)
    head: Row | None = None
    start = time.time() - DAYS * 86400
    done = 0
    while done < entries:
        with store.writer() as writer:
            head = writer.head()
            for _ in range(min(5000, entries - done)):
                n = done
                decision = "FAILED" if n % 11 == 0 else "INCOMPLETE" if n % 97 == 0 else "PASSED"
                blocking = [{"rule": "CKV_K8S_20", "severity": "high", "file": "k8s/app.yaml", "line": 3,
                             "fingerprint": "0" * 32}] if decision == "FAILED" else None
                evidence = make_evidence(None, key, fast=True, decision=decision, blocking=blocking,
                                         environment=("production", "staging")[n % 2],
                                         repository=f"https://github.com/example/service-{n % 50}",
                                         tickets=[] if n % 37 == 0 else [f"PAY-{n}"])
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + n * DAYS * 86400 / entries))
                draft = Row(seq=(head.seq if head else 0) + 1, appended_at=f"{stamp}.{n % 1000000:06d}Z",
                            prev_hash=head.entry_hash if head else ZERO_HASH, entry_hash="", evidence=evidence,
                            verified=True, **chain.describe(evidence))
                head = dataclasses.replace(draft, entry_hash=chain.entry_hash(draft))
                writer.insert(head)
                done += 1
    store.close()


def _appender(url: str, files: list[bytes]) -> None:
    store = open_store(url)
    for data in files:
        chain.append(store, data)
    store.close()


def concurrent_appends(url: str, key: Path, appenders: int, per: int) -> float:
    """Appends per second with `appenders` processes appending `per` evidence files each, at once."""
    batches = [[make_evidence(None, key, fast=True, tickets=[f"CONC-{a}"]) for _ in range(per)]
               for a in range(appenders)]
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_appender, args=(url, batch)) for batch in batches]
    started = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    return appenders * per / elapsed


def timed(*args: str) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "checker", *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "CHECKER_WARM": "0"}, check=False)
    return time.perf_counter() - started, done.returncode


def size_per_entry(url: str, entries: int, path: Path | None) -> float:
    if path is not None:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / entries
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_total_relation_size('entries')").fetchone()
    return (row[0] if row else 0) / entries


def measure(name: str, url: str, path: Path | None, key: Path, public: Path, args: argparse.Namespace,
            say: Callable[[str], None]) -> None:
    started = time.perf_counter()
    build(url, key, args.entries)
    say(f"{name}: built {args.entries} entries in {time.perf_counter() - started:.1f} s; "
        f"{size_per_entry(url, args.entries, path):.0f} bytes per entry")
    rate = concurrent_appends(url, key, args.appenders, args.per)
    say(f"{name}: {args.appenders} processes x {args.per} appends at once: {rate:.0f} appends/s")
    total = args.entries + args.appenders * args.per
    for label, extra in (("verify", ()), ("verify --key", ("--key", str(public)))):
        seconds, code = timed("ledger", "verify", "--ledger", url, *extra)
        say(f"{name}: {label} of {total} entries: {seconds:.1f} s (exit {code})")
    seconds, code = timed("report", "changes", "--ledger", url, "--format", "text")
    say(f"{name}: report over {total} entries: {seconds:.1f} s (exit {code})")
    seconds, code = timed("report", "changes", "--ledger", url, "--since", "yesterday", "--until", "yesterday")
    say(f"{name}: report over one day (~{total // DAYS} entries): {seconds:.1f} s (exit {code})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--appenders", type=int, default=20)
    parser.add_argument("--per", type=int, default=25)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        key, public = keypair(Path(tmp))
        if "sqlite" in args.backends:
            path = Path(tmp) / "ledger.sqlite"
            measure("sqlite", str(path), path, key, public, args, say)
        if "postgresql" in args.backends:
            from postgres_server import running_server

            with running_server() as server:
                url: Any = server.create_database("bench")
                measure("postgresql", url, None, key, public, args, say)


if __name__ == "__main__":
    main()
