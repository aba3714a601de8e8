"""The change report: every gated change recorded in the ledger over a period, exceptions first.

A pure function (`build`) of the ledger's rows, the period and filters, the approved rulesets and
the trusted keys, to a frozen `ChangeReport`; render.py writes it out. What it decides, and why:

**The period** is when a change was *recorded in the ledger* (`appended_at`, the ledger's own
clock, in the hash chain), half-open: since <= appended_at < until. A nightly job that reports
`--since yesterday` therefore sees every entry, even one appended late or from a pipeline whose
clock is wrong, and consecutive periods never drop an entry. Dates are whole UTC days: `--since
D` starts at D 00:00, `--until D` ends at the end of D (so `--since D --until D` is that day);
`today` and `yesterday` are UTC days; an RFC 3339 time is taken exactly. No `--until`: now. A
date that does not parse, or a period that ends before it starts, is a ConfigError (exit 2).
The report's reference day (`as_of`, for waivers) is the last day the period covers.

**What a change shows** comes from the gate-decision predicate (the row's `predicate` column,
the canonical JSON of what the signed evidence says): time, repository, environment, commit,
tickets, actor (`change.ci.actor`, as the CI recorded it; else its `triggeringActor`; else
none), the ruleset's name@version and digest, the decision, open findings by severity, the
waivers used (approver, expiry) and whether the evidence verified.

**Signatures.** With trusted keys (`--key`), every row's evidence bytes are verified again, in
full, by checker.evidence.verify (signatures, both statements, the schema), and the report is
built from the *verified* predicate; a row whose predicate column differs from its own signed
evidence is an exception (the row was edited: run `checker ledger verify`). Without keys, the
report trusts the verdict recorded at append (`verified`: True, False, or None when nobody
checked), and says so in its header: then only `checker ledger verify` vouches for the rows.

**Exceptions** (what a change manager must look at), in this order, each by ledger sequence:
a FAILED gate; an INCOMPLETE gate; unsigned evidence; evidence that did not verify or was never
checked (no `--key` at append nor now); a ruleset outside the approved list (only when a list
is given: approved when the ruleset, or its `--base` layer, matches an entry by name and digest,
as `checker evidence verify --ruleset` matches); a scan of a working tree with uncommitted
changes (not evidence for the commit); no ticket; a waiver used that has expired by the report's
reference day; a waiver that expires within 14 days of it (checker.suppress.EXPIRY_WARNING, the
window the scan itself warns in). A row whose predicate cannot be read is an exception too.

**Controls: where they come from.** The predicate does not carry controls: it names the ruleset
(name, version, digest of the resolved settings), the `--base` and every layer of the `extends`
chain by file (`bundled:NAME`, a path in the repository, or `external:FILE`) and by the sha256
of the file's bytes. Controls are written in ruleset files (`controls: FRAMEWORK: CONTROL:
{title, rules}`). The sound source is therefore the layer files themselves, and the only ones
the report can hold byte for byte are the rulesets bundled with this checker: a layer
`bundled:NAME` is read when this installation's bundled NAME.yaml has exactly the recorded
digest, and its `controls` section applies, layers merged in chain order (a later layer's
control replaces an earlier one's, as the loader merges them). A layer that is a repository's
or an external file, or a bundled file whose digest differs (another checker version), cannot
be read: the report lists each such layer plainly as not resolved, with how many changes it
concerns, since any framework it names is not shown. (The SARIF taxonomies carry the same
mapping, but the SARIF is not in the ledger.)

**Findings per control.** The predicate lists by rule only the *blocking* findings (open, at or
above the gate's threshold) and the *waived* ones (each waiver's rule and how many it covered);
findings below the threshold are recorded only as counts by severity. So each control shows the
changes assessed under its framework, the blocking findings of its rules (and in how many
changes), and the findings its rules had waived. Rules in a control may be globs (`CKV_K8S_*`).
"""
from __future__ import annotations

import datetime
import fnmatch
import functools
import gc
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typing_extensions import Self

from checker.errors import ConfigError
from checker.evidence.verify import laxer_than_locked
from checker.ledger.chain import TIME_FORMAT

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from checker.ledger.row import Row

SEVERITIES = ("critical", "high", "medium", "low", "info")
DECISIONS = ("PASSED", "FAILED", "INCOMPLETE")
BOUND_FORMAT = TIME_FORMAT  # bounds compare as text with the ledger's appended_at
RFC3339 = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?P<fraction>\.\d+)?"
                     r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
APPROVED = re.compile(r"(?P<name>[^@\s]+)@sha256:(?P<hex>[0-9a-fA-F]{64})")

# Exception kinds, in the order the report lists them, with how a reader sees each.
KINDS: dict[str, str] = {
    "failed": "gate FAILED",
    "incomplete": "gate INCOMPLETE",
    "unreadable": "record unreadable",
    "unsigned": "evidence unsigned",
    "unverified": "evidence not verified",
    "unapproved-ruleset": "ruleset not approved",
    "laxer-threshold": "passed below the locked threshold",
    "partial": "not the whole repository",
    "dirty": "uncommitted changes",
    "no-ticket": "no ticket",
    "waiver-expired": "waiver expired",
    "waiver-expiring": "waiver expiring",
}
_RANK = {kind: index for index, kind in enumerate(KINDS)}
Layers = tuple[tuple[str, str, str], ...]  # (name, file, digest) of each ruleset layer, in chain order


# --- the report -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """[start, end) in UTC; start None: from the ledger's first entry. `as_of`: the last day covered."""

    start: datetime.datetime | None
    end: datetime.datetime
    as_of: datetime.date

    @property
    def since(self) -> str | None:
        """The start as the ledger writes times (compares as text with appended_at)."""
        return _stamp(self.start) if self.start else None

    @property
    def until(self) -> str:
        return _stamp(self.end)


@dataclass(frozen=True)
class Waiver:
    """A ruleset waiver a change used: its rule, who approved it and until when."""

    rule: str
    approved_by: str
    expires: str
    ticket: str
    reason: str
    findings: int
    source: str


@dataclass(frozen=True)
class Blocking:
    rule: str
    severity: str
    file: str
    line: int


@dataclass(frozen=True)
class Change:
    """One gated change (one ledger entry) as the report shows it."""

    seq: int
    recorded: str  # appended_at
    decided: str
    repository: str
    environment: str
    commit: str
    branch: str
    dirty: bool
    tickets: tuple[str, ...]
    actor: str
    pull_request: str  # "#7 title", "" when none
    run_url: str
    ruleset: str  # NAME@VERSION
    ruleset_digest: str
    base: str  # NAME@sha256:HEX of the --base, "" without one
    decision: str
    reason: str
    open: Mapping[str, int]  # severity -> open findings
    suppressed: Mapping[str, int]  # severity -> findings suppressed (waivers, inline) or baselined
    blocking: tuple[Blocking, ...]
    waivers: tuple[Waiver, ...]
    not_checked: int
    verified: str  # "verified", "unsigned", "not verified", "not checked"
    verified_detail: str  # the key id(s), or why not
    exceptions: tuple[str, ...]  # the kinds that hold for this change


@dataclass(frozen=True)
class ChangeException:
    """One thing a change manager must look at."""

    kind: str
    seq: int
    recorded: str
    repository: str
    environment: str
    commit: str
    detail: str

    @property
    def label(self) -> str:
        return KINDS[self.kind]


@dataclass(frozen=True)
class Control:
    """One control of a framework, with its rules and the findings of those rules over the period."""

    control: str
    title: str
    rules: tuple[str, ...]
    changes: int  # changes assessed under a ruleset holding this control
    blocking: int  # blocking findings of its rules
    failed_changes: int  # changes with at least one of those
    waived: int  # findings of its rules suppressed by a waiver


@dataclass(frozen=True)
class Framework:
    name: str
    sources: tuple[str, ...]  # the layers that define it (bundled:NAME)
    changes: int
    controls: tuple[Control, ...]


@dataclass(frozen=True)
class Unresolved:
    """A ruleset layer whose controls the report could not read, and how many changes it concerns."""

    name: str
    file: str
    digest: str
    why: str
    changes: int


@dataclass(frozen=True)
class Summary:
    changes: int
    passed: int
    failed: int
    incomplete: int
    exceptions: int  # exception lines
    changes_with_exceptions: int


@dataclass(frozen=True)
class ChangeReport:
    period: Period
    environment: str | None
    repository: str | None
    approved: tuple[str, ...]  # NAME@sha256:HEX as given; () when no list was given
    keys: tuple[str, ...]  # key ids of the trusted keys; () when signatures were taken as recorded
    summary: Summary
    exceptions: tuple[ChangeException, ...]
    changes: tuple[Change, ...]
    frameworks: tuple[Framework, ...]
    unresolved: tuple[Unresolved, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def has_exceptions(self) -> bool:
        return bool(self.exceptions)


# --- the period -----------------------------------------------------------------------------------------------------

def period(since: str | None, until: str | None, now: datetime.datetime) -> Period:
    """The report's period from --since/--until (YYYY-MM-DD, RFC 3339, `today`, `yesterday`); see the module."""
    now = now.astimezone(datetime.timezone.utc)
    start = parse_when(since, now, "--since") if since is not None else None
    end = parse_when(until, now, "--until") if until is not None else now
    if start is not None and end <= start:
        raise ConfigError(f"--since {since} is not before --until {until or '(now)'}: the period is empty")
    return Period(start, end, (end - datetime.timedelta(microseconds=1)).date())


def parse_when(text: str, now: datetime.datetime, option: str) -> datetime.datetime:
    """A bound in UTC: a day (`today`, `yesterday`, YYYY-MM-DD) starts the period at its start and ends it
    at its end (the next day's start); an RFC 3339 time is exact. ConfigError (exit 2) saying the forms."""
    try:
        return _parse_when(text, now, option)
    except OverflowError:  # a day at the very end or start of the calendar
        raise _bad_date(text, option) from None


def _parse_when(text: str, now: datetime.datetime, option: str) -> datetime.datetime:
    value = text.strip()
    day: datetime.date | None = None
    today = now.astimezone(datetime.timezone.utc).date()
    if value.lower() == "today":
        day = today
    elif value.lower() == "yesterday":
        day = today - datetime.timedelta(days=1)
    elif DATE.fullmatch(value):
        try:
            day = datetime.date.fromisoformat(value)
        except ValueError:
            raise _bad_date(text, option) from None
    if day is not None:
        if option == "--until":
            day += datetime.timedelta(days=1)
        return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
    match = RFC3339.fullmatch(value)
    if not match:
        raise _bad_date(text, option)
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    fraction = (match["fraction"] or "")[:7]  # Python reads at most microseconds
    try:
        moment = datetime.datetime.fromisoformat(f"{match['date']}T{match['time']}{fraction}{zone}")
    except ValueError:
        raise _bad_date(text, option) from None
    return moment.astimezone(datetime.timezone.utc)


def _bad_date(text: str, option: str) -> ConfigError:
    return ConfigError(f"{option} {text!r}: not a date; write YYYY-MM-DD, an RFC 3339 time such as "
                       "2026-11-30T06:00:00Z, `today` or `yesterday` (UTC days)")


def _stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime(BOUND_FORMAT)


def parse_approved(entries: Sequence[str]) -> tuple[str, ...]:
    """--approved-ruleset values, each NAME@sha256:HEX (digest lowercased); ConfigError on any other form."""
    out = []
    for entry in entries:
        match = APPROVED.fullmatch(entry.strip())
        if not match:
            raise ConfigError(f"--approved-ruleset {entry!r}: write NAME@sha256:<64 hex digits>, the ruleset's name "
                              "and digest as `checker ruleset show NAME` prints them or the evidence records them")
        out.append(f"{match['name']}@sha256:{match['hex'].lower()}")
    return tuple(dict.fromkeys(out))


# --- building -------------------------------------------------------------------------------------------------------

def build(rows: Iterable[Row], when: Period, *, environment: str | None = None, repository: str | None = None,
          approved: Sequence[str] | None = None, keys: Mapping[str, Ed25519PublicKey] | None = None
          ) -> ChangeReport:
    """The report over `rows` (ledger entries, any order) recorded in `when`, for `environment` and `repository`
    when given. `approved`: NAME@sha256:HEX entries (parse_approved), None: no list, nothing checked.
    `keys`: keyid -> public key to verify every row's evidence again; None or empty: trust the recorded verdict."""
    wanted = _Wanted(when, environment, repository, frozenset(approved) if approved is not None else None, keys)
    return _assemble(wanted, [_collect(rows, wanted)])


@dataclass(frozen=True)
class _Wanted:
    """What a report is over: the period, the filters, the approved list and the keys."""

    when: Period
    environment: str | None
    repository: str | None
    approved: frozenset[str] | None
    keys: Mapping[str, Ed25519PublicKey] | None


Collected = list[tuple["Change", list["ChangeException"], "Layers"]]


def _collect(rows: Iterable[Row], wanted: _Wanted) -> Collected:
    """Each wanted row's change, exceptions and ruleset layers."""
    since, until, when = wanted.when.since, wanted.when.until, wanted.when
    repository = _repository_key(wanted.repository) if wanted.repository else None
    out: Collected = []
    collecting = gc.isenabled()
    gc.disable()  # ~10 objects a row and no cycles: the collector's repeated passes cost more than the report
    try:
        with _Verifier(wanted.keys) as verifier:
            for row in rows:
                recorded = _comparable(row.appended_at)
                if (since is not None and recorded < since) or recorded >= until:
                    continue
                # with keys, filter on what the signed evidence says, not on columns an insider could edit
                source: Any = None if wanted.keys else row
                if source is not None and not _wanted(wanted, repository, source.environment, source.repository):
                    continue
                made = _change(row, when.as_of, wanted.approved, verifier)
                if wanted.keys and not _wanted(wanted, repository, made[0].environment, made[0].repository):
                    continue
                out.append(made)
    finally:
        if collecting:
            gc.enable()
    return out


def _wanted(wanted: _Wanted, repository: str | None, environment: str, repository_url: str) -> bool:
    """Whether a change of `environment` and `repository_url` is one the report is over."""
    return (wanted.environment is None or environment == wanted.environment) and (
        repository is None or _repository_key(repository_url) == repository)


def _assemble(wanted: _Wanted, parts: Iterable[Collected]) -> ChangeReport:
    """The report from every part's changes: sorted, counted, exceptions first, controls tallied."""
    controls = _ControlIndex()
    changes: list[Change] = []
    exceptions: list[ChangeException] = []
    for part in parts:
        for change, found, layers in part:
            changes.append(change)
            exceptions.extend(found)
            controls.add(change, layers)
    changes.sort(key=lambda c: c.seq)
    exceptions.sort(key=lambda e: (_RANK[e.kind], e.seq))
    decisions = [c.decision for c in changes]
    summary = Summary(len(changes), decisions.count("PASSED"), decisions.count("FAILED"),
                      decisions.count("INCOMPLETE"), len(exceptions), len({e.seq for e in exceptions}))
    notes = []
    if not wanted.keys:
        notes.append("signatures as recorded when each entry was appended (no --key given): "
                     "`checker ledger verify` is what vouches that no row was edited since")
    if wanted.approved is None:
        notes.append("no --approved-ruleset given: rulesets were not checked against an approved list")
    return ChangeReport(wanted.when, wanted.environment, wanted.repository, tuple(sorted(wanted.approved or ())),
                        tuple(sorted(wanted.keys or ())), summary, tuple(exceptions), tuple(changes),
                        controls.frameworks(), controls.unresolved(), tuple(notes))


def _comparable(appended_at: str) -> str:
    """appended_at in BOUND_FORMAT (it already is, from the ledger; anything else is normalised)."""
    if len(appended_at) == 27 and appended_at.endswith("Z"):
        return appended_at
    try:
        return _stamp(parse_when(appended_at, datetime.datetime.now(datetime.timezone.utc), "appended_at"))
    except ConfigError:
        return appended_at


def _repository_key(url: str | None) -> str:
    """A repository URL compared without a trailing slash or `.git`."""
    return (url or "").strip().rstrip("/").removesuffix(".git")


def _change(row: Row, as_of: datetime.date, approved: frozenset[str] | None,
            verifier: _Verifier) -> tuple[Change, list[ChangeException], Layers]:
    """The Change of `row`, its exceptions and its ruleset's layers."""
    kinds: list[tuple[str, str]] = []
    verdict, detail, predicate = verifier.check(row)
    if predicate is None:
        try:
            loaded = json.loads(row.predicate)
            predicate = loaded if isinstance(loaded, dict) else None
        except (ValueError, RecursionError, TypeError):
            predicate = None
    if predicate is None:
        kinds.append(("unreadable", "the entry's gate decision cannot be read; run `checker ledger verify`"))
        predicate = {}
    change = _g(predicate, "change")
    ci = _g(change, "ci")
    ruleset = _g(predicate, "ruleset")
    base = ruleset.get("base") if isinstance(ruleset.get("base"), dict) else None
    decision = str(predicate.get("decision") or row.decision or "")
    reason = str(predicate.get("reason") or "")
    counts = _g(predicate, "counts")
    open_counts, quiet = {}, {}
    for severity in SEVERITIES:
        count = _g(counts, severity)
        open_counts[severity] = _int(count.get("open"))
        quiet[severity] = _int(count.get("suppressed")) + _int(count.get("baselined"))
    tickets = tuple(str(t["id"]) for t in _list(change.get("tickets")) if isinstance(t, dict) and t.get("id"))
    waivers = tuple(Waiver(str(w.get("rule", "")), str(w.get("approvedBy", "")), str(w.get("expires", "")),
                           str(w.get("ticket", "")), str(w.get("reason", "")), _int(w.get("findings")),
                           str(w.get("source", "")))
                    for w in _list(predicate.get("waivers")) if isinstance(w, dict))
    blocking = tuple(Blocking(str(b.get("rule", "")), str(b.get("severity", "")), str(b.get("file", "")),
                              _int(b.get("line")))
                     for b in _list(predicate.get("blocking")) if isinstance(b, dict))
    pull = _g(ci, "pullRequest")
    pull_request = " ".join(p for p in (f"#{pull['number']}" if pull.get("number") is not None else "",
                                        str(pull.get("title") or "")) if p)
    name, version = str(ruleset.get("name") or row.ruleset_name), str(ruleset.get("version") or row.ruleset_version)
    digest = str(ruleset.get("digest") or row.ruleset_digest)
    base_text = f"{base.get('name', '')}@{base.get('digest', '')}" if base else ""
    if decision == "FAILED":
        kinds.append(("failed", reason or "the gate failed"))
    elif decision == "INCOMPLETE":
        kinds.append(("incomplete", reason or "something could not be checked"))
    if verdict == "unsigned":
        kinds.append(("unsigned", detail))
    elif verdict != "verified":
        kinds.append(("unverified", detail))
    if approved is not None and f"{name}@{digest}" not in approved and base_text not in approved:
        said = f"{name}@{version} ({digest})" + (f", base {base_text}" if base_text else "")
        kinds.append(("unapproved-ruleset", f"{said} is not in the approved list"))
    if decision == "PASSED" and laxer_than_locked(predicate):
        kinds.append(("laxer-threshold", laxer_than_locked(predicate)))
    scope = _g(predicate, "scope")
    if not scope.get("wholeRepository"):
        paths = ", ".join(str(p) for p in _list(scope.get("paths"))[:5]) or "nothing recorded"
        kinds.append(("partial", f"the scan covered {paths}, not the whole repository: not evidence for the commit"))
    if change.get("dirty"):
        kinds.append(("dirty", "scanned a working tree with uncommitted changes: not evidence for the commit"))
    if not tickets:
        required = " (the ruleset requires one: ORG-CHANGE-001)" if change.get("ticketRequired") else ""
        kinds.append(("no-ticket", f"no ticket found in the commits, branch or pull request{required}"))
    for waiver in waivers:
        kinds.extend(_waiver_exception(waiver, as_of))
    result = Change(
        seq=row.seq, recorded=row.appended_at, decided=str(predicate.get("decidedOn") or row.decided_on or ""),
        repository=str(change.get("repository") or row.repository or ""),
        environment=str(predicate.get("environment") or row.environment or ""),
        commit=str(change.get("commit") or row.commit or ""), branch=str(change.get("branch") or row.branch or ""),
        dirty=bool(change.get("dirty")), tickets=tickets,
        actor=str(ci.get("actor") or ci.get("triggeringActor") or ""), pull_request=pull_request,
        run_url=str(ci.get("runUrl") or ci.get("jobUrl") or ""), ruleset=f"{name}@{version}",
        ruleset_digest=digest, base=base_text, decision=decision, reason=reason, open=open_counts,
        suppressed=quiet, blocking=blocking, waivers=waivers, not_checked=len(_list(predicate.get("notChecked"))),
        verified=verdict, verified_detail=detail, exceptions=tuple(dict.fromkeys(k for k, _ in kinds)))
    found = [ChangeException(kind, result.seq, result.recorded, result.repository, result.environment, result.commit,
                        text) for kind, text in kinds]
    layers = tuple((str(layer.get("name", "")), str(layer.get("file", "")), str(layer.get("digest", "")))
                   for layer in _list(ruleset.get("layers")) if isinstance(layer, dict))
    return result, found, layers


def _waiver_exception(waiver: Waiver, as_of: datetime.date) -> list[tuple[str, str]]:
    from checker.suppress import EXPIRY_WARNING

    who = f"waiver for {waiver.rule} approved by {waiver.approved_by or '(nobody recorded)'}"
    try:
        expires = datetime.date.fromisoformat(waiver.expires)
    except ValueError:
        return [("waiver-expired", f"{who}: expiry {waiver.expires!r} is not a date")]
    if expires < as_of:
        return [("waiver-expired", f"{who} expired on {expires} ({(as_of - expires).days} day(s) before {as_of})")]
    if expires <= as_of + EXPIRY_WARNING:
        return [("waiver-expiring", f"{who} expires on {expires}, in {(expires - as_of).days} day(s)")]
    return []


_EMPTY: Mapping[str, Any] = {}


def _g(mapping: Any, key: str) -> Mapping[str, Any]:
    """mapping[key] when both are JSON objects, else {} (a predicate is JSON: dicts, never other Mappings)."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, dict) else _EMPTY


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if type(value) is int else 0


# --- signatures -----------------------------------------------------------------------------------------------------

class _Verifier:
    """Each row's evidence verified again under the trusted keys, or the verdict recorded at append."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey] | None) -> None:
        self.keys = dict(keys or {})
        self.folder: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Self:
        if self.keys:
            self.folder = tempfile.TemporaryDirectory(prefix="checker-report-")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.folder is not None:
            self.folder.cleanup()

    def check(self, row: Row) -> tuple[str, str, dict[str, Any] | None]:
        """(verdict, detail, the verified predicate or None): verdict is verified, unsigned, not verified
        or not checked."""
        if not self.keys or self.folder is None:
            if not row.signer:
                return "unsigned", "the evidence carries no signature (was a signing key given to the scan?)", None
            if row.verified is True:
                return "verified", f"at append, key {row.signer}", None
            if row.verified is False:
                return "not verified", f"did not verify when appended (signed by {row.signer})", None
            return "not checked", (f"signed by {row.signer}, never verified: appended without --key, and no --key "
                                   "given to the report"), None
        return self._verify(row)

    def _verify(self, row: Row) -> tuple[str, str, dict[str, Any] | None]:
        from checker.evidence import PREDICATE_TYPE, verify

        assert self.folder is not None
        path = Path(self.folder.name) / f"{row.seq}.intoto.jsonl"
        path.write_bytes(row.evidence)
        try:
            report = verify.verify(str(path), self.keys)
        finally:
            os.unlink(path)
        if report.exit_code == verify.NOT_VERIFIED:
            problems = [c.message for c in report.checks if not c.ok]
            text = problems[0] if problems else "did not verify"
            text = text.removeprefix(f"{path}: ").removeprefix(f"{path}:")
            if "unsigned" in text and not row.signer:
                return "unsigned", "the evidence carries no signature (was a signing key given to the scan?)", None
            return "not verified", text, None
        predicate = _signed_predicate(row.evidence, PREDICATE_TYPE)
        try:
            recorded = json.loads(row.predicate)
        except (ValueError, RecursionError, TypeError):
            recorded = None
        if predicate is None or recorded != predicate:
            return ("not verified", ("the entry's columns differ from its own signed evidence: the row was edited; run "
                                    "`checker ledger verify`"), predicate)
        return "verified", f"key {', '.join(report.signed_by)}", predicate


def _signed_predicate(evidence: bytes, predicate_type: str) -> dict[str, Any] | None:
    """The gate-decision predicate inside evidence that has just verified, read as `verify` read it."""
    from checker.evidence import dsse

    for envelope in dsse.parse(evidence, "evidence"):
        statement = json.loads(envelope.payload)
        if isinstance(statement, dict) and statement.get("predicateType") == predicate_type:
            found = statement.get("predicate")
            return found if isinstance(found, dict) else None
    return None


# --- controls -------------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _bundled(file: str, digest: str) -> tuple[dict[str, dict[str, dict[str, Any]]] | None, str]:
    """The `controls` of the bundled layer `file` (bundled:NAME) when its bytes have `digest`; else (None, why)."""
    from checker.ruleset import BUNDLED_DIR

    if not file.startswith("bundled:"):
        where = "an external file" if file.startswith("external:") else "a file of the repository"
        return None, f"{where}: not in the ledger, so any controls it defines are not shown"
    name = file.removeprefix("bundled:")
    path = BUNDLED_DIR / f"{name}.yaml"
    if "/" in name or "\\" in name or not path.is_file():
        return None, "no bundled ruleset of that name in this checker: its controls are not shown"
    data = path.read_bytes()
    found = "sha256:" + hashlib.sha256(data).hexdigest()
    if found != digest:
        return None, (f"this checker's bundled {name} is {found[:19]}..., not the recorded digest (another "
                      "checker version): its controls are not shown")
    import yaml

    document = yaml.safe_load(data) or {}
    controls = document.get("controls") or {}
    return {str(f): {str(c): {"title": str(s.get("title", "")), "rules": [str(r) for r in s.get("rules", [])]}
                     for c, s in entries.items()} for f, entries in controls.items()}, ""


@dataclass
class _Tally:
    changes: int = 0
    blocking: int = 0
    failed_changes: int = 0
    waived: int = 0


class _ControlIndex:
    """Accumulates, per framework and control, what the changes assessed under it found."""

    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, dict[str, Any]]] = {}
        self.sources: dict[str, dict[str, None]] = {}
        self.framework_changes: dict[str, int] = {}
        self.tallies: dict[tuple[str, str], _Tally] = {}
        self.missing: dict[tuple[str, str, str], tuple[str, int]] = {}
        self.resolved: dict[Layers, tuple[dict[str, dict[str, dict[str, Any]]], dict[str, str]]] = {}
        self.matches: dict[tuple[Layers, str], tuple[tuple[str, str], ...]] = {}
        self.missing_for: dict[Layers, list[tuple[str, str, str, str]]] = {}
        self.layer_changes: dict[Layers, int] = {}
        self.counted = False

    def add(self, change: Change, layers: Layers) -> None:
        controls, _ = self._resolve(layers)
        self.layer_changes[layers] = self.layer_changes.get(layers, 0) + 1
        if not controls:
            return
        hit: set[tuple[str, str]] = set()
        for finding in change.blocking:
            for key in self._controls_of(layers, controls, finding.rule):
                self._tally(key).blocking += 1
                hit.add(key)
        for key in hit:
            self._tally(key).failed_changes += 1
        for waiver in change.waivers:
            for key in self._controls_of(layers, controls, waiver.rule):
                self._tally(key).waived += waiver.findings

    def _tally(self, key: tuple[str, str]) -> _Tally:
        if key not in self.tallies:
            self.tallies[key] = _Tally()
        return self.tallies[key]

    def _count_changes(self) -> None:
        """Per framework and control, the changes assessed: once per distinct chain of layers, times its changes."""
        for layers, count in self.layer_changes.items():
            controls, origin = self.resolved[layers]
            for framework, entries in controls.items():
                self.framework_changes[framework] = self.framework_changes.get(framework, 0) + count
                self.sources.setdefault(framework, {})[origin[framework]] = None
                known = self.definitions.setdefault(framework, {})
                for control, spec in entries.items():
                    known.setdefault(control, spec)
                    self._tally((framework, control)).changes += count
            for name, file, digest, why in self.missing_for[layers]:
                _, seen = self.missing.get((name, file, digest), (why, 0))
                self.missing[(name, file, digest)] = (why, seen + count)

    def _resolve(self, layers: Layers) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, str]]:
        if layers in self.resolved:
            cached = self.resolved[layers]
        else:
            merged: dict[str, dict[str, dict[str, Any]]] = {}
            origin: dict[str, str] = {}
            missing: list[tuple[str, str, str, str]] = []
            for name, file, digest in layers:
                controls, why = _bundled(file, digest)
                if controls is None:
                    missing.append((name, file, digest, why))
                    continue
                for framework, entries in controls.items():
                    merged.setdefault(framework, {}).update(entries)
                    origin[framework] = file
            cached = (merged, origin)
            self.resolved[layers] = cached
            self.missing_for[layers] = missing
        return cached

    def _controls_of(self, layers: Layers, controls: Mapping[str, Mapping[str, Mapping[str, Any]]],
                     rule: str) -> tuple[tuple[str, str], ...]:
        key = (layers, rule)
        if key not in self.matches:
            self.matches[key] = tuple((framework, control) for framework, entries in controls.items()
                                      for control, spec in entries.items()
                                      if any(fnmatch.fnmatchcase(rule, pattern) for pattern in spec["rules"]))
        return self.matches[key]

    def frameworks(self) -> tuple[Framework, ...]:
        if not self.counted:
            self._count_changes()
            self.counted = True
        out = []
        for framework in sorted(self.definitions):
            controls = tuple(
                Control(control, spec["title"], tuple(spec["rules"]), tally.changes, tally.blocking,
                        tally.failed_changes, tally.waived)
                for control, spec in sorted(self.definitions[framework].items(), key=lambda kv: _control_key(kv[0]))
                for tally in (self.tallies[(framework, control)],))
            out.append(Framework(framework, tuple(self.sources[framework]), self.framework_changes[framework],
                                 controls))
        return tuple(out)

    def unresolved(self) -> tuple[Unresolved, ...]:
        if not self.counted:
            self._count_changes()
            self.counted = True
        return tuple(Unresolved(name, file, digest, why, count)
                     for (name, file, digest), (why, count) in sorted(self.missing.items()))


def _control_key(control: str) -> tuple[Any, ...]:
    """'1.2.10' after '1.2.9': numeric parts compare as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"[.\-]", control))
