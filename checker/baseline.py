"""Reading our SARIF back: baselines (findings that do not fail the gate again) and re-gating.

Findings are matched by their `checker/v1` partial fingerprint (rule, file, resource and rank
among equals), so they survive lines moving and never merge across files or resources.
Artifact URIs are percent-encoded in the SARIF (RFC 3986); they are decoded back to paths here.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args

from checker.errors import ConfigError
from checker.model import (
    FAIL_ON_CHOICES,
    FINGERPRINT_KEY,
    BaselineState,
    FailOn,
    Finding,
    Location,
    Problem,
    Severity,
    Suppression,
    SuppressionKind,
)

T = TypeVar("T")


def read_sarif(path: str, data: bytes | None = None) -> dict[str, Any]:
    """A SARIF log as data (from `data`, the file's bytes when already read); a clear
    configuration error when it is not one."""
    try:
        doc = json.loads(Path(path).read_bytes() if data is None else data)
    except (OSError, ValueError, RecursionError) as error:
        raise ConfigError(f"{path}: not a readable SARIF file: {str(error)[:200]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list) or not doc["runs"]:
        raise ConfigError(f"{path}: not a SARIF log (no runs)")
    return doc


@contextlib.contextmanager
def _written_by_us(path: str) -> Iterator[None]:
    """A SARIF log of another shape (edited, truncated, another tool's) is a usage error, not a crash."""
    try:
        yield
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
        raise ConfigError(f"{path}: not a SARIF log as `checker scan` writes it ({type(error).__name__}: "
                          f"{str(error)[:200]}); use the --sarif-output of a scan") from None


def fingerprints(path: str, data: bytes | None = None) -> dict[str, str]:
    """fingerprint -> 'RULE path' of every result in a baseline SARIF (`data`: its bytes, when read)."""
    with _written_by_us(path):
        return _fingerprints(path, data)


def read_bytes(path: str) -> bytes:
    """A SARIF file's bytes, read once: what is decided on is what its digest records."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the SARIF: {error.strerror or error}") from None


def _fingerprints(path: str, data: bytes | None) -> dict[str, str]:
    out = {}
    for run in read_sarif(path, data)["runs"]:
        for result in run.get("results", []):
            fingerprint = (result.get("partialFingerprints") or {}).get(FINGERPRINT_KEY)
            if fingerprint:
                uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                out[fingerprint] = f"{result.get('ruleId')} {path_of(uri)}"
    if not out:
        raise ConfigError(f"{path}: has no results with a {FINGERPRINT_KEY} fingerprint; "
                          "make a baseline with `checker scan --sarif-output`")
    return out


def path_of(uri: str) -> str:
    """The path an artifact URI of ours names (the inverse of checker.reporters.sarif.artifact_uri)."""
    return urllib.parse.unquote(uri, errors="surrogateescape")


def apply(findings: Sequence[Finding], baseline: dict[str, str]) -> tuple[list[Finding], tuple[str, ...]]:
    """Mark each finding new or unchanged; return also what the baseline had that is gone (fixed)."""
    marked = [dataclasses.replace(f, baseline_state="unchanged" if f.fingerprint in baseline else "new")
              for f in findings]
    present = {f.fingerprint for f in findings}
    fixed = tuple(sorted(what for fp, what in baseline.items() if fp not in present))
    return marked, fixed


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What one of our SARIF logs recorded: enough to decide the gate again and to seal evidence."""

    findings: list[Finding]
    problems: list[Problem]
    fail_on: FailOn
    properties: dict[str, Any]  # the run's properties: ruleset, versions, change, baseline, gate
    started: str = ""
    finished: str = ""


def results_of(path: str, data: bytes | None = None) -> Recorded:
    """Findings, problems, the gate threshold and the run's record in one of our SARIF logs (`checker gate`);
    `data`: the file's bytes when already read (evidence binds exactly the bytes decided on)."""
    with _written_by_us(path):
        return _results_of(path, data)


def _results_of(path: str, data: bytes | None) -> Recorded:
    doc = read_sarif(path, data)
    if len(doc["runs"]) != 1:
        raise ConfigError(f"{path}: holds {len(doc['runs'])} runs; `checker scan` writes one")
    run = doc["runs"][0]
    findings: list[Finding] = []
    problems: list[Problem] = []
    properties = dict(run.get("properties") or {})
    fail_on = _fail_on(path, (properties.get("gate") or {}).get("failOn", "high"))
    invocations = run.get("invocations") or [{}]
    for invocation in invocations:
        for note in invocation.get("toolExecutionNotifications", []):
            if note.get("level", "warning") == "error":
                problems.append(Problem(note["message"]["text"], source="sarif"))
        if invocation.get("executionSuccessful") is False and not problems:
            problems.append(Problem("the scan recorded in this SARIF did not complete", source="sarif"))
    for result in run.get("results", []):
        severity = (result.get("properties") or {}).get("severity")
        if severity not in {s.value for s in Severity}:
            raise ConfigError(f"{path}: result {result.get('ruleId')} has no checker severity; "
                              "`checker gate` reads SARIF written by `checker scan`")
        location = result["locations"][0]["physicalLocation"]
        region = location.get("region", {})
        suppressions = [s for s in result.get("suppressions", []) if s.get("status", "accepted") == "accepted"]
        findings.append(Finding(
            rule_id=result["ruleId"], severity=Severity(severity), message=result["message"]["text"],
            location=Location(path_of(location["artifactLocation"]["uri"]), region.get("startLine", 1),
                              region.get("endLine", region.get("startLine", 1))),
            resource=(result.get("properties") or {}).get("resource", ""),
            suppression=_suppression(suppressions[0]) if suppressions else None,
            fingerprint=(result.get("partialFingerprints") or {}).get(FINGERPRINT_KEY, ""),
            baseline_state=_one_of(get_args(BaselineState), result.get("baselineState", ""), "baselineState"),
        ))
    return Recorded(findings, problems, fail_on, properties, invocations[0].get("startTimeUtc", ""),
                    invocations[0].get("endTimeUtc", ""))


def _fail_on(path: str, value: Any) -> FailOn:
    for choice in FAIL_ON_CHOICES:
        if value == choice:
            return choice
    raise ConfigError(f"{path}: records the gate threshold {value!r}, which is not one of {', '.join(FAIL_ON_CHOICES)}")


def _one_of(choices: tuple[T, ...], value: object, what: str) -> T:
    """`value` if it is one of `choices` (a Literal's values); else a ValueError `_written_by_us` reports."""
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return choice
    raise ValueError(f"{what} {value!r} is not one of {', '.join(map(repr, choices))}")


def _text(value: object, what: str) -> str:
    """A text field of our SARIF; anything else is a ValueError `_written_by_us` reports (never sealed as
    evidence in another shape)."""
    if not isinstance(value, str):
        raise ValueError(f"{what} {value!r} is not text")
    return value


def _suppression(data: dict[str, Any]) -> Suppression:
    """A SARIF suppression back as ours: `properties.source` is where it was written, a waiver's record
    (approvedBy, expires, paths, ticket) as recorded."""
    properties = data.get("properties") or {}
    kind: SuppressionKind = _one_of(get_args(SuppressionKind), data["kind"], "suppression kind")
    paths = properties.get("paths", [])
    if not isinstance(paths, list):
        raise ValueError(f"suppression paths {paths!r} is not a list")
    text = {key: _text(properties.get(key, ""), f"suppression {key}")
            for key in ("source", "approvedBy", "expires", "ticket")}
    return Suppression(kind, _text(data.get("justification", ""), "suppression justification"), text["source"],
                       approved_by=text["approvedBy"], expires=text["expires"],
                       paths=tuple(_text(p, "suppression path") for p in paths), ticket=text["ticket"])
