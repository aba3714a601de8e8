"""Every check fires on exactly the expected lines of its fail example and never on its pass example."""
from __future__ import annotations

from pathlib import Path

import pytest

from checker.engines.python import load_policies
from checker.model import Finding

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"


def where(findings: list[Finding]) -> list[tuple[str, int]]:
    return [(f.location.path, f.location.start_line) for f in findings]


W = ".github/workflows/"


def expected(rule_id: str) -> list[tuple[str, int]]:
    """The (file, line) of every finding on the rule's fail example, from `<ID>/expected.txt` beside it
    (one `path:line` a line), so a new check brings its expectation in its own folder."""
    text = (FIXTURES / rule_id / "expected.txt").read_text(encoding="utf-8")
    return sorted((path, int(line)) for path, _, line in (row.rpartition(":") for row in text.split()))


EXPECTED = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.txt").is_file())


def test_every_policy_has_an_expectation() -> None:
    assert sorted(load_policies()) == EXPECTED


@pytest.mark.parametrize("rule_id", EXPECTED)
def test_fail_example(rule_id: str, run_rule) -> None:
    findings, crashes = run_rule(FIXTURES / rule_id / "fail", rule_id)
    assert crashes == []
    assert where(findings) == expected(rule_id), [f.message for f in findings]
    assert all(f.message and f.resource for f in findings)


@pytest.mark.parametrize("rule_id", EXPECTED)
def test_pass_example(rule_id: str, run_rule) -> None:
    findings, crashes = run_rule(FIXTURES / rule_id / "pass", rule_id)
    assert crashes == []
    assert [(f.location.path, f.location.start_line, f.message) for f in findings] == []


REQUIRING = [rule_id for rule_id, p in sorted(load_policies().items()) if p.requires]


@pytest.mark.parametrize("rule_id", REQUIRING)
def test_checks_needing_facts_are_inactive_without_them(rule_id: str, run_rule) -> None:
    findings, crashes = run_rule(FIXTURES / rule_id / "fail", rule_id, organisation={})
    assert (findings, crashes) == ([], [])


def test_protected_environments_param(run_rule) -> None:
    findings, _ = run_rule(FIXTURES / "ORG-GHA-006" / "pass", "ORG-GHA-006",
                           params={"protected_environments": ["production"]})
    assert [(f.location.start_line, f.message) for f in findings] == [
        (15, "job pages deploys to environment github-pages, which is not a protected environment (production)")]


def test_approval_environments_param(run_rule) -> None:
    """An approval-only environment is no deployment by itself; a job that deploys in it still needs the gate."""
    findings, _ = run_rule(FIXTURES / "ORG-GHA-007" / "fail", "ORG-GHA-007",
                           params={"approval_environments": ["pypi", "production"]})
    assert where(findings) == [(W + "deploy.yml", 12)]


def test_allow_owners_param(run_rule) -> None:
    findings, _ = run_rule(FIXTURES / "ORG-GHA-001" / "fail", "ORG-GHA-001", params={"allow_owners": ["actions"]})
    assert where(findings) == [(W + "ci.yml", 9), (W + "ci.yml", 14)]


def test_pci_label_param(run_rule) -> None:
    findings, _ = run_rule(FIXTURES / "ORG-K8S-004" / "pass", "ORG-K8S-004",
                           params={"label": "data-classification", "value": "public"})
    assert [(f.location.path, f.location.start_line) for f in findings] == [("pci.yaml", 19), ("pci.yaml", 26)]


def test_hook_ids_param(run_rule) -> None:
    findings, _ = run_rule(FIXTURES / "ORG-REPO-004" / "fail", "ORG-REPO-004", params={"hook_ids": ["check-yaml"]})
    assert findings == []


def test_missing_pre_commit_config(run_rule) -> None:
    findings, _ = run_rule(FIXTURES / "ORG-REPO-004" / "fail" / "missing", "ORG-REPO-004")
    assert [(f.location.path, f.location.start_line) for f in findings] == [(".pre-commit-config.yaml", 1)]


@pytest.mark.parametrize("rule_id", ["ORG-REPO-001", "ORG-REPO-002", "ORG-REPO-003", "ORG-REPO-004"])
def test_repository_checks_do_not_misfire_when_given_files(rule_id: str, run_rule, monkeypatch) -> None:
    """pre-commit passes only the staged files: a repository that has the file must not be told it lacks it."""
    monkeypatch.chdir(FIXTURES / rule_id / "pass")
    findings, crashes = run_rule(Path("README.md"), rule_id)
    assert (findings, crashes) == ([], [])
