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
from typing import Any

from checker.errors import ConfigError
from checker.gate import FAIL_ON_CHOICES
from checker.model import Finding, Location, Problem, Severity, Suppression

FINGERPRINT_KEY = "checker/v1"


def read_sarif(path: str) -> dict[str, Any]:
    """A SARIF log as data; a clear configuration error when it is not one."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
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


def fingerprints(path: str) -> dict[str, str]:
    """fingerprint -> 'RULE path' of every result in a baseline SARIF."""
    with _written_by_us(path):
        return _fingerprints(path)


def _fingerprints(path: str) -> dict[str, str]:
    out = {}
    for run in read_sarif(path)["runs"]:
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


def results_of(path: str) -> tuple[list[Finding], list[Problem], str]:
    """Findings, problems and the gate threshold recorded in one of our SARIF logs (`checker gate`)."""
    with _written_by_us(path):
        findings, problems, fail_on = _results_of(path)
    if fail_on not in FAIL_ON_CHOICES:
        raise ConfigError(f"{path}: records the gate threshold {fail_on!r}, which is not one of "
                          f"{', '.join(FAIL_ON_CHOICES)}")
    return findings, problems, fail_on


def _results_of(path: str) -> tuple[list[Finding], list[Problem], str]:
    doc = read_sarif(path)
    findings: list[Finding] = []
    problems: list[Problem] = []
    fail_on = "high"
    for run in doc["runs"]:
        fail_on = ((run.get("properties") or {}).get("gate") or {}).get("failOn", fail_on)
        for invocation in run.get("invocations", []):
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
            suppressions = [s for s in result.get("suppressions", []) if s.get("status", "accepted") == "accepted"]
            findings.append(Finding(
                rule_id=result["ruleId"], severity=Severity(severity), message=result["message"]["text"],
                location=Location(path_of(location["artifactLocation"]["uri"]),
                                  location.get("region", {}).get("startLine", 1)),
                suppression=Suppression(suppressions[0]["kind"], suppressions[0].get("justification", ""))
                if suppressions else None,
                fingerprint=(result.get("partialFingerprints") or {}).get(FINGERPRINT_KEY, ""),
                baseline_state=result.get("baselineState", ""),
            ))
    return findings, problems, fail_on
