"""The Checkov engine with real Checkov: normalised findings, fail-closed parse errors, crash isolation, parity."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from checker.scan import Options, run
from testkit import corpus_folder, ruleset_text

TF = """
resource "aws_security_group" "admin" {
  name = "admin"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"""
# AWS Rain module references give a resource a mapping (or a tagged scalar) as its Type: Checkov's
# CloudFormation runner raises TypeError on such a template (see ../shared/corpus/BASELINE.md).
RAIN = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Site:
    Type: {"Rain::Module": "https://example.com/site.yaml"}
"""
RAIN_TAG = """
Resources:
  Bucket:
    Type: !Rain::Module "https://example.com/bucket.yaml"
"""
# CKV_AWS_361 compares BackupRetentionPeriod with an int: a string makes the check raise.
NEPTUNE = """
Resources:
  Cluster:
    Type: AWS::Neptune::DBCluster
    Properties:
      BackupRetentionPeriod: "7"
"""
CFN_BUCKET = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: demo
"""


def scan(tmp_path: Path, include: list[str], folder: str = "repo"):
    rules = tmp_path / "rules.yaml"
    rules.write_text(ruleset_text(include, gate="{fail_on: never}"))
    return run(Options(paths=(str(tmp_path / folder),), ruleset=str(rules)))


def test_findings_are_relative_with_lines_and_resource(write, tmp_path):
    write("repo/infra/main.tf", TF)
    result = scan(tmp_path, ["CKV_AWS_24"])
    assert [(f.rule_id, f.location.path, f.location.start_line, f.location.end_line, f.resource)
            for f in result.findings] == [("CKV_AWS_24", "infra/main.tf", 1, 9, "aws_security_group.admin")]
    assert result.findings[0].message == "Ensure no security groups allow ingress from 0.0.0.0:0 to port 22"


def test_checkov_skip_comment_is_an_in_source_suppression(write, tmp_path):
    write("repo/main.tf", TF.replace('name = "admin"', 'name = "admin"\n  # checkov:skip=CKV_AWS_24:bastion only'))
    result = scan(tmp_path, ["CKV_AWS_24"])
    (finding,) = result.findings
    assert finding.suppression and finding.suppression.kind == "inSource"
    assert finding.suppression.justification == "bastion only"
    assert result.decision.exit_code == 0


def test_templates_checkov_would_crash_on_are_named_and_other_files_keep_their_results(write, tmp_path):
    write("repo/rain.yaml", RAIN)
    write("repo/rain-tag.yaml", RAIN_TAG)
    write("repo/bucket.yaml", CFN_BUCKET)
    result = scan(tmp_path, ["CKV_AWS_18", "CKV_AWS_21"])
    assert {(f.rule_id, f.location.path) for f in result.findings} == {
        ("CKV_AWS_18", "bucket.yaml"), ("CKV_AWS_21", "bucket.yaml")}
    assert [(p.path, p.line) for p in result.problems] == [("rain-tag.yaml", 3), ("rain.yaml", 4)]
    assert "has a Type that is not a string (an AWS Rain module?)" in result.problems[0].message
    assert result.decision.exit_code == 3


def test_a_checkov_check_that_raises_is_a_problem_not_a_pass(write, tmp_path):
    write("repo/neptune.yaml", NEPTUNE)
    result = scan(tmp_path, ["CKV_AWS_361"])
    assert [(p.path, p.message) for p in result.problems] == [(
        "neptune.yaml", "Checkov check CKV_AWS_361 crashed on AWS::Neptune::DBCluster.Cluster, "
                        "so that resource was not checked by it")]


def test_only_frameworks_with_selected_checks_and_files_run(write, tmp_path):
    write("repo/main.tf", TF)
    result = scan(tmp_path, ["CKV_K8S_*"])
    assert result.findings == () and result.problems == ()


PARITY_FOLDERS = ["terragoat", "cfngoat", "kustomizegoat", "gitlab-runner"]


@pytest.mark.corpus
@pytest.mark.parametrize("name", PARITY_FOLDERS)
def test_parity_with_checkov_on_the_corpus(name, tmp_path):
    """With every Checkov check selected, our Checkov findings equal `checkov -d` (rule, file, resource)."""
    folder = corpus_folder(name).resolve()  # Checkov reports kustomize paths through symlinks differently
    rules = tmp_path / "all.yaml"
    rules.write_text(ruleset_text(["CKV*"], gate="{fail_on: never}"))
    ours = {(f.rule_id, f.location.path, f.resource)
            for f in run(Options(paths=(str(folder),), ruleset=str(rules))).findings if f.suppression is None}
    checkov = Path(sys.executable).parent / "checkov"
    done = subprocess.run([str(checkov), "-d", str(folder), "-o", "json", "--quiet", "--compact", "--skip-download"],
                          capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"}, timeout=600)
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    prefix = f"{folder}/"  # Checkov gives some kustomize graph findings an absolute path; ours are all relative
    theirs = {(c["check_id"], c["file_path"].removeprefix(prefix).lstrip("/"), c["resource"])
              for report in reports if isinstance(report, dict)
              for c in report.get("results", {}).get("failed_checks", [])}
    assert theirs, "Checkov found nothing: the comparison would prove nothing"
    assert ours == theirs
