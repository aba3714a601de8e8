"""A reviewed, compliant repository gives no finding at `low` or above from the organisation's checks.

tests/fixtures/compliant-repo is a small but realistic service on the paved road: a Dockerfile from the
organisation's mirror, Kubernetes manifests for a PCI workload in its own namespace with a NetworkPolicy,
Terraform in the allowed region with the required tags, a GitHub workflow that runs the gate before a
deploy in a protected environment (actions pinned, least permissions), the same on GitLab, CODEOWNERS,
SECURITY.md and pre-commit. It is scanned with the bundled org-baseline's ORG rules and organisation
facts, whatever checks exist when the test runs: a finding at `low` or above on it is a false positive
of the check, or a convenience that belongs at `info` (policies/README.md says what each severity means).
"""
from __future__ import annotations

import json
from pathlib import Path

from checker import scan
from checker.model import Severity

COMPLIANT = Path(__file__).resolve().parents[1] / "fixtures" / "compliant-repo"


def test_a_compliant_repository_has_no_finding_at_low_or_above(tmp_path: Path) -> None:
    ruleset = tmp_path / "org-rules.yaml"  # org-baseline as it is, its ORG rules only (JSON is YAML)
    ruleset.write_text(json.dumps({"apiVersion": "checker/v1", "kind": "Ruleset", "metadata": {"name": "org-rules"},
                                   "extends": ["org-baseline"], "checks": {"include": ["ORG-*"]}}), encoding="utf-8")
    result = scan.run(scan.Options(paths=(str(COMPLIANT),), ruleset=str(ruleset)))

    assert result.problems == ()
    assert [(f.rule_id, f.severity.value, f"{f.location.path}:{f.location.start_line}", f.message)
            for f in result.findings if f.severity.rank >= Severity.LOW.rank] == []
    # Not vacuous: every kind of file was found, and every ORG rule ran (org-baseline gives every fact).
    assert {source.kind.value for source in result.targets} >= {
        "dockerfile", "docker-compose", "kubernetes", "kustomize", "terraform", "github-actions", "gitlab-ci"}
    assert [rule.id for rule in result.rules.values() if rule.inactive_reason] == []
    assert len(result.rules) >= 35 and all(rule_id.startswith("ORG-") for rule_id in result.rules)
