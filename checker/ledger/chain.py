"""The hash chain: what an entry's columns are, how an entry is hashed and appended, and verifying it all.

- `describe(evidence)` derives every query column from the evidence bytes; `check_evidence` refuses
  bytes that are not checker evidence (exit 2, the ledger untouched) before any lock is taken.
- `entry_hash(row)` is sha256 over a domain tag and the canonical JSON of every field but
  entry_hash itself, the evidence by its freshly computed sha256 (so the hash covers the bytes, not
  only the column that claims their digest). Each entry's hash covers prev_hash, so the head's hash
  commits to the whole chain: that is what a checkpoint signs.
- `append` runs inside `store.writer()` (one writer at a time across processes): identical
  evidence already present is not added again (`added` False, the existing entry returned); else
  the new entry gets seq = head + 1, prev_hash = head's hash, appended_at = now (never earlier than
  the head's, so time order is chain order even across machines whose clocks differ).
- `verify` recomputes, for every entry in seq order, the seq (no gaps), prev_hash, entry_hash,
  appended_at's form and order, and every derived column; with keys, the signatures; with a
  checkpoint, that the ledger still extends it. The first entry that breaks is named by seq, time,
  repository and commit.

Signatures (with keys): an entry breaks when it was recorded as verified at append and its evidence
does not verify under the keys given now. Entries recorded as not verified, or never checked
(appended without --key), are listed as warnings: the report shows them as exceptions, an
append-only ledger cannot drop them, and failing every later verify over an entry everybody
already knows about would only teach people to ignore the exit code. (The chain covers the
evidence bytes, so a warning is never an edit: that breaks the hashes.)

Times: an entry stamped more than CLOCK_SKEW in the future breaks it, and no entry is appended
after one: every later entry would carry that time too and fall outside every dated report.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from checker.errors import ConfigError, ScanError
from checker.evidence import PREDICATE_TYPE, STATEMENT_TYPE
from checker.evidence.statements import canonical
from checker.ledger.row import COLUMNS, DERIVED, ZERO_HASH, Row, Store
from checker.output import printable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from checker.evidence.dsse import Envelope
    from checker.ledger.checkpoint import Checkpoint

DOMAIN = b"checker-ledger-entry/v1\n"  # an entry hash can never be mistaken for a hash of anything else
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
MAX_LISTED = 20  # problems listed in a report; the count says how many there were


# --- the evidence ---------------------------------------------------------------------------------------------------

def envelopes(evidence: bytes, name: str) -> list[Envelope]:
    """The DSSE envelopes of `evidence` (a file's bytes), parsed as `checker.evidence.dsse.read` does.

    Anything that is not JSON Lines of in-toto DSSE envelopes is a ConfigError naming `name` and
    the line: for the ledger, bytes that are not evidence are a wrong argument (exit 2), refused
    before anything is written.
    """
    from checker.evidence import dsse

    if len(evidence) > dsse.MAX_FILE_BYTES:
        raise ConfigError(f"{name}: larger than {dsse.MAX_FILE_BYTES // (1024 * 1024)} MiB, so not evidence checker "
                          "wrote (a few KiB); the ledger is unchanged")
    try:
        found = dsse.parse(evidence, name)  # dsse.read's own parser, on bytes
    except dsse.EvidenceError as error:
        raise ConfigError(f"{error}; not evidence, so the ledger is unchanged") from None
    return found


def check_evidence(evidence: bytes, name: str) -> None:
    """ConfigError (exit 2) unless `evidence` is checker evidence: one gate decision and one SLSA VSA
    that agree, the predicate valid under its schema (what `checker evidence verify` checks, short
    of the signatures). Run once, at append, before the ledger is locked."""
    from checker.evidence import verify

    found = envelopes(evidence, name)
    checks: list[verify.Check] = []
    verify.check_statements(found, checks)  # the very rules of `checker evidence verify`
    problems = [c.message for c in checks if not c.ok]
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise ConfigError(f"{name}: not checker evidence: {shown}; the ledger is unchanged")


def describe(evidence: bytes, name: str = "evidence", *, known_predicate: str | None = None) -> dict[str, Any]:
    """Every derived column (row.DERIVED) of the entry holding `evidence`; ConfigError when it is not evidence.

    Cheap (no schema validation): `verify` runs it on every entry, giving the stored predicate
    column as `known_predicate` (see _predicate_text). Unknown values are "" (the predicate records
    null: unknown, not empty).
    """
    found = envelopes(evidence, name)
    gate = None
    for envelope in found:
        try:
            statement = json.loads(envelope.payload)
        except (ValueError, RecursionError):
            raise ConfigError(f"{name}:{envelope.line}: the payload is not JSON, so not evidence; the ledger is "
                              "unchanged") from None
        if isinstance(statement, dict) and statement.get("predicateType") == PREDICATE_TYPE:
            if gate is not None:
                raise ConfigError(f"{name}: more than one gate decision, so not checker evidence; the ledger is "
                                  "unchanged")
            gate = statement.get("predicate")
    if not isinstance(gate, dict):
        raise ConfigError(f"{name}: no gate decision ({PREDICATE_TYPE}) in it, so not checker evidence; the ledger "
                          "is unchanged")
    try:
        return _columns(evidence, found, gate, known_predicate)
    except (KeyError, TypeError, AttributeError, ValueError):
        raise ConfigError(f"{name}: the gate decision lacks a field the ledger records (decision, ruleset, times, "
                          "change), so not checker evidence; the ledger is unchanged") from None


def _columns(evidence: bytes, found: list[Envelope], gate: Mapping[str, Any], known: str | None) -> dict[str, Any]:
    change = gate["change"]
    ruleset = gate["ruleset"]
    signers = dict.fromkeys(s.keyid for e in found for s in e.signatures)
    tickets = tuple(str(t["id"]) for t in change.get("tickets") or [])
    return {
        "evidence_sha256": hashlib.sha256(evidence).hexdigest(),
        "signer": ",".join(signers),
        "repository": _text(change.get("repository")),
        "environment": _text(gate.get("environment")),
        "commit": _text(change.get("commit")),
        "branch": _text(change.get("branch")),
        "decision": _text(gate["decision"]),
        "tickets": tickets,
        "ruleset_name": _text(ruleset["name"]),
        "ruleset_version": _text(ruleset["version"]),
        "ruleset_digest": _text(ruleset["digest"]),
        "started": _text(gate["startedOn"]),
        "finished": _text(gate["finishedOn"]),
        "decided_on": _text(gate["decidedOn"]),
        "predicate": (isinstance(known, str) and _predicate_text(found, known)) or canonical(gate),
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(value)
    return value


@dataclass(frozen=True)
class Signatures:
    """Whether every envelope of some evidence is signed by one of the trusted keys; the first problem if not."""

    verified: bool
    problem: str = ""


def signatures(evidence: bytes, keys: Mapping[str, Ed25519PublicKey], name: str = "evidence") -> Signatures:
    """Check every envelope's signatures under `keys` (keyid -> key), as `checker evidence verify` does."""
    from checker.evidence import dsse

    try:
        found = envelopes(evidence, name)
    except ConfigError as error:
        return Signatures(False, str(error))
    for envelope in found:
        result = dsse.check(envelope, keys)
        if not result.ok:
            return Signatures(False, f"line {envelope.line}: {result.problem}")
    return Signatures(True)


# --- the chain ------------------------------------------------------------------------------------------------------

def entry_hash(row: Row) -> str:
    """hex sha256 of DOMAIN + canonical JSON of every field but entry_hash (the evidence by its sha256)."""
    body: dict[str, Any] = {name: getattr(row, name) for name in COLUMNS if name != "entry_hash"}
    body["evidence"] = hashlib.sha256(row.evidence).hexdigest()
    body["tickets"] = list(row.tickets)
    return hashlib.sha256(DOMAIN + canonical(body).encode("ascii")).hexdigest()


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # appended_at: RFC 3339 UTC with microseconds (sorts as text)


def now(ahead: datetime.timedelta = datetime.timedelta(0)) -> str:
    """The current time (plus `ahead`) as the ledger writes it."""
    return (datetime.datetime.now(datetime.timezone.utc) + ahead).strftime(TIME_FORMAT)


@dataclass(frozen=True)
class Evidence:
    """Evidence to append: its name (for messages), its bytes, and what was derived and checked before locking."""

    name: str
    data: bytes
    columns: Mapping[str, Any]
    signatures: Signatures | None  # None: no keys given, not checked


def prepare(name: str, data: bytes, keys: Mapping[str, Ed25519PublicKey] | None) -> Evidence:
    """Everything about one evidence file that needs no lock: checked to be evidence, described, signatures checked."""
    check_evidence(data, name)
    columns = describe(data, name)
    return Evidence(name, data, columns, signatures(data, keys, name) if keys else None)


@dataclass(frozen=True)
class Appended:
    """The outcome of appending one evidence file: its entry, and whether this append added it."""

    evidence: Evidence
    row: Row
    added: bool


def append(store: Store, evidence: bytes, keys: Mapping[str, Ed25519PublicKey] | None = None,
           name: str = "evidence") -> tuple[Row, bool]:
    """Append one evidence file's bytes; (its entry, True) or, when already there, (the existing entry, False)."""
    done = append_all(store, [prepare(name, evidence, keys)])[0]
    return done.row, done.added


def append_all(store: Store, items: Sequence[Evidence]) -> list[Appended]:
    """Append prepared evidence in order, in ONE writer transaction: all of it becomes entries, or none.

    Consecutive seqs (no other pipeline's entry between them); identical evidence already in the
    ledger, or given twice, is not added again.
    """
    out: list[Appended] = []
    with store.writer() as writer:
        for item in items:
            existing = writer.find(item.columns["evidence_sha256"])
            if existing is not None:
                out.append(Appended(item, existing, False))
                continue
            head = writer.head()
            stamp = now()
            if head is not None and head.appended_at > _latest():
                raise ScanError(f"entry {head.seq} of the ledger is stamped {printable(str(head.appended_at))}, in the "
                                "future: every later entry would be too, and dated reports would miss them; run "
                                "`checker ledger verify`. Nothing was appended")
            if head is not None and stamp < head.appended_at:
                stamp = head.appended_at  # another machine's clock ran ahead: keep time order = chain order
            draft = Row(seq=head.seq + 1 if head else 1, appended_at=stamp,
                        prev_hash=head.entry_hash if head else ZERO_HASH, entry_hash="", evidence=item.data,
                        verified=item.signatures.verified if item.signatures else None, **item.columns)
            row = replace(draft, entry_hash=entry_hash(draft))
            writer.insert(row)
            out.append(Appended(item, row, True))
    return out


# --- verifying ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """An entry that breaks the ledger (or, as a warning, one recorded unverified), named as the issue asks."""

    seq: int
    appended_at: str
    repository: str
    commit: str
    message: str

    def line(self) -> str:
        who = printable(f"{self.repository or '(no repository)'} {self.commit[:12] or '(no commit)'}")
        return f"entry {self.seq} ({printable(self.appended_at)}, {who}): {printable(self.message)}"

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "appendedAt": self.appended_at, "repository": self.repository,
                "commit": self.commit, "problem": self.message}


@dataclass(frozen=True)
class Report:
    """What `verify` found. exit_code 0: every entry checks out (and extends the checkpoint); 3: something broke."""

    location: str
    origin: str
    entries: int
    head_hash: str
    problems: tuple[Problem, ...]  # in seq order: problems[0] is the first entry that breaks
    problem_count: int
    warnings: tuple[Problem, ...]  # entries recorded as not verified at append (with keys)
    warning_count: int
    keys_checked: bool
    checkpoint: str = ""  # what the checkpoint check found ("" without one)
    checkpoint_ok: bool = True

    @property
    def exit_code(self) -> int:
        return 0 if not self.problem_count and self.checkpoint_ok else 3

    @property
    def summary(self) -> str:
        where = printable(self.location)
        if self.exit_code:
            said = []
            if self.problem_count:
                said.append(f"{self.problem_count} broken entr{'y' if self.problem_count == 1 else 'ies'}")
            if not self.checkpoint_ok:
                said.append("it does not extend the checkpoint")
            first = f"; the first entry that breaks is {self.problems[0].line()}" if self.problems else ""
            return f"NOT VERIFIED: {where}: {' and '.join(said)}{first}"
        what = "hashes, chain, columns" + (" and signatures" if self.keys_checked else " (signatures not checked: "
                                                                                     "no --key)")
        flagged = (f" ({self.warning_count} recorded as not verified when appended)" if self.warning_count else "")
        return f"verified: {where}: {self.entries} entries, {what}{flagged}; head {self.head_hash or '(empty)'}"

    def lines(self) -> list[str]:
        out = [f"FAIL {p.line()}" for p in self.problems]
        if self.problem_count > len(self.problems):
            out.append(f"FAIL ... and {self.problem_count - len(self.problems)} more broken entries")
        out += [f"warn {w.line()}" for w in self.warnings]
        if self.warning_count > len(self.warnings):
            out.append(f"warn ... and {self.warning_count - len(self.warnings)} more entries recorded as not verified")
        if self.checkpoint:
            out.append(f"{'ok  ' if self.checkpoint_ok else 'FAIL'} {printable(self.checkpoint)}")
        return [*out, self.summary]

    def as_dict(self) -> dict[str, Any]:
        return {"ledger": self.location, "origin": self.origin, "entries": self.entries, "head": self.head_hash,
                "verified": self.exit_code == 0, "exitCode": self.exit_code, "signaturesChecked": self.keys_checked,
                "firstBreak": self.problems[0].as_dict() if self.problems else None,
                "problems": [p.as_dict() for p in self.problems], "problemCount": self.problem_count,
                "warnings": [w.as_dict() for w in self.warnings], "warningCount": self.warning_count,
                "checkpoint": ({"ok": self.checkpoint_ok, "message": self.checkpoint} if self.checkpoint else None),
                "summary": self.summary}


@dataclass
class _Tally:
    listed: list[Problem] = field(default_factory=list)
    count: int = 0

    def add(self, row: Row, message: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append(Problem(row.seq, row.appended_at, row.repository, row.commit, message))

    def merge(self, other: _Tally) -> None:
        """Add a later run's tally (runs come in seq order, so the first listed stays the first break)."""
        self.count += other.count
        self.listed.extend(other.listed[:MAX_LISTED - len(self.listed)])


@dataclass
class _Part:
    """What walking a run of consecutive entries found: what `verify` adds up across workers."""

    problems: _Tally = field(default_factory=_Tally)
    warnings: _Tally = field(default_factory=_Tally)
    count: int = 0
    last_hash: str = ""
    at_size: str | None = None  # the entry hash at the checkpoint's size, when in this run


PARALLEL_FROM = 20_000  # entries from which verify spreads the work over the machine's cores


def verify(store: Store, keys: Mapping[str, Ed25519PublicKey] | None = None,
           checkpoint: Checkpoint | None = None, reopen: Callable[[], Store] | None = None) -> Report:
    """Recompute every entry (see the module docstring); a checkpoint must already carry a checked signature.

    With `reopen` (a way to open the same ledger again) a large ledger whose seqs run 1..n without a
    gap is verified in one process per core, each walking its own run of seqs from the entry before
    it; the runs join because each starts from the stored hash its neighbour verifies. A ledger with
    a gap is walked in one process, which names the first break exactly.
    """
    size = checkpoint.size if checkpoint is not None else 0
    count, low, high = store.span()
    cores = min(os.cpu_count() or 1, 8)
    if reopen is not None and cores > 1 and count >= PARALLEL_FROM and low == 1 and high == count:
        parts = _in_parallel(reopen, keys, size, count, cores)
    else:
        parts = [_walk(store.rows(), 1, ZERO_HASH, "", keys, size)]
    problems, warnings = _Tally(), _Tally()
    for part in parts:
        problems.merge(part.problems)
        warnings.merge(part.warnings)
    total = sum(part.count for part in parts)
    at_size = next((part.at_size for part in parts if part.at_size is not None), None)
    head_hash = next((part.last_hash for part in reversed(parts) if part.count), "")
    note, note_ok = ("", True) if checkpoint is None else _against(store, checkpoint, at_size, total)
    return Report(store.location, store.origin, total, head_hash, tuple(problems.listed), problems.count,
                  tuple(warnings.listed), warnings.count, bool(keys), note, note_ok)


def _walk(rows: Iterable[Row], expected_seq: int, prev_hash: str, prev_time: str,
          keys: Mapping[str, Ed25519PublicKey] | None, size: int) -> _Part:
    """Check consecutive entries, starting from what the entry before them stored."""
    part = _Part()
    for row in rows:
        part.count += 1
        message = _row_problem(row, expected_seq, prev_hash, prev_time)
        if message:
            part.problems.add(row, message)
        elif keys:
            checked = signatures(row.evidence, keys)
            if not checked.verified:
                if row.verified is True:  # it verified when appended: now it does not (or another key set)
                    part.problems.add(row, f"the evidence does not verify under the keys given: {checked.problem}")
                else:  # recorded as not verified, or never checked: known, and an exception of the report
                    said = "not verified" if row.verified is False else "never checked (appended without --key)"
                    part.warnings.add(row, f"recorded as {said} when appended: {checked.problem}")
        if row.seq == size:
            part.at_size = row.entry_hash
        expected_seq = row.seq + 1 if type(row.seq) is int else expected_seq + 1
        prev_hash, prev_time = row.entry_hash, row.appended_at
        part.last_hash = row.entry_hash
    return part


_JOB: tuple[Callable[[], Store], Mapping[str, Ed25519PublicKey] | None, int] | None = None  # for forked workers


def _in_parallel(reopen: Callable[[], Store], keys: Mapping[str, Ed25519PublicKey] | None, size: int, count: int,
                 cores: int) -> list[_Part]:
    global _JOB
    step = -(-count // cores)
    runs = [(first, min(first + step - 1, count)) for first in range(1, count + 1, step)]
    _JOB = (reopen, keys, size)
    try:
        with multiprocessing.get_context("fork").Pool(len(runs)) as pool:
            return pool.map(_walk_run, runs)
    finally:
        _JOB = None


def _walk_run(run: tuple[int, int]) -> _Part:
    """A worker: open the ledger again, read the entry before the run, walk the run."""
    assert _JOB is not None
    reopen, keys, size = _JOB
    first, last = run
    store = reopen()
    try:
        before = next(iter(store.rows(seqs=(first - 1, first - 1), evidence=False)), None) if first > 1 else None
        prev_hash, prev_time = (before.entry_hash, before.appended_at) if before else (ZERO_HASH, "")
        return _walk(store.rows(seqs=(first, last)), first, prev_hash, prev_time, keys, size)
    finally:
        store.close()


def _row_problem(row: Row, expected_seq: int, prev_hash: str, prev_time: str) -> str:
    """Why `row` breaks the chain, or ""; the first reason found, most telling first."""
    if type(row.seq) is not int:
        return f"seq {_short(row.seq)} is not a whole number: the table was edited"
    if row.seq != expected_seq:
        missing = "deleted or reordered" if row.seq > expected_seq else "duplicated or reordered"
        return f"seq {row.seq} where {expected_seq} was expected: entries were {missing}"
    if row.prev_hash != prev_hash:
        return "prev_hash is not the previous entry's hash: an entry before it was deleted, reordered or replaced"
    try:
        derived = describe(row.evidence, f"entry {row.seq}", known_predicate=row.predicate)
    except ConfigError as error:
        return f"the stored evidence is not evidence: {error}"
    edited = [name for name in DERIVED if getattr(row, name) != derived[name]]
    if edited:
        return (f"column(s) {', '.join(edited)} do not match the stored evidence ({edited[0]} is "
                f"{_short(getattr(row, edited[0]))}, the evidence says {_short(derived[edited[0]])}): edited")
    if not isinstance(row.appended_at, str) or not TIME.fullmatch(row.appended_at):
        return f"appended_at {_short(row.appended_at)} is not RFC 3339 UTC with microseconds: edited"
    if row.verified not in (None, True, False):
        return f"verified is {_short(row.verified)}, neither true, false nor null: edited"
    if row.entry_hash != entry_hash(row):
        return "entry_hash does not match the entry: its time, verified flag or hash was edited"
    if row.appended_at < prev_time:
        return f"appended at {row.appended_at}, before the previous entry ({prev_time}): the chain was rewritten"
    if row.appended_at > _latest():
        return (f"appended at {row.appended_at}, in the future: a clock far ahead or an edited time, which would "
                "hide this and every later change from a dated report")
    return ""


CLOCK_SKEW = datetime.timedelta(minutes=10)  # how far ahead of this machine a pipeline's clock may be


def _latest() -> str:
    """The latest believable append time: now, plus the skew allowed between machines."""
    return now(CLOCK_SKEW)


def _predicate_text(found: list[Envelope], known: str) -> str | None:
    """`known` when it is, byte for byte, the predicate's text in the gate payload; else None.

    Our payloads are canonical JSON with sorted keys: `{"_type":...,"predicate":<P>,"predicateType":
    "<gate-decision>","subject":[...]}`. JSON values are self-delimiting, so text that fills exactly
    the place of <P> is what the parser reads as the predicate, and canonical(predicate) is <P>
    itself: found this way, `verify` skips re-encoding every predicate (a quarter of its time).
    """
    text = known.encode("utf-8")
    for envelope in found:
        payload = envelope.payload
        if payload.startswith(_BEFORE + text) and payload.startswith(_AFTER, len(_BEFORE) + len(text)):
            return known
    return None


_BEFORE = b'{"_type":"' + STATEMENT_TYPE.encode() + b'","predicate":'
_AFTER = b',"predicateType":"' + PREDICATE_TYPE.encode() + b'","subject":['


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _against(store: Store, checkpoint: Checkpoint, at_size: str | None, count: int) -> tuple[str, bool]:
    """Whether the ledger still extends `checkpoint`: same origin, at least `size` entries, entry `size`'s hash."""
    said = f"checkpoint of {checkpoint.origin} at size {checkpoint.size}"
    if checkpoint.origin != store.origin:
        return (f"the {said} is of another ledger: this one's origin is {store.origin} (a ledger recreated or "
                "replaced?)"), False
    if count < checkpoint.size or at_size is None:
        return f"the {said}: the ledger has only {count} entries now: entries were deleted", False
    if at_size != checkpoint.root_hex:
        return (f"the {said}: entry {checkpoint.size} has hash {at_size}, the checkpoint says "
                f"{checkpoint.root_hex}: the ledger was rewritten up to there"), False
    return f"the ledger extends the {said} (signed by {checkpoint.keyid})", True

