"""Helpers for the policy library's tests: scan a folder with a one-rule ruleset through the real engine."""
from __future__ import annotations

import json
import os
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
                  params: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """A ruleset selecting only `rule_id` (JSON is YAML, so no quoting surprises), plus `extra` sections."""
    ruleset = {
        "apiVersion": "checker/v1", "kind": "Ruleset", "metadata": {"name": "t"},
        "organisation": dict(ORGANISATION if organisation is None else organisation),
        "checks": {"include": [rule_id], **({"params": {rule_id: dict(params)}} if params else {})},
        **(extra or {}),
    }
    path = folder / f"ruleset-{rule_id}.yaml"
    path.write_text(json.dumps(ruleset), encoding="utf-8")
    return path


CI_VARIABLES = ("GITHUB_", "GITLAB_", "CI_")


def fixture_settings(folder: Path) -> dict[str, Any]:
    """An example's `fixture.json`, when it needs more than files: ruleset sections (`ruleset`) and the
    environment variables a CI would set (`environ`, `{folder}` standing for the example's folder)."""
    path = folder / "fixture.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@pytest.fixture
def run_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """run_rule(folder, rule_id, organisation=None, params=None) -> (findings of that rule, problems).

    Any problem counts (a fixture that does not parse, a check that crashes): examples must scan clean.
    An example with a `fixture.json` runs with its ruleset sections and CI variables (and no others).
    """

    def run(folder: Path, rule_id: str, organisation: Mapping[str, Any] | None = None,
            params: Mapping[str, Any] | None = None) -> tuple[list[Finding], list[Any]]:
        settings = fixture_settings(folder) if folder.is_dir() else {}
        if settings.get("environ"):
            for name in [n for n in os.environ if n.startswith(CI_VARIABLES)]:
                monkeypatch.delenv(name)
            for name, value in settings["environ"].items():
                monkeypatch.setenv(name, value.replace("{folder}", str(folder.resolve())))
        ruleset = write_ruleset(tmp_path, rule_id, organisation, params, settings.get("ruleset"))
        result = scan.run(scan.Options(paths=(str(folder),), ruleset=str(ruleset)))
        findings = sorted((f for f in result.findings if f.rule_id == rule_id),
                          key=lambda f: (f.location.path, f.location.start_line))
        return findings, list(result.problems)

    return run

