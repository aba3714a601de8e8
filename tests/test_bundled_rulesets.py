"""The bundled rulesets (rulesets/*.yaml) against the real loader and the real rule catalogue.

These are the organisation's compliance statements, so the tests pin what the files promise:
every Checkov check the baseline runs has a severity chosen for it (Checkov ships none), the
compliance rulesets run what they claim to and map it, and every control shown has a title.
A Checkov upgrade that adds checks fails here until the new ids get a severity.
"""
from __future__ import annotations

import fnmatch
import functools
from collections import Counter
from collections.abc import Mapping

import pytest
import yaml
from testkit import PROJECT

from checker import scan
from checker.model import Rule, Severity
from checker.ruleset import BUNDLED_DIR, Ruleset, bundled_names, load_ruleset, select_rules

K8S_KINDS = {"kubernetes", "helm", "kustomize"}
PCI = "PCI-DSS-4.0"
CIS = "CIS-Kubernetes-1.9"


@functools.cache
def _loaded(name: str) -> tuple[Ruleset, Mapping[str, Rule]]:
    ruleset = load_ruleset(name)
    return ruleset, select_rules(ruleset, scan.catalogue(ruleset))


def ruleset(name: str) -> Ruleset:
    return _loaded(name)[0]


def selected(name: str) -> Mapping[str, Rule]:
    return _loaded(name)[1]


def own_yaml(name: str) -> dict:
    return yaml.safe_load((BUNDLED_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def controls_of(rule: Rule, framework: str) -> list[str]:
    return [c.partition(":")[2] for c in rule.controls if c.partition(":")[0] == framework]


def test_the_three_rulesets_are_bundled_from_the_rulesets_folder() -> None:
    assert {"org-baseline", "pci-dss-4.0", "cis-kubernetes"} <= set(bundled_names())
    assert BUNDLED_DIR.resolve() == (PROJECT / "rulesets").resolve()


@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_ruleset_validates_and_selects_rules(name: str) -> None:
    rules = selected(name)
    assert rules, f"{name} selects no rules"
    assert ruleset(name).name == name  # metadata.name matches the file name users type


@pytest.mark.parametrize("name", bundled_names())
def test_cli_validates_every_bundled_ruleset_file(cli, name: str) -> None:
    result = cli("ruleset", "validate", f"rulesets/{name}.yaml", cwd=PROJECT)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"rulesets/{name}.yaml: valid: {name} ")


def test_cli_validates_pci_dss(cli) -> None:
    result = cli("ruleset", "validate", "rulesets/pci-dss-4.0.yaml", cwd=PROJECT)
    assert result.exit_code == 0, result.output
    assert f"{len(selected('pci-dss-4.0'))} rule(s) selected" in result.output


# --- org-baseline ----------------------------------------------------------------------------

def test_baseline_metadata_organisation_and_gate() -> None:
    base = ruleset("org-baseline")
    assert base.version == "1.1.0"
    assert base.fail_on == "high"
    assert base.organisation == {
        "approved_registries": ["registry.example.com"],
        "required_tags": ["owner", "cost-centre"],
        "required_labels": ["app", "team", "data-classification"],
        "allowed_regions": ["eu-west-2"],
    }


def test_every_checkov_check_in_the_baseline_has_an_explicit_severity_in_its_own_file() -> None:
    base = ruleset("org-baseline")
    written = own_yaml("org-baseline")["checks"]["severity"]
    checkov = sorted(i for i, r in selected("org-baseline").items() if r.engine == "checkov")
    assert len(checkov) > 500  # the families the baseline includes, not a handful
    missing = [i for i in checkov if i not in written]
    assert not missing, f"Checkov checks without a severity in rulesets/org-baseline.yaml: {missing}"
    # Exact ids, not globs, and applied from that file (not a fallback to the engine default).
    assert not [k for k in written if any(ch in k for ch in "*?[")]
    assert {base.origins[f"checks.severity.{i}"] for i in checkov} == {"bundled:org-baseline"}
    for rule_id in checkov:
        assert selected("org-baseline")[rule_id].severity == Severity(written[rule_id])


def test_baseline_severity_map_names_only_checks_it_selects() -> None:
    written = own_yaml("org-baseline")["checks"]["severity"]
    stale = sorted(set(written) - set(selected("org-baseline")))
    assert not stale, f"severities for checks the baseline does not run: {stale}"


def test_baseline_uses_at_least_four_distinct_severities() -> None:
    counts = Counter(r.severity for r in selected("org-baseline").values() if r.engine == "checkov")
    assert len(counts) >= 4, counts
    assert counts[Severity.CRITICAL] and counts[Severity.HIGH] and counts[Severity.MEDIUM] and counts[Severity.LOW]


@pytest.mark.parametrize(("rule_id", "expected"), [
    ("CKV_SECRET_2", "critical"),    # AWS access key in a file
    ("CKV_K8S_16", "critical"),      # privileged container
    ("CKV_K8S_19", "critical"),      # host network namespace
    ("CKV_AWS_24", "critical"),      # 0.0.0.0/0 to port 22
    ("CKV_AWS_25", "critical"),      # 0.0.0.0/0 to port 3389
    ("CKV_AWS_1", "critical"),       # IAM *:* admin policy
    ("CKV_AWS_20", "critical"),      # public-read S3 bucket
    ("CKV_AWS_19", "high"),          # S3 encryption at rest missing
    ("CKV_AWS_2", "high"),           # ALB without HTTPS
    ("CKV_K8S_20", "high"),          # allowPrivilegeEscalation
    ("CKV_DOCKER_8", "high"),        # last USER is root
    ("CKV_GHA_2", "high"),           # shell injection in a workflow
    ("CKV_AWS_67", "high"),          # CloudTrail not in all regions
    ("CKV_K8S_13", "medium"),        # memory limits
    ("CKV_K8S_8", "medium"),         # liveness probe
    ("CKV_AWS_21", "medium"),        # S3 versioning
    ("CKV_AWS_23", "low"),           # security group rule description
    ("CKV_K8S_15", "low"),           # image pull policy
    ("CKV_DOCKER_2", "low"),         # HEALTHCHECK
])
def test_baseline_severity_anchors(rule_id: str, expected: str) -> None:
    assert selected("org-baseline")[rule_id].severity == Severity(expected)


def test_every_hard_coded_secret_check_is_critical() -> None:
    secrets = {i: r.severity for i, r in selected("org-baseline").items() if i.startswith("CKV_SECRET_")}
    assert secrets and set(secrets.values()) == {Severity.CRITICAL}


# --- pci-dss-4.0 -----------------------------------------------------------------------------

def test_pci_extends_the_baseline_and_gates_at_medium() -> None:
    pci = ruleset("pci-dss-4.0")
    assert [layer.name for layer in pci.layers] == ["org-baseline", "pci-dss-4.0"]
    assert pci.fail_on == "medium"
    assert set(pci.controls) == {PCI}


def test_pci_selects_the_same_rules_with_the_same_severities_as_the_baseline() -> None:
    base, pci = selected("org-baseline"), selected("pci-dss-4.0")
    assert set(pci) == set(base)
    assert {i: r.severity for i, r in pci.items()} == {i: r.severity for i, r in base.items()}


def test_pci_maps_every_rule_it_selects_to_at_least_one_requirement() -> None:
    unmapped = sorted(i for i, r in selected("pci-dss-4.0").items() if not controls_of(r, PCI))
    assert not unmapped, f"rules with no PCI DSS requirement in rulesets/pci-dss-4.0.yaml: {unmapped}"


def test_pci_lists_every_organisation_check_explicitly() -> None:
    written = {r for spec in own_yaml("pci-dss-4.0")["controls"][PCI].values() for r in spec["rules"]}
    org = [i for i in selected("pci-dss-4.0") if i.startswith("ORG-")]
    unlisted = [i for i in org if not any(fnmatch.fnmatchcase(i, p) for p in written)]
    assert not unlisted, unlisted


@pytest.mark.parametrize(("rule_id", "control"), [
    ("CKV_AWS_19", "3.5.1"),    # encryption at rest
    ("CKV_AWS_2", "4.2.1"),     # encryption in transit
    ("CKV_AWS_24", "1.3.1"),    # inbound exposure
    ("CKV_AWS_67", "10.2.1"),   # audit logging
    ("CKV_SECRET_2", "8.6.2"),  # hard-coded credentials
    ("CKV_AWS_1", "7.2.2"),     # least privilege
    ("CKV_AWS_10", "8.3.6"),    # password policy
    ("CKV_K8S_16", "2.2.6"),    # security parameters
    ("ORG-REPO-001", "6.2.3"),  # code review
    ("ORG-TF-001", "12.5.1"),   # inventory
])
def test_pci_mapping_anchors(rule_id: str, control: str) -> None:
    assert control in controls_of(selected("pci-dss-4.0")[rule_id], PCI)


def test_pci_control_ids_look_like_pci_dss_4_requirements() -> None:
    ids = list(ruleset("pci-dss-4.0").controls[PCI])
    bad = [c for c in ids if not all(part.isdigit() for part in c.split(".")) or not 1 <= int(c.split(".")[0]) <= 12]
    assert not bad, bad
    assert len(ids) >= 15


# --- cis-kubernetes --------------------------------------------------------------------------

def test_cis_kubernetes_selects_only_kubernetes_rules() -> None:
    rules = selected("cis-kubernetes")
    assert any(i.startswith("CKV_K8S_") for i in rules) and any(i.startswith("ORG-K8S-") for i in rules)
    # Some CKV_K8S_* checks also read the Terraform kubernetes provider's resources: still Kubernetes.
    not_k8s = sorted(i for i, r in rules.items() if not set(r.kinds) & K8S_KINDS)
    assert not not_k8s, not_k8s
    assert {i for i in selected("org-baseline") if i.startswith(("CKV_K8S_", "ORG-K8S-", "ORG-HELM-"))} == set(rules)


def test_cis_kubernetes_keeps_baseline_severities_and_gate() -> None:
    base, cis = selected("org-baseline"), selected("cis-kubernetes")
    assert all(r.severity == base[i].severity for i, r in cis.items())
    assert ruleset("cis-kubernetes").fail_on == ruleset("org-baseline").fail_on
    assert set(ruleset("cis-kubernetes").controls) == {CIS}


@pytest.mark.parametrize(("rule_id", "control"), [
    ("CKV_K8S_16", "5.2.2"), ("CKV_K8S_17", "5.2.3"), ("CKV_K8S_20", "5.2.6"), ("CKV_K8S_23", "5.2.7"),
    ("CKV_K8S_49", "5.1.3"), ("CKV_K8S_38", "5.1.6"), ("CKV_K8S_35", "5.4.1"), ("CKV_K8S_31", "5.7.2"),
    ("CKV_K8S_21", "5.7.4"), ("CKV_K8S_68", "1.2.1"), ("CKV_K8S_138", "4.2.1"),
])
def test_cis_mapping_anchors(rule_id: str, control: str) -> None:
    assert control in controls_of(selected("cis-kubernetes")[rule_id], CIS)


def test_cis_maps_section_5_pod_security_and_rbac() -> None:
    ids = set(ruleset("cis-kubernetes").controls[CIS])
    assert {f"5.2.{n}" for n in range(2, 11)} <= ids
    assert {"5.1.3", "5.1.5", "5.1.6", "5.4.1", "5.7.2", "5.7.3", "5.7.4"} <= ids


# --- every bundled ruleset -------------------------------------------------------------------

@pytest.mark.parametrize("name", bundled_names())
def test_every_control_has_a_title(name: str) -> None:
    rs = ruleset(name)
    for framework, controls in rs.controls.items():
        for control_id, spec in controls.items():
            assert spec["title"].strip(), f"{name}: {framework} {control_id} has no title"
            assert spec["rules"], f"{name}: {framework} {control_id} maps no rules"
            assert len(spec["title"]) <= 120, f"{name}: {framework} {control_id}: keep titles short"
        # Every control a selected rule carries needs a title here, or SARIF taxonomies show a bare number.
        carried = {c for r in selected(name).values() for c in controls_of(r, framework)}
        untitled = sorted(carried - set(controls))
        assert not untitled, f"{name}: {framework} controls without a title: {untitled}"


@pytest.mark.parametrize("name", bundled_names())
def test_every_controls_entry_reaches_a_selected_rule(name: str) -> None:
    rules = selected(name)
    for framework, controls in ruleset(name).controls.items():
        for control_id, spec in controls.items():
            assert any(fnmatch.fnmatchcase(i, p) for p in spec["rules"] for i in rules), (
                f"{name}: {framework} {control_id} maps only rules the ruleset does not run")
