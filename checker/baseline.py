"""Baselines: a previous SARIF whose findings do not fail the gate again.

Findings are matched by their `checker/v1` partial fingerprint (rule, file, resource and rank
among equals), so they survive lines moving and never merge across files or resources.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from checker.errors import ConfigError
from checker.model import Finding

FINGERPRINT_KEY = "checker/v1"


def read_sarif(path: str) -> dict[str, Any]:
    """A SARIF log as data; a clear configuration error when it is not one."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: not a readable SARIF file: {error}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list) or not doc["runs"]:
        raise ConfigError(f"{path}: not a SARIF log (no runs)")
    return doc


def fingerprints(path: str) -> dict[str, str]:
    """fingerprint -> 'RULE path' of every result in a baseline SARIF."""
    out = {}
    for run in read_sarif(path)["runs"]:
        for result in run.get("results", []):
            fingerprint = (result.get("partialFingerprints") or {}).get(FINGERPRINT_KEY)
            if fingerprint:
                uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                out[fingerprint] = f"{result.get('ruleId')} {uri}"
    if not out:
        raise ConfigError(f"{path}: has no results with a {FINGERPRINT_KEY} fingerprint; "
                          "make a baseline with `checker scan --sarif-output`")
    return out


def apply(findings: Sequence[Finding], baseline: dict[str, str]) -> tuple[list[Finding], tuple[str, ...]]:
    """Mark each finding new or unchanged; return also what the baseline had that is gone (fixed)."""
    marked = [dataclasses.replace(f, baseline_state="unchanged" if f.fingerprint in baseline else "new")
              for f in findings]
    present = {f.fingerprint for f in findings}
    fixed = tuple(sorted(what for fp, what in baseline.items() if fp not in present))
    return marked, fixed
