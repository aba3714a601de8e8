"""One ledger entry, and the Store protocol both back ends implement.

A Row holds the evidence's exact bytes, where it sits in the chain, and columns for queries.

Both back ends store exactly these fields, in a table `entries` with a column of the same name for
each (`tickets` as canonical JSON text, `verified` as NULL/0/1 or NULL/false/true). Every column
but seq, appended_at, prev_hash, entry_hash, evidence and verified (the DERIVED fields) is computed
from `evidence` by `checker.ledger.chain.describe`, so `ledger verify` recomputes them and names
a row whose columns were edited to say something its evidence does not. Times are RFC 3339 UTC
text, which sorts as time does.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any, Protocol

ZERO_HASH = "0" * 64  # the prev_hash of entry 1


@dataclass(frozen=True)
class Row:
    """One entry of the ledger, as stored."""

    seq: int  # 1, 2, 3, ... with no gaps: the order of the chain
    appended_at: str  # RFC 3339 UTC with microseconds, e.g. 2026-11-30T01:02:03.123456Z; never decreases with seq
    prev_hash: str  # hex sha256: entry_hash of entry seq - 1 (entry 1: ZERO_HASH)
    entry_hash: str  # hex sha256 of this row's canonical form (chain.entry_hash: every field but this one)
    evidence: bytes  # the evidence file's exact bytes (both DSSE envelopes)
    evidence_sha256: str  # hex sha256 of `evidence`; unique: appending identical evidence again is idempotent
    verified: bool | None  # signatures checked at append (--key): True/False; None: not checked
    signer: str  # key ids the signatures name (unsigned hints), comma-separated, in order; "" if unsigned
    repository: str  # "" when the evidence records none
    environment: str
    commit: str
    branch: str
    decision: str  # PASSED | FAILED | INCOMPLETE
    tickets: tuple[str, ...]
    ruleset_name: str
    ruleset_version: str
    ruleset_digest: str  # "sha256:<hex>"
    started: str  # the scan's startedOn
    finished: str  # the scan's finishedOn
    decided_on: str  # the gate's decidedOn
    predicate: str  # the gate-decision predicate as canonical JSON text (for the report)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Row))


def column_types(**special: str) -> dict[str, str]:
    """Column -> SQL type for a back end: every Row field in order, `TEXT NOT NULL` but the ones a
    dialect spells its own way (seq, evidence, verified) and the one UNIQUE column."""
    unknown = set(special) - set(COLUMNS)
    if unknown:  # pragma: no cover - a developer's mistake
        raise RuntimeError(f"no ledger column {sorted(unknown)}")
    return {c: special.get(c, "TEXT NOT NULL") for c in COLUMNS}
# The fields `chain.describe` derives from the evidence bytes (the rest place the entry in the chain).
DERIVED: tuple[str, ...] = COLUMNS[COLUMNS.index("evidence_sha256"):COLUMNS.index("verified")] + COLUMNS[
    COLUMNS.index("signer"):]


class Writer(Protocol):
    """The one writer of a ledger, inside `Store.writer()`: it sees its own inserts at once."""

    def head(self) -> Row | None:
        """The entry with the highest seq, or None when the ledger is empty."""

    def find(self, evidence_sha256: str) -> Row | None:
        """The entry holding evidence with this sha256, or None."""

    def insert(self, row: Row) -> None:
        """Add `row` (chain.append computed it from head()); committed when the writer exits cleanly."""


class Store(Protocol):
    """What a back end implements; the chain's logic stays in checker.ledger.chain.

    `origin` is the ledger's stable identity, random, made when the ledger was created and kept in
    its `meta` table; checkpoints name it. `location` names the ledger in messages (a path, or a URL
    without its password). `writer()` gives ONE writer at a time across processes and commits on a
    clean exit (rolls back on an exception); `rows()` yields entries by seq, filtered on appended_at
    (`since` inclusive, `until` exclusive, both RFC 3339 text) and on seq (`seqs`: first and last), with
    the evidence bytes or, for a report that does not re-verify, without them; `span()` is (count,
    lowest seq, highest seq).
    """

    origin: str
    location: str

    def writer(self) -> AbstractContextManager[Writer]: ...

    def rows(self, since: str | None = None, until: str | None = None, *, seqs: tuple[int, int] | None = None,
             evidence: bool = True) -> Iterator[Row]: ...

    def span(self) -> tuple[int, int, int]: ...

    def close(self) -> None: ...


def filters(since: str | None, until: str | None, seqs: tuple[int, int] | None) -> list[tuple[str, str, Any]]:
    """(column, operator, value) of each filter `Store.rows` was given, for a back end to put in its SQL."""
    wanted = (("appended_at", ">=", since), ("appended_at", "<", until),
              ("seq", ">=", seqs[0] if seqs else None), ("seq", "<=", seqs[1] if seqs else None))
    return [item for item in wanted if item[2] is not None]
