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

# rule id -> the (file, line) of every finding on tests/fixtures/policies/<ID>/fail
EXPECTED: dict[str, list[tuple[str, int]]] = {
    "ORG-GHA-001": [(W + "ci.yml", 8), (W + "ci.yml", 9)],
    "ORG-GHA-002": [(W + "comment.yml", 12), (W + "pr.yml", 12), (W + "pr.yml", 19)],
    "ORG-GHA-003": [(W + "triage.yml", 12), (W + "triage.yml", 13), (W + "triage.yml", 17),
                    (W + "triage.yml", 19), (W + "triage.yml", 20)],
    "ORG-GHA-004": [(W + "ci.yml", 9)],
    "ORG-GHA-005": [(W + "ci.yml", 2), (W + "ci.yml", 6)],
    "ORG-GHA-006": [(W + "deploy.yml", 7), (W + "deploy.yml", 12)],
    "ORG-GHA-007": [(W + "deploy.yml", 12), (W + "deploy.yml", 17)],
    "ORG-GHA-008": [(W + "ci.yml", 11), (W + "ci.yml", 12), (W + "ci.yml", 16), (W + "ci.yml", 17),
                    (W + "ci.yml", 20), (W + "ci.yml", 21)],
    "ORG-GHA-009": [(W + "pr.yml", 6), (W + "pr.yml", 10)],
    "ORG-GITLAB-001": [(".gitlab-ci.yml", 1), (".gitlab-ci.yml", 4), (".gitlab-ci.yml", 10)],
    "ORG-GITLAB-002": [(".gitlab-ci.yml", 2), (".gitlab-ci.yml", 3), (".gitlab-ci.yml", 5),
                       (".gitlab-ci.yml", 7), (".gitlab-ci.yml", 9)],
    "ORG-GITLAB-003": [(".gitlab-ci.yml", 7), (".gitlab-ci.yml", 14), (".gitlab-ci.yml", 20),
                       (".gitlab-ci.yml", 27)],
    "ORG-GITLAB-004": [(".gitlab-ci.yml", 1), (".gitlab-ci.yml", 5), (".gitlab-ci.yml", 7)],
    "ORG-AZP-001": [("azure-pipelines.yml", 5), ("azure-pipelines.yml", 10), ("azure-pipelines.yml", 16)],
    "ORG-AZP-002": [("azure-pipelines.yml", 3), ("azure-pipelines.yml", 10)],
    "ORG-AZP-003": [("azure-pipelines.yml", 4), ("azure-pipelines.yml", 10), ("azure-pipelines.yml", 15)],
    "ORG-K8S-001": [("deploy.yaml", 10), ("deploy.yaml", 13)],
    "ORG-K8S-002": [("workloads.yaml", 5), ("workloads.yaml", 27)],
    "ORG-K8S-003": [("deploy.yaml", 13), ("deploy.yaml", 17), ("deploy.yaml", 19)],
    "ORG-K8S-004": [("pci.yaml", 3), ("pci.yaml", 10), ("pci.yaml", 22)],
    "ORG-HELM-001": [("chart/values.yaml", 2), ("chart/values.yaml", 6), ("chart/values.yaml", 11)],
    "ORG-TF-001": [("main.tf", 7), ("main.tf", 12), ("main.tf", 26)],
    "ORG-TF-002": [("main.tf", 2), ("main.tf", 13)],
    "ORG-CFN-001": [("template.yaml", 5), ("template.yaml", 7), ("template.yaml", 12)],
    "ORG-CHANGE-001": [(".checker.yaml", 1)],  # the ruleset requiring a ticket is outside the folder
    "ORG-DOCKER-001": [("Dockerfile", 1), ("Dockerfile", 4)],
    "ORG-DOCKER-002": [("Dockerfile", 1), ("Dockerfile", 4)],
    "ORG-COMPOSE-001": [("docker-compose.yml", 6), ("docker-compose.yml", 10)],
    "ORG-COMPOSE-002": [("docker-compose.yml", 3), ("docker-compose.yml", 5)],
    "ORG-REPO-001": [(".github/CODEOWNERS", 1)],
    "ORG-REPO-002": [(".github/CODEOWNERS", 1)],
    "ORG-REPO-003": [("SECURITY.md", 1)],
    "ORG-REPO-004": [(".pre-commit-config.yaml", 3)],
    "ORG-REPO-005": [(".ssh/id_rsa", 1), ("deploy/server.key", 2)],
    "ORG-REPO-006": [(".env", 1), ("services/api/.env.production", 1)],
}


def test_every_policy_has_an_expectation() -> None:
    assert sorted(load_policies()) == sorted(EXPECTED)


@pytest.mark.parametrize("rule_id", sorted(EXPECTED))
def test_fail_example(rule_id: str, run_rule) -> None:
    findings, crashes = run_rule(FIXTURES / rule_id / "fail", rule_id)
    assert crashes == []
    assert where(findings) == sorted(EXPECTED[rule_id]), [f.message for f in findings]
    assert all(f.message and f.resource for f in findings)


@pytest.mark.parametrize("rule_id", sorted(EXPECTED))
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


def test_allow_owners_param(run_rule) -> None:
    findings, _ = run_rule(FIXTURES / "ORG-GHA-001" / "fail", "ORG-GHA-001", params={"allow_owners": ["actions"]})
    assert where(findings) == [(W + "ci.yml", 9)]


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
