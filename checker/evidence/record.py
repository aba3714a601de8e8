"""The gate-decision predicate: what one gate decision records, the same after a scan
(`checker scan --evidence-output`) as after a decision on its SARIF (`checker gate`).

In both cases ruleset, tools, change and baseline come from the SARIF run's properties, which
`checker.reporters.sarif.run_properties` writes, so a one-stage and a two-stage pipeline cannot
disagree about what was scanned. File paths are relative to the repository, as in the SARIF.
The field list is `gate-decision.schema.json` beside this module.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from checker.change import Change
from checker.gate import Decision
from checker.model import FailOn, Finding, Problem, Severity, timestamp

UNKNOWN_SCOPE = {"paths": [], "wholeRepository": False, "files": 0, "rules": 0}  # a SARIF that records none


@dataclasses.dataclass(frozen=True)
class Gated:
    """One gate decision and what it was made on."""

    findings: Sequence[Finding]
    problems: Sequence[Problem]
    decision: Decision
    fail_on: FailOn
    properties: Mapping[str, Any]  # the SARIF run's properties (ruleset, versions, change, baseline)
    started: str
    finished: str
    prefix: str = ""  # what makes a scan-root path relative to the repository ("" when it already is)
    baseline_digest: str = ""  # a baseline applied at this decision (`checker gate --baseline`), hex
    decided_from: str = "scan"  # "scan", or "sarif": `checker gate` re-decided on a SARIF file it did not write


def predicate(gated: Gated, sarif_name: str, sarif_bytes: bytes, environment: str | None) -> dict[str, Any]:
    """The gate-decision predicate (v1) as plain JSON data."""
    props = gated.properties
    ruleset, versions = props.get("ruleset") or {}, props.get("versions") or {}
    baseline = {"digest": f"sha256:{gated.baseline_digest}"} if gated.baseline_digest else props.get("baseline")
    return {
        "decision": gated.decision.verdict,
        "reason": gated.decision.reason,
        "threshold": gated.fail_on,
        "exitCode": gated.decision.exit_code,
        "decidedFrom": gated.decided_from,
        "counts": _counts(gated.findings),
        "blocking": [{"rule": f.rule_id, "severity": f.severity.value, "file": gated.prefix + f.location.path,
                      "line": f.location.start_line, "fingerprint": f.fingerprint} for f in gated.decision.blocking],
        "notChecked": [_problem(p, gated.prefix) for p in gated.problems],
        "waivers": _waivers(gated.findings),
        "inlineSuppressions": _inline(gated.findings, gated.prefix),
        "baseline": baseline or None,
        "ruleset": {"name": ruleset.get("name", ""), "version": ruleset.get("version", ""),
                    "digest": ruleset.get("digest", ""), "base": ruleset.get("base"),
                    "layers": list(ruleset.get("layers", [])), "lockedFailOn": ruleset.get("lockedFailOn")},
        "tools": {"checker": versions.get("checker", ""), "checkov": versions.get("checkov", "")},
        "startedOn": gated.started,
        "finishedOn": gated.finished,
        "decidedOn": timestamp(),
        "environment": environment,
        "sarif": {"name": sarif_name, "digest": {"sha256": hashlib.sha256(sarif_bytes).hexdigest()}},
        "scope": {**UNKNOWN_SCOPE, **(props.get("scope") or {})},
        "change": {**Change().as_dict(), **(props.get("change") or {})},
    }


def check_shape(properties: Mapping[str, Any]) -> str:
    """What is wrong with a SARIF run's record for sealing ('' when nothing): a SARIF edited by hand
    or written by another tool must give a clear error, never a crash."""
    for key, kind in (("ruleset", dict), ("versions", dict), ("change", dict), ("scope", dict), ("baseline", dict)):
        if properties.get(key) is not None and not isinstance(properties[key], kind):
            return f"run property {key!r} is not an object"
    layers = (properties.get("ruleset") or {}).get("layers", [])
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        return "run property ruleset.layers is not a list of objects"
    return ""


def _counts(findings: Sequence[Finding]) -> dict[str, dict[str, int]]:
    counts = {s.value: {"open": 0, "suppressed": 0, "baselined": 0} for s in Severity}
    for f in findings:
        state = "open" if f.is_open else "suppressed" if f.suppression is not None else "baselined"
        counts[f.severity.value][state] += 1
    return counts


def _problem(problem: Problem, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {"message": problem.message}
    if problem.path:
        out["file"] = prefix + problem.path
    if problem.line:
        out["line"] = problem.line
    return out


def _waivers(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """Each waiver that suppressed something, once, with how many findings it suppressed."""
    applied: dict[tuple[str, str], dict[str, Any]] = {}
    for f in findings:
        if f.suppression is None or f.suppression.kind != "external":
            continue
        waiver = f.suppression
        key = (f.rule_id, waiver.source)
        if key not in applied:
            applied[key] = {"rule": f.rule_id, "paths": list(waiver.paths), "reason": waiver.justification,
                            "approvedBy": waiver.approved_by, "expires": waiver.expires, "source": waiver.source,
                            "findings": 0}
            if waiver.ticket:
                applied[key]["ticket"] = waiver.ticket
        applied[key]["findings"] += 1
    return sorted(applied.values(), key=lambda w: (w["rule"], w["source"]))


def _inline(findings: Sequence[Finding], prefix: str) -> list[dict[str, Any]]:
    """Each finding an inline comment suppressed, at the comment's line where we know it."""
    out = []
    for f in findings:
        if f.suppression is None or f.suppression.kind != "inSource":
            continue
        match = re.fullmatch(r".+:(\d+)", f.suppression.source)  # `FILE:LINE` of the comment (ours)
        out.append({"rule": f.rule_id, "file": prefix + f.location.path,
                    "line": int(match[1]) if match else f.location.start_line, "reason": f.suppression.justification})
    return sorted(out, key=lambda s: (s["file"], s["line"], s["rule"]))
