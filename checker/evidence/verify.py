"""`checker evidence verify`: does this evidence prove what a deploy job is about to rely on?

Checked in this order, stopping at the first stage that fails (what follows a failed stage would
be read from a payload nobody vouches for):
1. the file: JSON Lines of DSSE envelopes of in-toto payloads (dsse.read);
2. every envelope: at least one signature by a given key verifies over the PAE (unsigned, an
   unknown key and a bad signature each say so);
3. the statements: in-toto Statement v1, exactly one gate decision and one SLSA VSA, nothing else;
4. their content: the same subjects in both; the predicate valid under its schema; the VSA agreeing
   with the predicate (result, policy digest, SARIF digest); the subjects naming the predicate's
   SARIF and (clean tree only) commit;
5. what the caller asked: --sarif (sha256 of the file's bytes), --commit (the full id: a prefix
   could be made to collide; a dirty tree, or a scan of less than the whole repository, is
   refused), --subject (a subject has that sha256), --environment (the one recorded), --ruleset
   (see `_Asked._ruleset`: a name alone must be one the judged repository cannot choose);
6. with --require-pass: the gate PASSED at a threshold no laxer than the ruleset's locks.fail_on.

Exit codes (DESIGN.md): 0 verified; 1 verified but, with --require-pass, the recorded gate did not
pass; 3 anything that does not verify. Bad arguments (a --commit that is not hex, a missing file)
are ConfigErrors (2), raised before anything is read. Every line of the report is safe to print:
text from the file goes through checker.output.printable.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from checker.change import GIT_COMMIT
from checker.errors import ConfigError
from checker.evidence import PREDICATE_TYPE, STATEMENT_TYPE, VSA_TYPE
from checker.output import printable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VERIFIED, GATE_NOT_PASSED, NOT_VERIFIED = 0, 1, 3
THRESHOLDS = ("never", "critical", "high", "medium", "low", "info")  # laxest first
RULESET = re.compile(r"(?P<name>.+?)(?:@sha256:(?P<hex>[0-9a-fA-F]{64}))?")


@dataclass(frozen=True)
class Check:
    """One thing verified (ok) or not, said in a line safe to print."""

    ok: bool
    message: str


@dataclass(frozen=True)
class Report:
    """What `verify` found: the checks in order, the exit code and, once verified, the decision."""

    path: str
    checks: tuple[Check, ...]
    exit_code: int
    decision: str = ""
    signed_by: tuple[str, ...] = ()
    subjects: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def summary(self) -> str:
        name = printable(self.path)
        if self.exit_code == NOT_VERIFIED:
            failed = sum(not c.ok for c in self.checks)
            return f"NOT VERIFIED: {name}: {failed} problem(s); do not rely on this evidence"
        if self.exit_code == GATE_NOT_PASSED:
            return f"verified, but the recorded gate did not pass ({self.decision}): {name} (--require-pass)"
        return f"verified: {name}: gate {self.decision}, signed by {', '.join(self.signed_by)}"

    def lines(self) -> list[str]:
        """The text report: one line a check ('ok' or 'FAIL'), then the summary."""
        return [f"{'ok  ' if c.ok else 'FAIL'} {c.message}" for c in self.checks] + [self.summary]

    def as_dict(self) -> dict[str, Any]:
        """The JSON report (`--format json`)."""
        return {"file": self.path, "verified": self.exit_code != NOT_VERIFIED, "exitCode": self.exit_code,
                "decision": self.decision or None, "signedBy": list(self.signed_by),
                "subjects": [dict(s) for s in self.subjects],
                "checks": [{"ok": c.ok, "message": c.message} for c in self.checks], "summary": self.summary}


@dataclass(frozen=True)
class _Statement:
    line: int
    subjects: list[Any]
    predicate: Mapping[str, Any]


def verify(path: str, keys: Mapping[str, Ed25519PublicKey], sarif: str | None = None, commit: str | None = None,
           subject: str | None = None, ruleset: str | None = None, require_pass: bool = False,
           environment: str | None = None) -> Report:
    """Verify the evidence file `path` under the trusted `keys` (keyid -> key) and what is asked; see the module.

    `subject` is `sha256:HEX`, already checked for form by the command line."""
    from checker.evidence import dsse

    asked = _Asked.parse(keys, sarif, commit, subject, ruleset, environment)
    checks: list[Check] = []

    def stop() -> Report:
        return Report(path, tuple(checks), NOT_VERIFIED)

    try:
        envelopes = dsse.read(path)
    except dsse.EvidenceError as error:
        checks.append(Check(False, printable(str(error))))
        return stop()
    signed_by: list[str] = []
    for envelope in envelopes:
        result = dsse.check(envelope, keys)
        if result.ok:
            signed_by.append(result.keyid)
            checks.append(Check(True, f"line {envelope.line}: signed by key {result.keyid}"))
        else:
            checks.append(Check(False, f"line {envelope.line}: {printable(result.problem)}"))
    if not all(c.ok for c in checks):
        return stop()
    gate = check_statements(envelopes, checks)
    if gate is None:
        return stop()
    predicate = gate.predicate
    subjects = tuple(gate.subjects)
    asked.check(predicate, subjects, checks)
    keyids = tuple(dict.fromkeys(signed_by))
    if not all(c.ok for c in checks):
        return Report(path, tuple(checks), NOT_VERIFIED, str(predicate["decision"]), keyids, subjects)
    decision = str(predicate["decision"])
    reason = printable(str(predicate["reason"]))
    laxer = laxer_than_locked(predicate)
    if decision == "PASSED" and laxer:
        reason = laxer
    elif decision == "PASSED":
        checks.append(Check(True, f"the recorded gate PASSED: {reason}"))
        return Report(path, tuple(checks), VERIFIED, decision, keyids, subjects)
    checks.append(Check(not require_pass, f"the recorded gate {decision}: {reason}"))
    return Report(path, tuple(checks), GATE_NOT_PASSED if require_pass else VERIFIED, decision, keyids, subjects)


def laxer_than_locked(predicate: Mapping[str, Any]) -> str:
    """Why a decision's threshold is laxer than its ruleset's locks.fail_on ('' when it is not): such a
    pass is no pass under the ruleset (`--fail-on never` under org-gate)."""
    ruleset = predicate.get("ruleset")
    if not isinstance(ruleset, dict):
        ruleset = {}
    locked, threshold = ruleset.get("lockedFailOn"), str(predicate.get("threshold"))
    if locked in THRESHOLDS and threshold in THRESHOLDS and THRESHOLDS.index(threshold) < THRESHOLDS.index(locked):
        return f"at fail_on {threshold}, laxer than the ruleset's locked fail_on {locked}, so it is no pass under it"
    return ""


def check_statements(envelopes: list[Any], checks: list[Check]) -> _Statement | None:
    """The gate-decision statement when the envelopes hold exactly one gate decision and one SLSA VSA
    that agree (stages 3 and 4; `checker ledger` applies them too); None, the reasons in `checks`."""
    gate, vsa = _statements(envelopes, checks)
    if gate is None or vsa is None or not _content(gate, vsa, checks):
        return None
    return gate


def _statements(envelopes: list[Any], checks: list[Check]) -> tuple[_Statement | None, _Statement | None]:
    """The gate-decision and VSA statements, exactly one of each; failures appended to `checks`."""
    found: dict[str, list[_Statement]] = {PREDICATE_TYPE: [], VSA_TYPE: []}
    for envelope in envelopes:
        where = f"line {envelope.line}"
        try:
            data = json.loads(envelope.payload)
        except (ValueError, RecursionError):
            checks.append(Check(False, f"{where}: the payload is not JSON, so not an in-toto Statement"))
            continue
        problem = _statement_problem(data)
        if problem:
            checks.append(Check(False, f"{where}: not an in-toto Statement v1: {problem}"))
            continue
        kind = data["predicateType"]
        if kind not in found:
            checks.append(Check(False, f"{where}: a statement of predicate type {printable(repr(kind))}; checker "
                                       "evidence holds only its gate decision and a SLSA VSA"))
            continue
        found[kind].append(_Statement(envelope.line, data["subject"], data["predicate"]))
    for kind, what in ((PREDICATE_TYPE, "gate-decision"), (VSA_TYPE, "SLSA VSA")):
        if len(found[kind]) != 1:
            where = f" (lines {', '.join(str(s.line) for s in found[kind])})" if found[kind] else ""
            checks.append(Check(False, f"{len(found[kind])} {what} statement(s){where}; the evidence must hold "
                                       "exactly one"))
    if not all(c.ok for c in checks):
        return None, None
    return found[PREDICATE_TYPE][0], found[VSA_TYPE][0]


def _statement_problem(data: Any) -> str:
    if not isinstance(data, dict):
        return "the payload is not a JSON object"
    if data.get("_type") != STATEMENT_TYPE:
        return f"_type is {printable(repr(data.get('_type')))}, not {STATEMENT_TYPE!r}"
    if not isinstance(data.get("subject"), list) or not data["subject"]:
        return "no subject"
    if not all(isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"] for s in data["subject"]):
        return "a subject without a digest"
    if not isinstance(data.get("predicateType"), str):
        return "no predicateType"
    if not isinstance(data.get("predicate"), dict):
        return "no predicate object"
    return ""


def _content(gate: _Statement, vsa: _Statement, checks: list[Check]) -> bool:
    """The statements agree with each other and the predicate is valid; failures appended to `checks`."""
    from checker.evidence import statements

    start = len(checks)
    if gate.subjects != vsa.subjects:
        checks.append(Check(False, f"the gate decision (line {gate.line}) and the VSA (line {vsa.line}) name "
                                   "different subjects"))
    problems = statements.predicate_problems(gate.predicate)
    for problem in problems[:10]:
        checks.append(Check(False, f"line {gate.line}: the gate decision does not match its schema: "
                                   f"{printable(problem)}"))
    if problems:
        return False
    predicate = gate.predicate
    summary = vsa.predicate
    expected_result = "PASSED" if predicate["decision"] == "PASSED" else "FAILED"
    if summary.get("verificationResult") != expected_result:
        checks.append(Check(False, f"the VSA says {printable(repr(summary.get('verificationResult')))} but the gate "
                                   f"decision is {predicate['decision']}"))
    policy = summary.get("policy")
    policy_digest = policy.get("digest", {}).get("sha256") if isinstance(policy, dict) else None
    if policy_digest != predicate["ruleset"]["digest"].removeprefix("sha256:"):
        checks.append(Check(False, "the VSA's policy digest is not the gate decision's ruleset digest"))
    sarif_digest = predicate["sarif"]["digest"]["sha256"]
    inputs = summary.get("inputAttestations")
    if not isinstance(inputs, list) or not any(isinstance(i, dict) and isinstance(i.get("digest"), dict)
                                               and i["digest"].get("sha256") == sarif_digest for i in inputs):
        checks.append(Check(False, "the VSA's input attestations do not name the gate decision's SARIF digest"))
    descriptors = [(s.get("name"), s.get("digest")) for s in gate.subjects]
    for wanted in statements.statement_subjects(predicate, []):
        if (wanted.name, dict(wanted.digest)) not in descriptors:
            checks.append(Check(False, f"the subjects do not name the decision's {printable(wanted.name)} "
                                       f"({', '.join(f'{k}:{v}' for k, v in wanted.digest.items())})"))
    clean_commit = predicate["change"]["commit"] if statements.vouches_for_commit(predicate) else None
    for _, digest in descriptors:
        if "gitCommit" in digest and digest["gitCommit"] != clean_commit:
            checks.append(Check(False, f"a subject names commit {printable(str(digest['gitCommit']))}, which the gate "
                                       "decision does not vouch for"))
    if len(checks) > start:
        return False
    checks.append(Check(True, f"one gate decision and one SLSA VSA that agree ({predicate['decision']}, ruleset "
                              f"digest, SARIF digest) and name the same {len(gate.subjects)} subject(s)"))
    return True


@dataclass(frozen=True)
class _Asked:
    """What the caller asked the evidence to prove, checked for form before the file is read."""

    sarif: str | None
    sarif_digest: str
    commit: str
    subject: str
    ruleset_name: str
    ruleset_digest: str
    environment: str | None

    @classmethod
    def parse(cls, keys: Mapping[str, Any], sarif: str | None, commit: str | None, subject: str | None,
              ruleset: str | None, environment: str | None) -> _Asked:
        if not keys:
            raise ConfigError("give at least one --key PUB: evidence verifies only under a key you trust")
        if commit is not None and not GIT_COMMIT.fullmatch(commit.lower()):
            raise ConfigError(f"--commit {commit!r}: give the full commit id (40 or 64 hex digits), as "
                              "`git rev-parse HEAD`, $GITHUB_SHA or $CI_COMMIT_SHA print it")
        parsed = RULESET.fullmatch(ruleset) if ruleset is not None else None
        if ruleset is not None and (not parsed or not ruleset.strip() or ("@" in parsed["name"] and not parsed["hex"])):
            raise ConfigError(f"--ruleset {ruleset!r}: write NAME, NAME@sha256:<64 hex digits> or FILE@sha256:<...>")
        return cls(sarif, _sha256_file(sarif) if sarif is not None else "", (commit or "").lower(),
                   (subject or "").removeprefix("sha256:").lower(), parsed["name"] if parsed else "",
                   (parsed["hex"] or "").lower() if parsed else "", environment)

    def check(self, predicate: Mapping[str, Any], subjects: tuple[Mapping[str, Any], ...],
              checks: list[Check]) -> None:
        """Each thing asked, verified against the (verified) decision; one Check each."""
        digests = [s.get("digest", {}) for s in subjects]
        if self.sarif is not None:
            recorded = predicate["sarif"]["digest"]["sha256"]
            name = printable(self.sarif)
            if self.sarif_digest == recorded and any(d.get("sha256") == recorded for d in digests):
                checks.append(Check(True, f"the SARIF {name} is the one the gate decided on (sha256:{recorded})"))
            else:
                checks.append(Check(False, f"the SARIF {name} (sha256:{self.sarif_digest}) is not the one the gate "
                                           f"decided on (sha256:{recorded}): it was altered, or is another scan's"))
        if self.commit:
            checks.append(self._commit(predicate["change"], predicate["scope"], digests))
        if self.subject:
            named = [s for s in subjects if s.get("digest", {}).get("sha256") == self.subject]
            if named:
                checks.append(Check(True, f"subject {printable(str(named[0].get('name', '')))} has "
                                          f"sha256:{self.subject}"))
            else:
                checks.append(Check(False, f"no subject has sha256:{self.subject}: the decision is not about that "
                                           "artifact"))
        if self.environment is not None:
            recorded_env = predicate.get("environment")
            checks.append(Check(recorded_env == self.environment,
                                f"the decision was for environment {printable(str(recorded_env))}"
                                + ("" if recorded_env == self.environment else f", not {printable(self.environment)}")))
        if self.ruleset_name:
            checks.append(self._ruleset(predicate["ruleset"]))

    def _commit(self, change: Mapping[str, Any], scope: Mapping[str, Any], digests: list[Mapping[str, Any]]) -> Check:
        recorded = change.get("commit") or ""
        if change.get("dirty"):
            return Check(False, f"scanned a working tree with uncommitted changes on top of {recorded or 'no commit'}: "
                                "not evidence for the commit")
        if not scope.get("wholeRepository"):
            paths = ", ".join(printable(str(p)) for p in scope.get("paths", [])[:5]) or "nothing recorded"
            return Check(False, f"the scan covered {paths}, not the whole repository: not evidence for the commit")
        commits = [d["gitCommit"] for d in digests if "gitCommit" in d]
        if not commits:
            return Check(False, "the evidence names no commit (the scan was not of a git checkout)")
        if self.commit in commits:
            return Check(True, f"the decision is for commit {self.commit}")
        return Check(False, f"the decision is for commit {printable(commits[0])}, not {self.commit}")

    def _ruleset(self, recorded: Mapping[str, Any]) -> Check:
        """NAME alone matches what the judged repository cannot name itself: the --base layer, or a
        ruleset that is bundled as a whole. With a digest, the ruleset or the base must have it (and
        the name, unless a file was named: a --base FILE is recorded by its own metadata name)."""
        asked = self.ruleset_name + (f"@sha256:{self.ruleset_digest}" if self.ruleset_digest else "")
        is_file = "/" in self.ruleset_name or self.ruleset_name.endswith((".yaml", ".yml"))
        base, layers = recorded.get("base"), recorded.get("layers") or []
        candidates = [("base layer", base["name"], base["digest"])] if base else []
        if self.ruleset_digest or (layers and layers[-1].get("file") == f"bundled:{recorded['name']}"):
            candidates.append(("ruleset", recorded["name"], recorded["digest"]))
        for role, name, digest in candidates:
            named = (is_file and bool(self.ruleset_digest)) or name == self.ruleset_name
            if named and (not self.ruleset_digest or digest == f"sha256:{self.ruleset_digest}"):
                return Check(True, f"the decision's {role} is {printable(name)} ({digest})")
        said = f"{printable(recorded['name'])} ({recorded['digest']})" + (
            f" on the base {printable(base['name'])} ({base['digest']})" if base else " without a --base")
        return Check(False, f"the decision was made under {said}, not {printable(asked)}; a name alone matches only "
                            "the --base or a bundled ruleset")


def _sha256_file(path: str) -> str:
    """sha256 hex of a file's bytes, read in chunks (a SARIF can be large); ConfigError if unreadable."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
    except FileNotFoundError:
        raise ConfigError(f"--sarif {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--sarif {path}: is a folder, not a SARIF file") from None
    except OSError as error:
        raise ConfigError(f"--sarif {path}: could not read it: {error.strerror or error}") from None
    return digest.hexdigest()
