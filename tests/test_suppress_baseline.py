"""Suppressions (inline, Checkov's, waivers), baselines and re-gating, through the real CLI."""
from __future__ import annotations

import datetime
import json

from testkit import run_checker, sarif_problems

from checker.scan import Options, run

POD = """apiVersion: v1
kind: Pod
metadata:
  name: api
  namespace: pay
spec:
  containers:
    - name: api
      image: docker.io/api:1.0
    - name: sidecar
      image: docker.io/sidecar:1.0
"""


def ruleset(write, extra: str = "") -> str:
    return str(write("rules.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: t, version: '1'}\n"
                     "organisation: {approved_registries: [registry.example.com]}\n"
                     "checks: {include: [ORG-K8S-001]}\n" + extra))


def scan(tmp_path, rules, today=None):
    return run(Options(paths=(str(tmp_path / "repo"),), ruleset=rules), today=today)


def test_inline_ignore_needs_a_reason_and_only_covers_its_line(write, tmp_path):
    write("repo/pod.yaml", POD.replace("      image: docker.io/api:1.0",
                                       "      # checker:ignore ORG-K8S-001 -- vendor image, mirrored in PAY-9\n"
                                       "      image: docker.io/api:1.0")
          .replace("image: docker.io/sidecar:1.0", "image: docker.io/sidecar:1.0  # checker:ignore ORG-K8S-001"))
    result = scan(tmp_path, ruleset(write))
    by_line = {f.location.start_line: f for f in result.findings}
    assert by_line[10].suppression.kind == "inSource"
    assert by_line[10].suppression.justification == "vendor image, mirrored in PAY-9"
    assert by_line[12].suppression is None
    assert any("pod.yaml:12: `checker:ignore ORG-K8S-001` has no reason" in n for n in result.notes)


def test_inline_can_be_forbidden_so_only_waivers_count(write, tmp_path):
    write("repo/pod.yaml", POD.replace("image: docker.io/api:1.0", "image: docker.io/api:1.0  # checker:ignore "
                                       "ORG-K8S-001 -- trust me"))
    result = scan(tmp_path, ruleset(write, "gate: {forbid_inline: [ORG-K8S-*]}\n"))
    assert all(f.suppression is None for f in result.findings)
    assert any("not allowed by the ruleset" in n for n in result.notes)


WAIVER = """waivers:
  - rule: ORG-K8S-001
    paths: ["legacy/**"]
    reason: Legacy images, migration in PAY-1234
    approved_by: jane.doe@example.com
    expires: {expires}
    ticket: PAY-1234
  - rule: ORG-K8S-001
    paths: ["nowhere/**"]
    reason: stale
    approved_by: jane.doe@example.com
    expires: 2099-01-01
"""


def test_waivers_suppress_until_expiry_and_are_audited(write, tmp_path):
    write("repo/legacy/pod.yaml", POD)
    write("repo/new/pod.yaml", POD)
    today = datetime.date(2027, 3, 25)
    result = scan(tmp_path, ruleset(write, WAIVER.format(expires="2027-03-31")), today)
    waived = [f for f in result.findings if f.suppression]
    assert {f.location.path for f in waived} == {"legacy/pod.yaml"} and len(waived) == 2
    assert waived[0].suppression.kind == "external"
    assert waived[0].suppression.properties() == {"approvedBy": "jane.doe@example.com", "expires": "2027-03-31",
                                                      "ticket": "PAY-1234", "paths": ["legacy/**"]}
    assert any("expires on 2027-03-31, in 6 day(s)" in n for n in result.notes)
    assert any("matches no finding: a stale exception" in n for n in result.notes)
    expired = scan(tmp_path, ruleset(write, WAIVER.format(expires="2027-03-01")), today)
    assert all(f.suppression is None for f in expired.findings)
    assert any("expired on 2027-03-01: its findings count again" in n for n in expired.notes)


def test_baseline_survives_inserted_lines_and_keeps_files_apart(write, tmp_path):
    write("repo/a.yaml", POD)
    write("repo/b.yaml", POD)
    rules = ruleset(write)
    base = tmp_path / "base.sarif"
    assert run_checker("scan", str(tmp_path / "repo"), "-r", rules, "--sarif-output", str(base)).returncode == 1
    write("repo/a.yaml", "# a comment\n# another\n" + POD)
    write("repo/c.yaml", POD)
    out = tmp_path / "now.sarif"
    done = run_checker("scan", str(tmp_path / "repo"), "-r", rules, "--baseline", str(base), "--sarif-output", str(out),
                       "--code-scanning-output", str(tmp_path / "alerts.sarif"))
    assert done.returncode == 1  # c.yaml is new
    results = json.loads(out.read_text())["runs"][0]["results"]
    states = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].rsplit("/", 1)[-1],
               r["locations"][0]["physicalLocation"]["region"]["startLine"]): r["baselineState"] for r in results}
    assert states == {("a.yaml", 11): "unchanged", ("a.yaml", 13): "unchanged", ("b.yaml", 9): "unchanged",
                      ("b.yaml", 11): "unchanged", ("c.yaml", 9): "new", ("c.yaml", 11): "new"}
    alerts = json.loads((tmp_path / "alerts.sarif").read_text())["runs"][0]["results"]
    assert len(alerts) == 2 and all(r["baselineState"] == "new" for r in alerts)
    assert sarif_problems(out) == [] and sarif_problems(tmp_path / "alerts.sarif") == []
    write("repo/c.yaml", "")
    fixed_scan = run_checker("scan", str(tmp_path / "repo"), "-r", rules, "--baseline", str(out))
    assert fixed_scan.returncode == 0, fixed_scan.stdout
    regate = run_checker("gate", str(out), "--baseline", str(base))
    assert regate.returncode == 1 and "gate FAILED: 2 open finding(s) at or above high" in regate.stdout
    assert run_checker("gate", str(out), "--baseline", str(out)).returncode == 0


def test_inline_ignore_in_hcl_and_dockerfile_for_checkov_rules(write, tmp_path):
    write("repo/main.tf", '# checker:ignore CKV_AWS_24 -- bastion, reviewed in SEC-12\n'
          'resource "aws_security_group" "ssh" {\n  ingress {\n    from_port = 22\n    to_port = 22\n'
          '    protocol = "tcp"\n    cidr_blocks = ["0.0.0.0/0"]\n  }\n}\n')
    write("repo/Dockerfile", "FROM registry.example.com/base:1.0\n"
          "EXPOSE 22  # checker:ignore CKV_DOCKER_1 -- debug image\n")
    rules = write("rules.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: t}\n"
                  "checks: {include: [CKV_AWS_24, CKV_DOCKER_1]}\n")
    result = run(Options(paths=(str(tmp_path / "repo"),), ruleset=str(rules)))
    assert {(f.rule_id, f.suppression.justification if f.suppression else None) for f in result.findings} == {
        ("CKV_AWS_24", "bastion, reviewed in SEC-12"), ("CKV_DOCKER_1", "debug image")}


def test_baseline_update_rolls_forward(write, tmp_path):
    write("repo/a.yaml", POD)
    rules = ruleset(write)
    base = tmp_path / "baseline.sarif"
    first = run_checker("baseline", "update", str(base), str(tmp_path / "repo"), "-r", rules)
    assert first.returncode == 0 and "2 finding(s) baselined: 2 new, 0 unchanged, 0 fixed" in first.stdout
    write("repo/b.yaml", POD)
    write("repo/a.yaml", "")
    second = run_checker("baseline", "update", str(base), str(tmp_path / "repo"), "-r", rules)
    assert "2 finding(s) baselined: 2 new, 0 unchanged, 2 fixed since the last baseline" in second.stdout
    assert run_checker("scan", str(tmp_path / "repo"), "-r", rules, "--baseline", str(base)).returncode == 0
