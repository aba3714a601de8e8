"""Our remediation for Checkov's checks (checker/fixes) and where a developer sees it.

- The data: every Checkov check org-baseline rates high or critical has an entry, with a snippet for
  each framework the check runs in, and no other check has one; every snippet passes its own check
  under real Checkov (one `checkov` run per framework over all the snippets, each in its folder).
- The loader refuses malformed data with the file and line.
- What a developer reads, exactly: the text report's fix line for a Checkov finding with our fix
  and without it, fitting the framework it was found in (CKV_AWS_20 in a .tf file and in a
  CloudFormation template); SARIF help and helpUri; `checker rules explain`. Real Checkov through
  the real CLI. The expected prose is read from the data (the data changes; the shape may not).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from testkit import Cli, run_checker, sarif_problems

from checker import fixes, scan
from checker.engines import checkov
from checker.engines.checkov import CheckovEngine, policy_index
from checker.errors import ConfigError
from checker.model import Finding, Location, Severity
from checker.reporters import help_uri_of
from checker.ruleset import load_ruleset, select_rules

# Where each framework's snippet is written for Checkov to find it.
SNIPPET_FILES = {"terraform": "main.tf", "cloudformation": "template.yaml", "kubernetes": "manifest.yaml",
                 "dockerfile": "Dockerfile", "github_actions": ".github/workflows/ci.yml",
                 "gitlab_ci": ".gitlab-ci.yml", "azure_pipelines": "azure-pipelines.yml", "secrets": "config.env"}
FIXES = fixes.bundled()
INDEX = "https://www.checkov.io/5.Policy%20Index/"


def high_or_critical() -> dict[str, tuple[str, ...]]:
    """Every Checkov check org-baseline rates high or critical, with the frameworks among our snippet keys
    that it runs in (checker.engines.checkov.catalogue())."""
    ruleset = load_ruleset("org-baseline")
    selected = select_rules(ruleset, scan.catalogue(ruleset))
    frameworks = checkov.catalogue()
    return {rule.id: tuple(f for f in fixes.FRAMEWORKS if f in frameworks[rule.id]["frameworks"])
            for rule in selected.values() if rule.engine == "checkov" and rule.severity.rank >= Severity.HIGH.rank}


def one_line(text: str) -> str:
    return " ".join(text.split())


# -- the data --------------------------------------------------------------------------------------------


def test_every_check_org_baseline_rates_high_or_critical_has_our_fix_and_no_other_check_has_one():
    wanted = high_or_critical()
    assert sorted(set(wanted) - set(FIXES)) == [], "checks rated high or critical without a fix in checker/fixes"
    assert sorted(set(FIXES) - set(wanted)) == [], "fixes for checks org-baseline does not rate high or critical"


def test_each_fix_has_a_snippet_for_every_framework_its_check_runs_in_and_no_other():
    frameworks = checkov.catalogue()
    wrong = {}
    for check, fix in FIXES.items():
        runs_in = [f for f in fixes.FRAMEWORKS if f in frameworks.get(check, {}).get("frameworks", ())]
        if [name for name, _ in fix.snippets] != runs_in:
            wrong[check] = ([name for name, _ in fix.snippets], runs_in)
    assert wrong == {}, "check: (snippets written, frameworks it runs in)"


def test_the_snippet_files_cover_every_framework_key():
    assert list(SNIPPET_FILES) == list(fixes.FRAMEWORKS)


def _checkov(root: Path, framework: str, checks: list[str]) -> tuple[set[str], set[str]]:
    """(checks that passed, checks that failed) in their own folder of `root` (root/CHECK/FILE), by real Checkov."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "checkov"), "-d", str(root), "--framework", framework,
         "--check", ",".join(sorted(checks)), "-o", "json", "--compact", "--skip-download",
         *(["--enable-secret-scan-all-files"] if framework == "secrets" else [])],  # it skips .env files otherwise
        capture_output=True, text=True, timeout=900, cwd=root,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"})
    try:
        reports = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"checkov wrote no JSON (exit {done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    passed: set[str] = set()
    failed: set[str] = set()
    for report in reports if isinstance(reports, list) else [reports]:
        results = report.get("results", {}) if isinstance(report, dict) else {}
        for key, into in (("passed_checks", passed), ("failed_checks", failed)):
            for result in results.get(key, []):
                if result["check_id"] in Path(result["file_path"].lstrip("/")).parts:
                    into.add(result["check_id"])
    return passed, failed


@pytest.mark.slow
@pytest.mark.parametrize("framework", [f for f in fixes.FRAMEWORKS if any(f == n for x in FIXES.values()
                                                                            for n, _ in x.snippets)])
def test_every_snippet_passes_its_own_check_under_real_checkov(framework, tmp_path):
    """One Checkov run for the framework over every snippet written as it, each in a folder named after its
    check: each check passes in its own folder and fails nowhere in it. A secrets snippet only must not fail
    (a file without a secret gives the secrets scanner nothing to pass)."""
    checks, bugs = [], set()
    for check, fix in FIXES.items():
        for name, text in fix.snippets:
            if name == framework:
                path = tmp_path / check / SNIPPET_FILES[name]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                checks.append(check)
                if name in fix.checkov_bugs:
                    bugs.add(check)
    passed, failed = _checkov(tmp_path, framework, checks)
    judged = set(checks) - bugs
    unevaluated = [] if framework == "secrets" else sorted(judged - passed - failed)
    assert {"fail their own check": sorted(failed & judged), "not evaluated (wrong resource or file?)": unevaluated,
            "pass although marked checkov_bug (remove the mark)": sorted(passed & bugs)} == {
        "fail their own check": [], "not evaluated (wrong resource or file?)": [],
        "pass although marked checkov_bug (remove the mark)": []}, framework


# -- the loader ------------------------------------------------------------------------------------------

GOOD = """\
CKV_AWS_20:
  fix: |-
    Keep the ACL private.
  terraform: |
    resource "aws_s3_bucket" "x" {}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text))
    return folder


def test_the_loader_reads_every_yaml_file_of_the_folder(tmp_path):
    _write(tmp_path, "aws.yaml", GOOD)
    _write(tmp_path, "kubernetes.yaml", "CKV_K8S_20:\n  fix: Set it.\n  kubernetes: 'kind: Pod'\n")
    _write(tmp_path, "notes.txt", "CKV_K8S_1: not read\n")
    loaded = fixes.load(tmp_path)
    assert loaded == {
        "CKV_AWS_20": fixes.Fix("CKV_AWS_20", "Keep the ACL private.",
                                (("terraform", 'resource "aws_s3_bucket" "x" {}\n'),), f"{tmp_path / 'aws.yaml'}:1"),
        "CKV_K8S_20": fixes.Fix("CKV_K8S_20", "Set it.", (("kubernetes", "kind: Pod"),),
                                f"{tmp_path / 'kubernetes.yaml'}:1"),
    }
    (example,) = loaded["CKV_AWS_20"].examples(("terraform", "terraform_json", "cloudformation"))
    assert (example.name, example.label, example.language, example.kinds) == (
        "terraform", "Terraform configuration", "hcl", ("terraform", "terraform_json"))


@pytest.mark.parametrize(("files", "error"), [
    ({"a.yaml": GOOD, "b.yaml": "\n" + GOOD}, "{b}:2: CKV_AWS_20 has a fix in {a}:1 already"),
    ({"a.yaml": GOOD + "CKV_AWS_20:\n  fix: again\n"}, ("{a}:6: while constructing a mapping; found duplicate key "
                                                      "'CKV_AWS_20'")),
    ({"a.yaml": GOOD + "  terraformm: |\n    x\n"}, ("{a}:6: CKV_AWS_20: unknown framework 'terraformm' (one of: fix, "
                                                   "terraform, cloudformation, kubernetes, dockerfile, github_actions, "
                                                   "gitlab_ci, azure_pipelines, secrets)")),
    ({"a.yaml": "CKV_AWS_20:\n  terraform: x\n"}, "{a}:1: CKV_AWS_20 has no `fix` (what to change, in prose)"),
    ({"a.yaml": "CKV_AWS_20:\n  fix: ''\n"}, "{a}:1: CKV_AWS_20 has no `fix` (what to change, in prose)"),
    ({"a.yaml": "CKV_AWS_20:\n  fix: |-\n    One.\n\n    Two.\n"}, ("{a}:2: CKV_AWS_20: `fix` must be one paragraph "
                                                                  "(the text report shows it on one line)")),
    ({"a.yaml": "CKV_AWS_20:\n  fix: x\n  terraform: 3\n"}, ("{a}:3: CKV_AWS_20: the terraform snippet must be a whole "
                                                            "file, as text")),
    ({"a.yaml": "CKV-AWS-20:\n  fix: x\n"}, ("{a}:1: 'CKV-AWS-20' is not a Checkov check id (CKV_AWS_20, CKV2_GHA_1, "
                                            "...)")),
    ({"a.yaml": "CKV_AWS_20: Keep it private.\n"}, ("{a}:1: CKV_AWS_20 must be a mapping with `fix` and a snippet per "
                                                   "framework")),
    ({"a.yaml": "- CKV_AWS_20\n"}, "{a}: must be one mapping of check ids to fixes"),
    ({"a.yaml": GOOD + "  checkov_bug:\n    cloudformation: never passes\n"}, (
        "{a}:6: CKV_AWS_20: `checkov_bug` maps a framework that has a snippet to why Checkov cannot pass it")),
], ids=["in-two-files", "twice-in-one-file", "unknown-framework", "no-fix", "empty-fix", "two-paragraphs",
        "snippet-not-text", "not-an-id", "not-a-mapping", "not-a-mapping-at-all", "bug-without-snippet"])
def test_the_loader_refuses_malformed_data_naming_the_file_and_line(tmp_path, files, error):
    for name, text in files.items():
        _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as raised:
        fixes.load(tmp_path)
    assert str(raised.value) == error.format(a=tmp_path / "a.yaml", b=tmp_path / "b.yaml")


def test_the_bundled_data_is_read_again_when_a_file_changes(tmp_path, monkeypatch):
    """A warm server outlives edits of the data (it restarts on .py files only)."""
    monkeypatch.setattr(fixes, "FOLDER", tmp_path)
    _write(tmp_path, "aws.yaml", GOOD)
    assert list(fixes.bundled()) == ["CKV_AWS_20"]
    _write(tmp_path, "kubernetes.yaml", "CKV_K8S_20:\n  fix: Set it.\n")
    assert list(fixes.bundled()) == ["CKV_AWS_20", "CKV_K8S_20"]


def test_the_bundled_data_loads():
    assert sorted(p.name for p in fixes.FOLDER.glob("*.yaml")), "no data in checker/fixes"
    assert fixes.load(fixes.FOLDER) == FIXES


# -- links ----------------------------------------------------------------------------------------------


def test_every_framework_links_to_its_page_of_the_policy_index_never_to_source():
    pages = {framework: policy_index("CKV_X_1", framework) for framework in checkov.RUNNERS}
    assert pages == {
        "terraform": f"{INDEX}terraform.html#:~:text=CKV_X_1",
        "terraform_json": f"{INDEX}terraform.html#:~:text=CKV_X_1",
        "terraform_plan": f"{INDEX}terraform.html#:~:text=CKV_X_1",
        "cloudformation": f"{INDEX}cloudformation.html#:~:text=CKV_X_1",
        "serverless": f"{INDEX}serverless.html#:~:text=CKV_X_1",
        "kubernetes": f"{INDEX}kubernetes.html#:~:text=CKV_X_1",
        "helm": f"{INDEX}kubernetes.html#:~:text=CKV_X_1",
        "kustomize": f"{INDEX}kubernetes.html#:~:text=CKV_X_1",
        "arm": f"{INDEX}arm.html#:~:text=CKV_X_1",
        "bicep": f"{INDEX}bicep.html#:~:text=CKV_X_1",
        "ansible": f"{INDEX}ansible.html#:~:text=CKV_X_1",
        "openapi": f"{INDEX}openapi.html#:~:text=CKV_X_1",
        "dockerfile": f"{INDEX}dockerfile.html#:~:text=CKV_X_1",
        "secrets": f"{INDEX}secrets.html#:~:text=CKV_X_1",
        "github_actions": f"{INDEX}github_actions.html#:~:text=CKV_X_1",
        "gitlab_ci": f"{INDEX}gitlab_ci.html#:~:text=CKV_X_1",
        "azure_pipelines": f"{INDEX}azure_pipelines.html#:~:text=CKV_X_1",
        "circleci_pipelines": f"{INDEX}circleci_pipelines.html#:~:text=CKV_X_1",
        "bitbucket_pipelines": f"{INDEX}bitbucket_pipelines.html#:~:text=CKV_X_1",
        "argo_workflows": f"{INDEX}argo_workflows.html#:~:text=CKV_X_1",
    }
    ruleset = load_ruleset("org-baseline")
    rules = CheckovEngine().catalogue(ruleset)
    assert [r.id for r in rules.values() if "github.com" in r.remediation + r.help_uri + repr(r.help_uris)] == []
    assert rules["CKV_AWS_20"].help_uris == tuple(
        (kind, policy_index("CKV_AWS_20", kind))
        for kind in ("terraform", "terraform_json", "terraform_plan", "cloudformation", "serverless"))


def test_the_rule_page_is_that_of_the_framework_most_of_its_findings_are_in():
    rule = CheckovEngine().catalogue(load_ruleset("org-baseline"))["CKV_AWS_20"]

    def found(*kinds: str) -> list[Finding]:
        return [Finding("CKV_AWS_20", Severity.HIGH, "m", Location(f"{i}"), kind=k) for i, k in enumerate(kinds)]

    assert help_uri_of(rule, found("cloudformation")) == policy_index("CKV_AWS_20", "cloudformation")
    assert help_uri_of(rule, found("serverless", "cloudformation", "serverless")) == policy_index(
        "CKV_AWS_20", "serverless")
    assert help_uri_of(rule, found("cloudformation", "terraform")) == policy_index("CKV_AWS_20", "terraform")
    assert help_uri_of(rule, found()) == policy_index("CKV_AWS_20", "terraform") == rule.help_uri
    assert help_uri_of(rule, found("", "", "cloudformation")) == policy_index("CKV_AWS_20", "cloudformation")


# -- where a developer sees it: real Checkov through the real CLI ------------------------------------------

RULESET = """\
apiVersion: checker/v1
kind: Ruleset
metadata: {name: fixes, version: "1"}
organisation:
  approved_registries: [registry.example.com]
checks:
  include: [CKV_AWS_20, CKV_DOCKER_2, ORG-DOCKER-001]
  severity: {CKV_AWS_20: critical}
"""
TERRAFORM = """\
resource "aws_s3_bucket" "logs" {
  bucket = "example-logs"
  acl    = "public-read"
}
"""
TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Logs:
    Type: AWS::S3::Bucket
    Properties:
      AccessControl: PublicRead
"""
DOCKERFILE = "FROM docker.io/python:3.12-slim\nUSER app\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """CKV_AWS_20 (our fix) found in a .tf file and a CloudFormation template, CKV_DOCKER_2 (not ours: it is
    rated low) and our ORG-DOCKER-001 in a Dockerfile."""
    root = tmp_path_factory.mktemp("fixes")
    (root / "repo").mkdir()
    (root / "repo" / "main.tf").write_text(TERRAFORM)
    (root / "repo" / "template.yaml").write_text(TEMPLATE)
    (root / "repo" / "Dockerfile").write_text(DOCKERFILE)
    (root / "ruleset.yaml").write_text(RULESET)
    return root


def _scan(repo: Path, *args: str) -> str:
    done = run_checker("scan", str(repo / "repo"), "-r", str(repo / "ruleset.yaml"), "--no-cache", *args)
    assert done.returncode == 1, done.stderr
    return done.stdout


def test_both_engines_say_what_kind_of_file_each_finding_is_in(repo):
    result = scan.run(scan.Options(paths=(str(repo / "repo"),), ruleset=str(repo / "ruleset.yaml"), cache=False))
    assert sorted((f.rule_id, f.location.path, f.kind) for f in result.findings) == [
        ("CKV_AWS_20", "main.tf", "terraform"), ("CKV_AWS_20", "template.yaml", "cloudformation"),
        ("CKV_DOCKER_2", "Dockerfile", "dockerfile"), ("ORG-DOCKER-001", "Dockerfile", "dockerfile")]


def test_the_text_report_gives_our_fix_and_the_page_for_the_framework_of_each_finding(repo):
    assert "CKV_DOCKER_2" not in FIXES, "the check without our fix must stay one"
    fix = one_line(FIXES["CKV_AWS_20"].prose)
    pointer = "`checker rules explain CKV_AWS_20` shows a corrected"
    lines = _scan(repo).splitlines()
    assert lines[:3] == [
        "Dockerfile",
        "      1  MEDIUM   CKV_DOCKER_2  Ensure that HEALTHCHECK instructions have been added to container images",
        ("                fix: See the Checkov policy index for CKV_DOCKER_2: "
        f"{INDEX}dockerfile.html#:~:text=CKV_DOCKER_2"),
    ]
    assert lines[3].startswith("      1  HIGH     ORG-DOCKER-001  ")  # ours: its fix line is the policy's own
    start = lines.index("main.tf")
    assert lines[start:start + 9] == [
        "main.tf",
        "      1  CRITICAL CKV_AWS_20  S3 Bucket has an ACL defined which allows public READ access.",
        f"                fix: {fix} {pointer} Terraform configuration.",
        f"                     {INDEX}terraform.html#:~:text=CKV_AWS_20",
        "",
        "template.yaml",
        "      3  CRITICAL CKV_AWS_20  Ensure the S3 bucket does not allow READ permissions to everyone",
        f"                fix: {fix} {pointer} CloudFormation template.",
        f"                     {INDEX}cloudformation.html#:~:text=CKV_AWS_20",
    ]


def test_sarif_help_carries_the_fix_every_snippet_and_every_page(repo, tmp_path):
    sarif = tmp_path / "results.sarif"
    _scan(repo, "--sarif-output", str(sarif))
    rules = {r["id"]: r for r in json.loads(sarif.read_text())["runs"][0]["tool"]["driver"]["rules"]}
    fix = FIXES["CKV_AWS_20"]
    snippets = dict(fix.snippets)
    title = checkov.catalogue()["CKV_AWS_20"]["title"]
    pages = [("terraform, terraform_json, terraform_plan", "terraform"), ("cloudformation", "cloudformation"),
             ("serverless", "serverless")]
    assert rules["CKV_AWS_20"]["help"] == {
        "text": f"{title}. {title} How to fix: {fix.prose}\n\n"
                "A corrected Terraform configuration (for terraform, terraform_json and terraform_plan files):\n\n"
                f"{snippets['terraform'].rstrip()}\n\n"
                "A corrected CloudFormation template (for cloudformation and serverless files):\n\n"
                f"{snippets['cloudformation'].rstrip()}\n\n"
                "More: " + "; ".join(f"{kinds}: {INDEX}{page}.html#:~:text=CKV_AWS_20" for kinds, page in pages),
        "markdown": f"**{title}**\n\n{title}\n\n**How to fix**\n\n{fix.prose}\n\n"
                    "A corrected Terraform configuration (for terraform, terraform_json and terraform_plan files):\n\n"
                    f"```hcl\n{snippets['terraform'].rstrip()}\n```\n\n"
                    "A corrected CloudFormation template (for cloudformation and serverless files):\n\n"
                    f"```yaml\n{snippets['cloudformation'].rstrip()}\n```\n\n"
                    "More: " + ", ".join(f"[{kinds}]({INDEX}{page}.html#:~:text=CKV_AWS_20)" for kinds, page in pages),
    }
    # one finding in each framework: the tie goes to the framework Checkov lists first
    assert rules["CKV_AWS_20"]["helpUri"] == f"{INDEX}terraform.html#:~:text=CKV_AWS_20"
    docker = checkov.catalogue()["CKV_DOCKER_2"]["title"]
    link = f"{INDEX}dockerfile.html#:~:text=CKV_DOCKER_2"
    assert rules["CKV_DOCKER_2"]["help"] == {
        "text": f"{docker}. {docker} How to fix: See the Checkov policy index for CKV_DOCKER_2: dockerfile: {link}",
        "markdown": f"**{docker}**\n\n{docker}\n\n**How to fix**\n\nSee the Checkov policy index for CKV_DOCKER_2: "
                    f"[dockerfile]({link})",
    }
    assert rules["CKV_DOCKER_2"]["helpUri"] == link
    assert sarif_problems(sarif) == []


def test_rules_explain_shows_the_fix_each_framework_snippet_and_page():
    fix = FIXES["CKV_AWS_20"]
    snippets = {name: textwrap.indent(text.rstrip(), "    ") for name, text in fix.snippets}
    title = checkov.catalogue()["CKV_AWS_20"]["title"]
    outcome = Cli()("rules", "explain", "CKV_AWS_20", "-r", "org-baseline")
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output == (
        f"CKV_AWS_20: {title}\n"
        "severity: critical   engine: checkov   selected by org-baseline: yes\n\n"
        f"{title}\n\n"
        f"How to fix:\n{fix.prose}\n\n"
        "A corrected Terraform configuration (for terraform, terraform_json and terraform_plan files):\n"
        f"{snippets['terraform']}\n\n"
        "A corrected CloudFormation template (for cloudformation and serverless files):\n"
        f"{snippets['cloudformation']}\n\n"
        "More:\n"
        f"  terraform, terraform_json, terraform_plan: {INDEX}terraform.html#:~:text=CKV_AWS_20\n"
        f"  cloudformation: {INDEX}cloudformation.html#:~:text=CKV_AWS_20\n"
        f"  serverless: {INDEX}serverless.html#:~:text=CKV_AWS_20\n"
    )


def test_rules_explain_of_a_check_without_our_fix_lists_its_pages():
    title = checkov.catalogue()["CKV_K8S_8"]["title"]
    outcome = Cli()("rules", "explain", "CKV_K8S_8", "-r", "org-baseline")
    assert outcome.output == (
        f"CKV_K8S_8: {title}\n"
        "severity: medium   engine: checkov   selected by org-baseline: yes\n\n"
        f"{title}\n\n"
        "How to fix:\n"
        "See the Checkov policy index for CKV_K8S_8:\n"
        f"  terraform, terraform_json, terraform_plan: {INDEX}terraform.html#:~:text=CKV_K8S_8\n"
        f"  kubernetes, helm, kustomize: {INDEX}kubernetes.html#:~:text=CKV_K8S_8\n"
    )
