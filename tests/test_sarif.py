"""SARIF from the real scan passes the OASIS schema and the Microsoft SARIF Multitool (Gh;Sarif) with no
errors or warnings, and carries what code scanning and auditors need."""
from __future__ import annotations

import json

import pytest

from testkit import PROJECT, corpus_folder, run_checker, ruleset_text, sarif_problems


@pytest.fixture(scope="module")
def examples_sarif(tmp_path_factory):
    out = tmp_path_factory.mktemp("sarif")
    full, alerts = out / "full.sarif", out / "alerts.sarif"
    result = run_checker("scan", str(PROJECT / "examples"), "-r", "org-baseline", "--sarif-output", str(full),
                         "--code-scanning-output", str(alerts))
    assert result.returncode == 1, result.stderr
    return full, alerts


def test_examples_sarif_passes_both_validators(examples_sarif):
    for path in examples_sarif:
        assert sarif_problems(path) == []


def test_examples_sarif_content(examples_sarif):
    doc = json.loads(examples_sarif[0].read_text())
    (run,) = doc["runs"]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    gha = rules["ORG-GHA-001"]
    assert gha["properties"]["security-severity"] == "8.0" and "security" in gha["properties"]["tags"]
    assert gha["help"]["markdown"].startswith("**Third-party actions are pinned to a full commit SHA**")
    levels = {r["properties"]["severity"] for r in rules.values()}
    assert len(levels) >= 2  # not everything is "error"
    for result in run["results"]:
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert location["artifactLocation"]["uri"].startswith("examples/")  # relative to the repository root
        assert location["region"]["startLine"] >= 1
        assert len(result["partialFingerprints"]["checker/v1"]) == 32
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert run["invocations"][0]["executionSuccessful"] is True
    assert run["automationDetails"]["id"] == "checker/org-baseline/examples/"
    props = run["properties"]["ruleset"]
    assert props["name"] == "org-baseline" and props["digest"].startswith("sha256:")
    assert {t["name"] for t in run.get("taxonomies", [])} >= {"PCI-DSS-4.0"}


def test_problems_become_notifications_and_execution_unsuccessful(tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "bad.yaml").write_text("a: [\n")
    (tmp_path / "rules.yaml").write_text(ruleset_text(["ORG-*"]))
    out = tmp_path / "out.sarif"
    result = run_checker("scan", str(tmp_path / "repo"), "-r", str(tmp_path / "rules.yaml"), "--sarif-output", str(out))
    assert result.returncode == 3
    assert "checker: could not check: bad.yaml:2: is not valid YAML" in result.stderr
    invocation = json.loads(out.read_text())["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "bad.yaml" in note["message"]["text"]
    assert sarif_problems(out) == []


@pytest.mark.corpus
def test_corpus_scan_sarif_passes_both_validators(tmp_path):
    folder = corpus_folder("terragoat")
    out = tmp_path / "terragoat.sarif"
    run_checker("scan", str(folder), "--sarif-output", str(out), "--format", "json")
    doc = json.loads(out.read_text())
    assert len(doc["runs"][0]["results"]) > 100
    assert sarif_problems(out) == []


def test_provenance_of_a_git_checkout(tmp_path):
    import subprocess

    repo = tmp_path / "repo"
    (repo / "k8s").mkdir(parents=True)
    (repo / "k8s" / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
                                           "  containers:\n    - {name: a, image: nginx:1}\n")
    (repo / ".checker.yaml").write_text(ruleset_text(["ORG-K8S-001"],
                                                     organisation="{approved_registries: [r.example.com]}"))
    for args in (["init", "-q", "-b", "main"], ["remote", "add", "origin", "git@github.com:example/payments.git"],
                 ["add", "."], ["-c", "user.email=a@b.c", "-c", "user.name=a", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = tmp_path / "out.sarif"
    run_checker("scan", "k8s", "--sarif-output", str(out), cwd=repo)
    run = json.loads(out.read_text())["runs"][0]
    assert run["versionControlProvenance"] == [{"repositoryUri": "https://github.com/example/payments",
                                                "revisionId": commit, "branch": "main",
                                                "mappedTo": {"uriBaseId": "%SRCROOT%"}}]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "k8s/pod.yaml"
    assert run["automationDetails"]["id"] == "checker/test/k8s/"
    assert sarif_problems(out) == []
