"""SARIF from the real scan passes the OASIS schema and the Microsoft SARIF Multitool (Gh;Sarif) with no
errors or warnings, and carries what code scanning and auditors need."""
from __future__ import annotations

import json
import re
import shutil
from types import SimpleNamespace

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from testkit import PROJECT, corpus_folder, ruleset_text, run_checker, sarif_problems

from checker import baseline, gate
from checker.baseline import path_of
from checker.model import Finding, Location, Problem, Rule, ScanResult, Severity, Suppression
from checker.reporters import sarif
from checker.reporters.sarif import artifact_uri


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
    assert "taxonomies" not in run  # org-baseline maps no controls: the compliance rulesets (pci-dss-4.0) do


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
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    out = tmp_path / "out.sarif"
    run_checker("scan", "k8s", "--sarif-output", str(out), cwd=repo)
    run = json.loads(out.read_text())["runs"][0]
    assert run["versionControlProvenance"] == [{"repositoryUri": "https://github.com/example/payments",
                                                "revisionId": commit, "branch": "main",
                                                "mappedTo": {"uriBaseId": "%SRCROOT%"}}]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "k8s/pod.yaml"
    assert run["automationDetails"]["id"] == "checker/test/k8s/"
    assert sarif_problems(out) == []


# --- file names that need percent-encoding (issue 8, part 5) ------------------------------------

HOSTILE_FILES = ("a b é 日本 %41 #x ?q.yaml", "new\nline.yaml", "tab\there.yaml", "a:b.yaml", "rtl\u202eevil.yaml",
                 "sub dir/x.yaml")
POD = ('apiVersion: v1\nkind: Pod\nmetadata: {name: "p\\n\\e[32mgate PASSED \\u202e"}\n'
       "spec:\n  containers:\n    - {name: a, image: docker.io/nginx:1}\n")


@pytest.fixture(scope="module")
def hostile_sarif(tmp_path_factory):
    """A real scan (exit 1) of files whose names and resource name need escaping; its root's name too.

    (A problem's notification URI is validated in test_output_safety.py.)"""
    base = tmp_path_factory.mktemp("uris")
    root = base / "re po é#%"
    for name in HOSTILE_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(POD)
    (base / "rules.yaml").write_text(ruleset_text(["ORG-K8S-001", "CKV_K8S_20"],
                                                  organisation="{approved_registries: [registry.example.com]}"))
    full, alerts = base / "full.sarif", base / "alerts.sarif"
    result = run_checker("scan", str(root), "-r", str(base / "rules.yaml"), "--sarif-output", str(full),
                         "--code-scanning-output", str(alerts), "--json-output", str(base / "r.json"))
    assert result.returncode == 1, result.stderr
    return root, full, alerts, json.loads((base / "r.json").read_text())


def test_hostile_file_names_pass_both_validators(hostile_sarif):
    """(The Multitool 5.7.0 silently skips its RFC 3986 check, SARIF1002, for a whole file once one
    URI reads as having a scheme, like a raw `a:b.yaml`: the exact URIs are asserted below too.)"""
    _, full, alerts, _ = hostile_sarif
    assert sarif_problems(full) == []
    assert sarif_problems(alerts) == []


def test_uris_are_percent_encoded_and_the_base_is_a_file_uri(hostile_sarif):
    root, full, _, _ = hostile_sarif
    run = json.loads(full.read_text())["runs"][0]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert uris == {"a%20b%20%C3%A9%20%E6%97%A5%E6%9C%AC%20%2541%20%23x%20%3Fq.yaml", "new%0Aline.yaml",
                    "tab%09here.yaml", "a%3Ab.yaml", "rtl%E2%80%AEevil.yaml", "sub%20dir/x.yaml"}
    base = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert base.startswith("file:///") and base.endswith("/re%20po%20%C3%A9%23%25/")
    assert base == root.resolve().as_uri() + "/"


def test_gate_and_baseline_round_trip_hostile_paths(hostile_sarif, tmp_path):
    root, full, _, report = hostile_sarif
    recorded = baseline.results_of(str(full))
    assert sorted((f.location.path, f.rule_id) for f in recorded.findings) == \
        sorted((f["path"], f["rule"]) for f in report["findings"])
    assert not recorded.problems and recorded.fail_on == "high"
    assert set(baseline.fingerprints(str(full)).values()) == {f"{f['rule']} {f['path']}" for f in report["findings"]}
    assert run_checker("gate", str(full)).returncode == 1
    copy = tmp_path / root.name
    shutil.copytree(root, copy)
    (copy / "new\nline.yaml").unlink()
    after = tmp_path / "after.sarif"
    again = run_checker("scan", str(copy), "-r", str(root.parent / "rules.yaml"), "--baseline", str(full),
                        "--sarif-output", str(after))
    assert again.returncode == 0, again.stdout + again.stderr  # everything left is in the baseline
    assert "; 10 unchanged and 2 fixed since the baseline;" in again.stdout
    fixed = json.loads(after.read_text())["runs"][0]["properties"]["fixedSinceBaseline"]
    assert fixed == ["CKV_K8S_20 new\nline.yaml", "ORG-K8S-001 new\nline.yaml"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1).filter(lambda s: "/" not in s and s not in (".", "..")), min_size=1, max_size=3))
def test_any_path_becomes_an_rfc3986_relative_reference_and_back(parts):
    path = "/".join(parts)
    uri = artifact_uri(path)
    assert re.fullmatch(r"(?:[A-Za-z0-9._~/-]|%[0-9A-F]{2})+", uri), uri
    assert ":" not in uri.split("/")[0]
    assert path_of(uri) == path


def test_sarif_text_carries_no_raw_bidi_or_control_characters(hostile_sarif):
    _, full, _, _ = hostile_sarif
    text = full.read_text(encoding="utf-8")
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", text)
    assert "\\u202e" in text and "é" in text  # escaped in JSON, other text left readable
    resources = {r["properties"].get("resource", "") for r in json.loads(text)["runs"][0]["results"]}
    assert 'Pod.default.p\n\x1b[32mgate PASSED \u202e' in resources  # the data itself is exact


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=1), path=st.text(min_size=1).filter(lambda s: not s.startswith("/")))
def test_any_text_in_a_finding_gives_schema_valid_sarif(text, path):
    ruleset = SimpleNamespace(name="t", version="1", digest="0" * 64, controls={}, layers=(), base_layer=None,
                              locked_fail_on=None)
    finding = Finding("ORG-X-001", Severity.HIGH, text, Location(path, 2, 2), resource=text, fingerprint="0" * 32,
                      suppression=Suppression("external", text, text, approved_by=text))
    result = ScanResult(root="/nonexistent", ruleset=ruleset, rules={"ORG-X-001": Rule("ORG-X-001", text, Severity.HIGH,
                        "python")}, findings=(finding,), problems=(Problem(text, path, 1, text),), targets=(),
                        started="2026-01-01T00:00:00Z", finished="2026-01-01T00:00:01Z", versions={"checker": "0"},
                        notes=(text,), fail_on="high", decision=gate.decide([finding], [], "high"))
    out = sarif.render(result)
    out.encode("utf-8")  # always writable
    doc = json.loads(out)
    _SCHEMA_VALIDATOR.validate(doc)
    (run,) = doc["runs"]
    assert run["results"][0]["properties"]["resource"] == text
    assert path_of(run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) == path


def _schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((PROJECT / "tests" / "schemas" / "sarif-schema-2.1.0.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


_SCHEMA_VALIDATOR = _schema_validator()
