"""policies/README.md and the README's table are generated from the checks (tools/policy_docs.py), and the
rulesets, not the checks, say which controls each rule gives evidence for."""
from __future__ import annotations

import fnmatch
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from checker.engines.python import load_policies
from checker.model import Kind
from checker.policy import Policy
from checker.ruleset import load_ruleset

PROJECT = Path(__file__).resolve().parents[2]
POLICIES = sorted(load_policies().values(), key=lambda p: p.id)
PCI = load_ruleset("pci-dss-4.0")


def _tool() -> ModuleType:
    """tools/policy_docs.py, imported from its file (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("policy_docs", PROJECT / "tools" / "policy_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


policy_docs = _tool()


def pci_controls(rule_id: str) -> list[str]:
    """The PCI DSS requirements pci-dss-4.0.yaml maps `rule_id` to (its globs matched as the gate does)."""
    return [control for control, spec in PCI.controls["PCI-DSS-4.0"].items()
            if any(fnmatch.fnmatchcase(rule_id, pattern) for pattern in spec["rules"])]


def test_the_documentation_is_what_the_checks_generate() -> None:
    diff = policy_docs.stale(PROJECT)
    assert diff == "", f"run `make docs` (tools/policy_docs.py --write):\n{diff}"


def test_check_fails_with_a_diff_on_a_stale_file_and_write_mends_it(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "policies").mkdir()
    shutil.copy(PROJECT / "README.md", tmp_path / "README.md")
    readme = (PROJECT / "policies" / "README.md").read_text(encoding="utf-8")
    (tmp_path / "policies" / "README.md").write_text(readme.replace("**No private keys", "**No old keys"),
                                                     encoding="utf-8")
    assert policy_docs.main(["--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "--- policies/README.md (in the tree)\n+++ policies/README.md (generated)\n" in out
    assert "\n-**No old keys are committed**\n+**No private keys are committed**\n" in out
    assert "--- README.md (in the tree)" not in out, "the project README is current"
    assert policy_docs.main(["--write", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "policies" / "README.md").read_text(encoding="utf-8") == readme
    assert policy_docs.main(["--check", "--root", str(tmp_path)]) == 0


def test_the_readme_table_lies_between_its_markers() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    region = readme.split(policy_docs.TABLE_START, 1)[1].split(policy_docs.TABLE_END, 1)[0]
    rows = [line for line in region.splitlines() if line.startswith("| [ORG-")]
    assert [row.split("]", 1)[0][3:] for row in rows] == [p.id for p in POLICIES]
    assert "| [ORG-TF-002](policies/README.md#org-tf-002) | high | Providers and resources are confined to the " \
           "allowed regions | terraform |" in rows


def test_a_rule_shows_the_controls_the_rulesets_map_it_to() -> None:
    """Titles come from the rulesets; a rule both compliance rulesets map is listed under both."""
    readme = (PROJECT / "policies" / "README.md").read_text(encoding="utf-8")
    section = readme.split("### ORG-K8S-001\n", 1)[1].split("\n### ", 1)[0]
    assert "**Evidence for:**\n\n" \
           "- `CIS-Kubernetes-1.9:5.5.1` Only images of known provenance are run (`cis-kubernetes`)\n" \
           "- `PCI-DSS-4.0:6.3.2` An inventory of bespoke and third-party software components is kept " \
           "(`pci-dss-4.0`)\n" \
           "- `PCI-DSS-4.0:6.3.3` Components are protected from known vulnerabilities by current, supported " \
           "versions and patches (`pci-dss-4.0`)\n\n**Why:** " in section


def test_a_convenience_supports_its_controls_without_being_evidence() -> None:
    readme = (PROJECT / "policies" / "README.md").read_text(encoding="utf-8")
    section = readme.split("### ORG-REPO-004\n", 1)[1].split("\n### ", 1)[0]
    assert "- Severity: **info** · Kinds: repo · Tags: paved-road\n" in section
    assert "**Supports** (at `info`: a convenience, not evidence on its own):\n\n" \
           "- `PCI-DSS-4.0:6.2.3` Bespoke software is reviewed before it is released to production " \
           "(`pci-dss-4.0`)\n" in section
    assert "**Evidence for:**" not in section


def test_evidence_follows_the_rulesets_globs_and_selection() -> None:
    """A glob maps every rule it matches; a ruleset that does not select a rule maps it to nothing."""
    evidence = policy_docs.evidence_by_rule(["ORG-GHA-001", "ORG-TF-002"], [load_ruleset("cis-kubernetes"), PCI])
    assert [(e.framework, e.control, e.ruleset) for e in evidence["ORG-GHA-001"]] == [
        ("PCI-DSS-4.0", "6.2.1", "pci-dss-4.0"), ("PCI-DSS-4.0", "6.3.2", "pci-dss-4.0")]
    assert [(e.control, e.title) for e in evidence["ORG-TF-002"]] == [
        ("12.5.2", "The in-scope environment, including where account data may be held, is defined and confirmed")]


def test_remediation_snippets_become_fenced_blocks_in_the_rules_language() -> None:
    text = "Pin it:\n\n    FROM registry.example.com/python:3.12@sha256:abc\n\n    RUN true\n\nThen rebuild."
    assert policy_docs.fenced(text, Kind.DOCKERFILE) == (
        "Pin it:\n\n```dockerfile\nFROM registry.example.com/python:3.12@sha256:abc\n\nRUN true\n```\n\nThen rebuild.")
    assert policy_docs.fenced("Add:\n\n    repos:\n      - repo: x", Kind.REPO) == \
        "Add:\n\n```yaml\nrepos:\n  - repo: x\n```"
    assert policy_docs.fenced("Add:\n\n    *  @org/team", Kind.REPO) == "Add:\n\n```text\n*  @org/team\n```"


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.id)
def test_every_rule_is_mapped_to_a_pci_dss_requirement(policy: Policy) -> None:
    assert pci_controls(policy.id), f"map {policy.id} under `controls:` in rulesets/pci-dss-4.0.yaml"
