"""The Python checks engine: loading from the package, entry points and ruleset folders; failing closed."""
from __future__ import annotations

import re
import sys

import pytest

from checker.engines.python import load_policies
from checker.scan import Options, run

LOCAL_POLICY = '''
from checker.policy import Violation, policy

@policy(id="ORG-LOCAL-001", title="No ConfigMap named legacy", kinds=["kubernetes"], severity="low",
        remediation="Rename it.")
def no_legacy(doc, ctx):
    """ConfigMaps are not called legacy."""
    if doc.data.get("kind") == "ConfigMap" and doc.data["metadata"]["name"] == "legacy":
        yield Violation("ConfigMap legacy", doc.data["metadata"].line_of("name"), "ConfigMap/legacy")

@policy(id="ORG-LOCAL-002", title="Crashes", kinds=["kubernetes"], severity="low", remediation="-")
def crashes(doc, ctx):
    """Always raises."""
    raise KeyError("spec")
'''

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: x\n  name: legacy\n"


@pytest.fixture(autouse=True)
def fresh_policy_cache():
    load_policies.cache_clear()
    yield
    load_policies.cache_clear()


def ruleset(write, include):
    return write("rules.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: t}\n"
                 f"checks:\n  include: {include}\n  policy_paths: [my-policies]\n")


def test_policies_from_a_ruleset_folder_point_at_the_exact_line(write, tmp_path):
    write("my-policies/local.py", LOCAL_POLICY)
    write("repo/cm.yaml", CONFIGMAP)
    result = run(Options(paths=(str(tmp_path / "repo"),), ruleset=str(ruleset(write, ["ORG-LOCAL-001"]))))
    assert [(f.rule_id, f.location.path, f.location.start_line) for f in result.findings] == [
        ("ORG-LOCAL-001", "cm.yaml", 5)]


def test_a_check_that_raises_fails_the_scan_naming_check_and_file(write, tmp_path):
    write("my-policies/local.py", LOCAL_POLICY)
    write("repo/cm.yaml", CONFIGMAP)
    result = run(Options(paths=(str(tmp_path / "repo"),), ruleset=str(ruleset(write, ["ORG-LOCAL-*"]))))
    (problem,) = result.problems
    assert problem.path == "cm.yaml"
    assert problem.message.startswith("check ORG-LOCAL-002 crashed: KeyError: 'spec' (at local.py:")
    assert result.decision.exit_code == 3


def test_entry_point_plugins_are_loaded(write, tmp_path, monkeypatch):
    site = tmp_path / "site"
    write("site/org_extra_policies.py", LOCAL_POLICY.split("@policy(id=\"ORG-LOCAL-002\"")[0])
    write("site/org_extra-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: org-extra\nVersion: 1.0\n")
    write("site/org_extra-1.0.dist-info/entry_points.txt", "[checker.policies]\nextra = org_extra_policies\n")
    monkeypatch.syspath_prepend(str(site))
    assert "ORG-LOCAL-001" in load_policies(())
    sys.modules.pop("org_extra_policies", None)


def test_a_policy_folder_that_does_not_exist_is_a_configuration_error(write, tmp_path):
    write("repo/cm.yaml", CONFIGMAP)
    from checker.errors import ConfigError

    missing = "my-policies: checks.policy_paths names a folder that does not exist"
    with pytest.raises(ConfigError, match=re.escape(missing)):
        run(Options(paths=(str(tmp_path / "repo"),), ruleset=str(ruleset(write, ["ORG-*"]))))


def test_a_check_needing_a_missing_organisation_fact_is_inactive_and_says_why(write, tmp_path, cli):
    path = write("r.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: t}\n"
                 "checks: {include: [ORG-K8S-001]}\n")
    listed = cli("rules", "list", "-r", str(path))
    assert "(inactive: needs organisation.approved_registries in the ruleset)" in listed.output
    write("repo/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
          "    - {name: a, image: nginx}\n")
    result = run(Options(paths=(str(tmp_path / "repo"),), ruleset=str(path)))
    assert result.findings == ()
    assert any("inactive for want of organisation facts: ORG-K8S-001" in n for n in result.notes)


CROSS_FILE = '''
from checker.policy import Violation, policy

@policy(id="ORG-LOCAL-003", title="Pods have a NetworkPolicy", kinds=["kubernetes"], severity="high", remediation="-")
def has_netpol(doc, ctx):
    """A Pod is selected by some NetworkPolicy in the repository."""
    if doc.data.get("kind") != "Pod":
        return
    names = {d.data["metadata"]["name"] for d in ctx.documents("kubernetes") if d.data.get("kind") == "NetworkPolicy"}
    if "allow-" + doc.data["metadata"]["name"] not in names:
        yield Violation("no NetworkPolicy", doc.data.line, "Pod")
'''


def test_named_files_keep_the_repository_as_context(write, tmp_path):
    """pre-commit passes only the changed file; a NetworkPolicy in another file still counts."""
    from testkit import run_checker

    write("my-policies/netpol.py", CROSS_FILE)
    write(".checker.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: t}\n"
          "checks:\n  include: [ORG-LOCAL-003, ORG-REPO-001]\n  policy_paths: [my-policies]\n")
    write("k8s/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: api}\n")
    write("k8s/other.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: worker}\n")
    write("net/policy.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-api}\n")
    trust = "--trust-repo-policies"  # the checks live in the repository being scanned
    assert run_checker("scan", "k8s/pod.yaml", trust, cwd=tmp_path).returncode == 0  # no CODEOWNERS rule on one file
    other = run_checker("scan", "k8s/other.yaml", trust, cwd=tmp_path)
    assert other.returncode == 1 and "ORG-LOCAL-003" in other.stdout and "ORG-REPO-001" not in other.stdout
