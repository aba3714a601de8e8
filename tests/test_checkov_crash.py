"""A Checkov check that raises on a valid file: the gate still fails closed (exit 3), and the message
names our rules that cover the same ground and the ruleset YAML that accepts the gap deliberately.

Real Checkov on tests/fixtures/checkov-crash (a workflow with `run: true`, on which CKV_GHA_2..6
raise), through the real CLI in a subprocess.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from testkit import FIXTURES, run_checker, sarif_problems

from checker.engines import checkov
from checker.engines.python import load_policies

CRASH = FIXTURES / "checkov-crash"
RULESET = CRASH / "ruleset.yaml"
KEY = "a" * 64  # signs the result cache, so a CI run (CI=true) uses it too

HINT = ("To accept the gap deliberately, exclude the check in the ruleset (`checks: {{exclude: [{0}]}}`; if a base "
        "layer locks it, only that layer can), or waive it for this file, approved and expiring:")
WAIVER = "waivers: [{{rule: {0}, paths: [.github/workflows/ci.yml], reason: ..., approved_by: ..., expires: ...}}]"
WHERE = ".github/workflows/ci.yml: Checkov check {} crashed on jobs.*.steps[].jobs.*.steps[], so that resource " \
        "was not checked by it [checkov]"
TEXT = f"""\
Could not check:
  {WHERE.format("CKV_GHA_2")}
    fix: Our ORG-GHA-003 covers the same ground. {HINT.format("CKV_GHA_2")}
         {WAIVER.format("CKV_GHA_2")}
  {WHERE.format("CKV_GHA_4")}
    fix: None of our own rules in this ruleset covers the same ground. {HINT.format("CKV_GHA_4")}
         {WAIVER.format("CKV_GHA_4")}

1 file(s) checked with 3 rule(s) of ruleset checkov-crash 1
0 open finding(s): 0 critical, 0 high, 0 medium, 0 low, 0 info; 0 suppressed; 2 could not be checked
gate INCOMPLETE: 2 thing(s) could not be checked, so the gate fails closed (fail_on: high)
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The fixture repository, copied outside this checkout (no git, no .checker.yaml above it)."""
    return Path(shutil.copytree(CRASH / "repo", tmp_path / "repo"))


def scan(repo: Path, *args: str, ruleset: Path = RULESET) -> tuple[int, str, str]:
    done = run_checker("scan", str(repo), "-r", str(ruleset), *args, env={"CHECKER_CACHE_KEY": KEY})
    return done.returncode, done.stdout, done.stderr


def test_the_text_report_names_the_covering_rule_and_the_exclusion_and_fails_closed(repo, tmp_path):
    cache = str(tmp_path / "cache")
    code, out, _ = scan(repo, "--cache-dir", cache)
    assert (code, out) == (3, TEXT)
    assert any((tmp_path / "cache").rglob("*")), "the first run stored its result"
    assert scan(repo, "--cache-dir", cache)[:2] == (3, TEXT), "the cached result names the crashed check too"


def test_the_sarif_notification_names_the_rule_the_covering_rule_and_the_exclusion(repo, tmp_path):
    report = tmp_path / "out.sarif"
    code, _, _ = scan(repo, "--no-cache", "--sarif-output", str(report))
    invocation = json.loads(report.read_text())["runs"][0]["invocations"][0]
    location = [{"physicalLocation": {"artifactLocation": {"uri": ".github/workflows/ci.yml",
                                                           "uriBaseId": "%SRCROOT%"}}}]
    assert (code, invocation["executionSuccessful"]) == (3, False)
    assert invocation["toolExecutionNotifications"] == [
        {"message": {"text": f"{WHERE.format('CKV_GHA_2')}. Our ORG-GHA-003 covers the same ground. "
                             f"{HINT.format('CKV_GHA_2')} `{WAIVER.format('CKV_GHA_2')}`."},
         "associatedRule": {"id": "CKV_GHA_2"}, "level": "error", "locations": location},
        {"message": {"text": f"{WHERE.format('CKV_GHA_4')}. None of our own rules in this ruleset covers the same "
                             f"ground. {HINT.format('CKV_GHA_4')} `{WAIVER.format('CKV_GHA_4')}`."},
         "associatedRule": {"id": "CKV_GHA_4"}, "level": "error", "locations": location},
    ]
    assert sarif_problems(report) == []  # the OASIS schema and GitHub's rules accept an associatedRule by id


def test_a_covering_rule_the_ruleset_does_not_select_is_not_named(repo, tmp_path):
    alone = tmp_path / "alone.yaml"
    alone.write_text(RULESET.read_text().replace(", ORG-GHA-003]", "]"))
    code, out, _ = scan(repo, "--no-cache", ruleset=alone)
    assert code == 3
    assert out.count("None of our own rules in this ruleset covers the same ground.") == 2
    assert "ORG-GHA-003" not in out


def test_the_exclusion_the_message_names_accepts_the_gap(repo, tmp_path):
    """The exclusion the message names is the real ruleset syntax: a layer made of it passes the gate."""
    _, out, _ = scan(repo, "--no-cache")
    excluded = [check for line in out.splitlines() if "`checks: {exclude:" in line
                for check in yaml.safe_load(line.split("`")[1])["checks"]["exclude"]]
    assert excluded == ["CKV_GHA_2", "CKV_GHA_4"]
    shutil.copy(RULESET, tmp_path / "crash.yaml")
    layer = tmp_path / "accepted.yaml"
    layer.write_text("apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: accepted}\nextends: [crash.yaml]\n"
                     f"checks: {{exclude: {json.dumps(excluded)}}}\n")
    code, out, _ = scan(repo, "--no-cache", ruleset=layer)
    assert code == 0, out
    assert "with 1 rule(s) of ruleset accepted" in out and "; 0 could not be checked" in out


def waived(out: str, expires: str) -> str:
    """A layer made of the waivers the message prints, their placeholders filled in."""
    entries = [yaml.safe_load(line.strip().replace("...", "x").replace("expires: x", f"expires: {expires}"))
               for line in out.splitlines() if line.strip().startswith("waivers: [")]
    return ("apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: waived}\nextends: [crash.yaml]\n"
            + yaml.safe_dump({"waivers": [w for entry in entries for w in entry["waivers"]]}))


def test_the_waiver_the_message_prints_accepts_the_gap_and_says_so(repo, tmp_path):
    """The printed waiver, filled in, is the real syntax: the crashes no longer fail the gate, and a note
    names each crash and the waiver that accepted it (the decision stays in every report and the evidence)."""
    _, out, _ = scan(repo, "--no-cache")
    shutil.copy(RULESET, tmp_path / "crash.yaml")
    layer = tmp_path / "waived.yaml"
    layer.write_text(waived(out, "2999-01-01"))
    code, out, err = scan(repo, "--no-cache", ruleset=layer)
    assert code == 0, out + err
    assert "; 0 could not be checked" in out
    notes = [line for line in (out + err).splitlines() if "the gap is accepted by the waiver at" in line]
    assert len(notes) == 2 and all("approved by x, expires 2999-01-01" in note for note in notes), out + err
    assert "matches no finding" not in out + err


def test_an_expired_waiver_does_not_accept_the_gap(repo, tmp_path):
    _, out, _ = scan(repo, "--no-cache")
    shutil.copy(RULESET, tmp_path / "crash.yaml")
    layer = tmp_path / "waived.yaml"
    layer.write_text(waived(out, "2000-01-01"))
    code, out, _ = scan(repo, "--no-cache", ruleset=layer)
    assert code == 3 and "2 could not be checked" in out


def test_a_locked_check_cannot_be_excluded_as_the_message_warns(repo, tmp_path):
    (tmp_path / "base.yaml").write_text(RULESET.read_text() + "locks: {rules: [CKV_GHA_2]}\n")
    layer = tmp_path / "layer.yaml"
    layer.write_text("apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: layer}\nextends: [base.yaml]\n"
                     "checks: {exclude: [CKV_GHA_2]}\n")
    code, _, err = scan(repo, "--no-cache", ruleset=layer)
    assert code == 2
    assert "leaves out CKV_GHA_2, which locks.rules of" in err


def test_every_covers_entry_names_a_checkov_check_of_the_rule_s_own_kind_of_file() -> None:
    """Each check a rule claims to cover (the claim is argued in a comment beside it in policies/) is a
    real Checkov check, of a framework that reads the kind of file the rule checks."""
    known = checkov.catalogue()
    claims = {(p.id, c) for p in load_policies().values() for c in p.covers}
    assert {("ORG-GHA-003", "CKV_GHA_2"), ("ORG-GHA-005", "CKV2_GHA_1")} <= claims
    for policy in load_policies().values():
        for check in policy.covers:
            assert check in known, f"{policy.id} covers {check}, which Checkov {checkov.checkov_version()} lacks"
            frameworks = set(known[check]["frameworks"])
            assert frameworks & {kind.value.replace("-", "_") for kind in policy.kinds}, (
                f"{policy.id} checks {[k.value for k in policy.kinds]} files, {check} {sorted(frameworks)}")


def test_the_readme_shows_the_message_as_the_scan_prints_it() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "```text\n" + "".join(TEXT.splitlines(keepends=True)[:4]) + "```\n" in readme
