"""Helpers for the policy library's tests: scan a folder with a one-rule ruleset through the real engine."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from checker import scan
from checker.model import Finding

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"

ORGANISATION: dict[str, Any] = {
    "approved_registries": ["registry.example.com"],
    "required_labels": ["app", "team"],
    "required_tags": ["owner", "cost-centre"],
    "allowed_regions": ["eu-west-2"],
}


def write_ruleset(folder: Path, rule_id: str, organisation: Mapping[str, Any] | None = None,
                  params: Mapping[str, Any] | None = None) -> Path:
    """A ruleset selecting only `rule_id` (JSON is YAML, so no quoting surprises)."""
    ruleset = {
        "apiVersion": "checker/v1", "kind": "Ruleset", "metadata": {"name": "t"},
        "organisation": dict(ORGANISATION if organisation is None else organisation),
        "checks": {"include": [rule_id], **({"params": {rule_id: dict(params)}} if params else {})},
    }
    path = folder / f"ruleset-{rule_id}.yaml"
    path.write_text(json.dumps(ruleset), encoding="utf-8")
    return path


@pytest.fixture
def run_rule(tmp_path: Path):
    """run_rule(folder, rule_id, organisation=None, params=None) -> (findings of that rule, problems).

    Any problem counts (a fixture that does not parse, a check that crashes): examples must scan clean.
    """

    def run(folder: Path, rule_id: str, organisation: Mapping[str, Any] | None = None,
            params: Mapping[str, Any] | None = None) -> tuple[list[Finding], list[Any]]:
        ruleset = write_ruleset(tmp_path, rule_id, organisation, params)
        result = scan.run(scan.Options(paths=(str(folder),), ruleset=str(ruleset)))
        findings = sorted((f for f in result.findings if f.rule_id == rule_id),
                          key=lambda f: (f.location.path, f.location.start_line))
        return findings, list(result.problems)

    return run

