"""The real CLI end to end: exit codes 0/1/2/3, outputs, and the messages users read."""
from __future__ import annotations

import json

from testkit import PROJECT, ruleset_text, run_checker

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: docker.io/nginx:1.27
"""


def test_gate_fails_on_a_high_finding_and_names_file_and_line(cli, write, tmp_path):
    write("k8s/web.yaml", DEPLOYMENT)
    write("rules.yaml", ruleset_text(["ORG-K8S-001"], organisation="{approved_registries: [registry.example.com]}"))
    result = cli("scan", str(tmp_path / "k8s"), "-r", str(tmp_path / "rules.yaml"))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == "web.yaml"
    assert lines[1].split() == ["10", "HIGH", "ORG-K8S-001", "image", "docker.io/nginx:1.27", "is", "not", "from",
                                "an", "approved", "registry", "(registry.example.com)"]
    assert "gate FAILED: 1 open finding(s) at or above high (fail_on: high)" in result.output


def test_gate_passes_when_threshold_is_above_the_findings(cli, write, tmp_path):
    write("k8s/web.yaml", DEPLOYMENT)
    write("rules.yaml", ruleset_text(["ORG-K8S-001"], organisation="{approved_registries: [registry.example.com]}"))
    result = cli("scan", str(tmp_path / "k8s"), "-r", str(tmp_path / "rules.yaml"), "--fail-on", "critical")
    assert result.exit_code == 0, result.output
    assert "gate PASSED" in result.output


def test_a_manifest_that_does_not_parse_fails_closed_with_exit_3(cli, write, tmp_path):
    write("k8s/good.yaml", DEPLOYMENT)
    write("k8s/broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n")
    write("rules.yaml", ruleset_text(["ORG-K8S-001"], organisation="{approved_registries: [registry.example.com]}"))
    result = cli("scan", str(tmp_path / "k8s"), "-r", str(tmp_path / "rules.yaml"), "--fail-on", "never")
    assert result.exit_code == 3
    assert "broken.yaml:4: is not valid YAML" in result.output
    assert "ORG-K8S-001" in result.output  # the good file's findings are kept
    assert "gate INCOMPLETE" in result.output


def test_a_binary_file_with_a_yaml_name_is_named_not_skipped(cli, write, tmp_path):
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "blob.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    write("rules.yaml", ruleset_text(["ORG-*"]))
    result = cli("scan", str(tmp_path / "k8s"), "-r", str(tmp_path / "rules.yaml"))
    assert result.exit_code == 3
    assert "blob.yaml: is not UTF-8" in result.output


def test_unknown_rule_id_is_a_configuration_error_with_file_and_line(cli, write, tmp_path):
    write("rules.yaml", ruleset_text(["ORG-K8S-001", "ORG-NOPE-999"]))
    result = run_checker("scan", str(tmp_path), "-r", str(tmp_path / "rules.yaml"))
    assert result.returncode == 2
    assert "rules.yaml:4: checks.include: 'ORG-NOPE-999' matches no known rule" in result.stderr


def test_unknown_key_in_a_ruleset_is_exit_2_naming_the_key(cli, write, tmp_path):
    write("rules.yaml", ruleset_text(["ORG-*"]) + "gate:\n  fail_on: high\n  fial_fast: true\n")
    result = cli("ruleset", "validate", str(tmp_path / "rules.yaml"))
    assert result.exit_code == 2
    assert "rules.yaml:7: gate.fial_fast: unknown key; allowed here: allow_inline, fail_on" in result.output


def test_bad_flag_and_missing_path_are_usage_errors(cli, tmp_path):
    assert cli("scan", "--fail-on", "sometimes").exit_code == 2
    result = cli("scan", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert "nowhere: no such file or directory" in result.output


def test_empty_repository_passes_with_a_clear_summary(cli, tmp_path, write):
    write("rules.yaml", ruleset_text(["ORG-K8S-001"], organisation="{approved_registries: [r.example.com]}"))
    (tmp_path / "empty").mkdir()
    result = cli("scan", str(tmp_path / "empty"), "-r", str(tmp_path / "rules.yaml"))
    assert result.exit_code == 0
    assert "0 file(s) checked" in result.output


def test_single_file_path_as_pre_commit_passes_it(write, tmp_path):
    write("k8s/web.yaml", DEPLOYMENT)
    write("other.yaml", DEPLOYMENT.replace("docker.io/nginx", "quay.io/nginx"))
    write(".checker.yaml", ruleset_text(["ORG-K8S-001"], organisation="{approved_registries: [registry.example.com]}"))
    result = run_checker("scan", "k8s/web.yaml", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert [(f["rule"], f["path"], f["start_line"]) for f in findings] == [("ORG-K8S-001", "k8s/web.yaml", 10)]


def test_json_output_and_stdout_format(cli, write, tmp_path):
    write("k8s/web.yaml", DEPLOYMENT)
    write("rules.yaml", ruleset_text(["ORG-K8S-001"], organisation="{approved_registries: [registry.example.com]}"))
    out = tmp_path / "out.json"
    result = cli("scan", str(tmp_path / "k8s"), "-r", str(tmp_path / "rules.yaml"), "--format", "sarif",
                 "--json-output", str(out))
    assert json.loads(result.output)["version"] == "2.1.0"
    doc = json.loads(out.read_text())
    assert doc["schema"] == "checker/scan-result/v1"
    assert doc["decision"] == {"verdict": "FAILED", "exit_code": 1, "reason": "1 open finding(s) at or above high",
                               "fail_on": "high"}
    assert doc["ruleset"]["digest"].startswith("sha256:")


def test_every_command_has_help_with_an_example(cli):
    for args in (["--help"], ["scan", "--help"], ["rules", "list", "--help"], ["rules", "explain", "--help"],
                 ["ruleset", "validate", "--help"], ["ruleset", "show", "--help"]):
        result = cli(*args)
        assert result.exit_code == 0
        assert "Example" in result.output, args


def test_rules_list_and_explain(cli):
    listed = json.loads(cli("rules", "list", "--format", "json").output)
    ids = {r["id"] for r in listed}
    assert {"ORG-GHA-001", "ORG-K8S-001", "ORG-TF-001", "ORG-REPO-001", "ORG-GITLAB-001"} <= ids
    assert any(r["engine"] == "checkov" for r in listed)
    explained = cli("rules", "explain", "ORG-GHA-001")
    assert explained.exit_code == 0
    assert explained.output.startswith("ORG-GHA-001: Third-party actions are pinned to a full commit SHA")
    assert cli("rules", "explain", "ORG-NOPE-1").exit_code == 2


def test_python_dash_m_and_console_script_agree():
    result = run_checker("--version")
    assert result.returncode == 0 and result.stdout.startswith("checker, version ")


def test_examples_fail_the_gate_and_make_scan_says_so():
    result = run_checker("scan", str(PROJECT / "examples"), "-r", "org-baseline", "--format", "json")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    rules = {f["rule"] for f in doc["findings"]}
    assert {"ORG-GHA-001", "ORG-GITLAB-001", "ORG-K8S-001", "ORG-TF-001", "ORG-REPO-001"} <= rules
    assert any(r.startswith("CKV_K8S_") for r in rules) and any(r.startswith("CKV_AWS_") for r in rules)
    assert not doc["problems"]


def test_two_outputs_or_an_output_and_the_input_may_not_be_one_file(cli, write, tmp_path):
    """Only the last write would be left (and evidence would describe a file that is not there): refused
    before the scan; devices such as /dev/null may be shared."""
    write("k8s/web.yaml", DEPLOYMENT)
    rules = str(write("rules.yaml", ruleset_text(["ORG-K8S-001"],
                                                  organisation="{approved_registries: [registry.example.com]}")))
    out = tmp_path / "r.sarif"
    same = cli("scan", str(tmp_path / "k8s"), "-r", rules, "--sarif-output", str(out),
               "--code-scanning-output", str(tmp_path / "k8s" / ".." / "r.sarif"))
    assert same.exit_code == 2 and "--sarif-output and --code-scanning-output name the same file" in same.output
    assert not out.exists()
    shared = cli("scan", str(tmp_path / "k8s"), "-r", rules, "--sarif-output", str(out), "--json-output", "/dev/null",
                 "--junit-output", "/dev/null")
    assert shared.exit_code == 1, shared.output
    refused = cli("gate", str(out), "--evidence-output", str(out))
    assert refused.exit_code == 2 and "SARIF_FILE and --evidence-output name the same file" in refused.output
    refused = cli("gate", str(out), "--baseline", str(out), "--evidence-output", str(out))
    assert refused.exit_code == 2 and "name the same file" in refused.output


def test_gate_refuses_a_sarif_whose_suppressions_are_not_as_scan_writes_them(cli, write, tmp_path):
    """A waiver's record read back from the SARIF is held to its types (text, a list of text): anything
    else is exit 2 naming the file, never sealed as evidence in another shape."""
    write("k8s/web.yaml", DEPLOYMENT)
    write("rules.yaml", ruleset_text(["ORG-K8S-001"], organisation="{approved_registries: [registry.example.com]}")
          + "waivers:\n  - {rule: ORG-K8S-001, reason: legacy, approved_by: a@example.com, expires: '2999-01-01'}\n")
    out = tmp_path / "r.sarif"
    assert cli("scan", str(tmp_path / "k8s"), "-r", str(tmp_path / "rules.yaml"), "--sarif-output", str(out)
               ).exit_code == 0
    good = json.loads(out.read_text())
    assert cli("gate", str(out)).exit_code == 0
    for where, value in (("justification", None), ("paths", "x/**"), ("paths", [1]), ("approvedBy", 7),
                         ("kind", "external-ish")):
        doc = json.loads(json.dumps(good))
        suppression = doc["runs"][0]["results"][0]["suppressions"][0]
        (suppression if where in ("justification", "kind") else suppression["properties"])[where] = value
        out.write_text(json.dumps(doc))
        result = cli("gate", str(out), "--evidence-output", str(tmp_path / "e.jsonl"))
        assert result.exit_code == 2, (where, value, result.output)
        assert "not a SARIF log as `checker scan` writes it" in result.output and not (tmp_path / "e.jsonl").exists()
