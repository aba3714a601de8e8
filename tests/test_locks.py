"""Who controls the gate: an organisation's layer (--base) and its locks bind the repository's ruleset.

Every loosening is an exit 2 naming the repository file, its line and the lock; stricter settings
pass through; code from the repository runs only with --trust-repo-policies; CHECKER_* variables
are checked once at start.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from testkit import PROJECT, run_checker

ORG = """\
apiVersion: checker/v1
kind: Ruleset
metadata: {name: org, version: '3'}
organisation: {approved_registries: [registry.example.com]}
checks: {include: ["ORG-K8S-*"]}
gate: {fail_on: high}
locks:
  fail_on: high
  rules: ["ORG-K8S-001"]
  allow_inline: false
  approvers: ["*@security.example.com"]
  repo_policies: false
  ignore: false
  organisation: [approved_registries]
"""
TEAM = "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: team}\n"
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - {name: a, image: nginx}\n"
WAIVER = ("waivers:\n  - {{rule: ORG-K8S-001, reason: legacy, approved_by: {who}, expires: '2999-01-01'}}\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "org.yaml").write_text(ORG)
    repo = tmp_path / "repo"
    (repo / "k8s").mkdir(parents=True)
    (repo / "k8s" / "pod.yaml").write_text(POD)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def scan(cli, repo: Path, *args: str):
    return cli("scan", str(repo), "--base", str(repo.parent / "org.yaml"), *args)


@pytest.mark.parametrize("layer, line, message, lock", [
    ("gate: {fail_on: critical}\n", 4, "gate.fail_on: 'critical' is laxer than 'high'", "fail_on"),
    ("gate: {fail_on: never}\n", 4, "gate.fail_on: 'never' is laxer than 'high'", "fail_on"),
    ("checks: {exclude: [ORG-K8S-001]}\n", 4, "checks.exclude: leaves out ORG-K8S-001", "rules"),
    ("checks:\n  include: [ORG-K8S-002]\n", 5, "checks.include: leaves out ORG-K8S-001", "rules"),
    ("checks:\n  severity: {ORG-K8S-001: low}\n", 5, "checks.severity: lowers ORG-K8S-001 from high to low", "rules"),
    ("gate: {allow_inline: true}\n", 4, "gate.allow_inline: turns inline suppression back on", "allow_inline"),
    (WAIVER.format(who="dev@example.com"), 5, "waivers[0].approved_by: 'dev@example.com' is not an approver",
     "approvers"),
    (WAIVER.format(who="'mallory@evil.com; cc x@security.example.com'"), 5,
     "waivers[0].approved_by: 'mallory@evil.com; cc x@security.example.com' is not an approver", "approvers"),
    ("ignore: [k8s/]\n", 4, "ignore: adds paths the scan would not look at", "ignore"),
    ("checks:\n  policy_paths: [checks]\n", 5, "checks.policy_paths: names Python checks to load", "repo_policies"),
    ("organisation:\n  approved_registries: [docker.io]\n", 5,
     "organisation.approved_registries: changes an organisation fact the checks read", "organisation"),
    ("checks:\n  params:\n    ORG-K8S-001: {registries: [docker.io]}\n", 6,
     "checks.params.ORG-K8S-001: changes the parameters of a locked rule", "rules"),
], ids=["laxer-fail-on", "fail-on-never", "exclude-locked", "include-leaves-out", "lower-severity",
        "inline-back-on", "foreign-approver", "approver-list", "ignore", "repo-policies", "organisation-fact",
        "locked-params"])
def test_a_repository_layer_that_loosens_a_lock_is_a_configuration_error(cli, repo, layer, line, message, lock):
    (repo / ".checker.yaml").write_text(TEAM + layer)
    result = scan(cli, repo, "--trust-repo-policies")
    assert result.exit_code == 2, result.output
    assert f".checker.yaml:{line}: {message}" in result.output
    assert re.search(rf"which locks\.{lock} of \S*org\.yaml:7 forbids", result.output), result.output


def test_stricter_settings_stay_allowed(cli, repo):
    (repo / ".checker.yaml").write_text(
        TEAM + "organisation: {required_labels: [team]}\n"
        "checks:\n  include: ['ORG-K8S-*', 'ORG-DOCKER-*']\n  severity: {ORG-K8S-002: critical}\n"
        "gate: {fail_on: low}\n" + WAIVER.format(who="Jane@Security.example.com"))
    result = scan(cli, repo)
    assert result.exit_code == 1, result.output  # ORG-K8S-002 (labels) at critical now fails the gate
    assert "ORG-K8S-001" in result.output and "suppressed (external)" in result.output


def test_a_locked_rule_cannot_be_suppressed_inline(cli, repo):
    (repo / "k8s" / "pod.yaml").write_text(POD.replace("image: nginx}", "image: nginx}  # checker:ignore "
                                                       "ORG-K8S-001 -- trust me"))
    result = scan(cli, repo, "--format", "json")
    assert result.exit_code == 1
    assert "inline suppression of ORG-K8S-001 is not allowed by the ruleset" in result.output


def test_the_base_digest_pins_the_organisation_layer(cli, repo, tmp_path):
    shown = yaml.safe_load(cli("ruleset", "show", str(tmp_path / "org.yaml")).output)
    digest = shown["digest"].removeprefix("sha256:")
    assert shown["locked"]["gate.fail_on"].startswith("locks.fail_on of ")
    assert shown["locked"]["rules ORG-K8S-001"].startswith("locks.rules of ")
    assert shown["locked"]["organisation.approved_registries"].startswith("locks.organisation of ")
    pinned = cli("scan", str(repo), "--base", f"{tmp_path / 'org.yaml'}@sha256:{digest}")
    assert pinned.exit_code == 1, pinned.output  # the pod's image is not from the approved registry
    (tmp_path / "org.yaml").write_text(ORG.replace("registry.example.com", "docker.io"))
    changed = cli("scan", str(repo), "--base", f"{tmp_path / 'org.yaml'}@sha256:{digest}")
    assert changed.exit_code == 2
    assert f"not the pinned sha256:{digest}" in changed.output
    malformed = cli("scan", str(repo), "--base", f"{tmp_path / 'org.yaml'}@sha256:abc")
    assert malformed.exit_code == 2 and "NAME@sha256:<64 lowercase hex digits>" in malformed.output


def test_a_repository_layer_may_extend_only_what_the_base_includes(cli, repo):
    (repo / ".checker.yaml").write_text(TEAM + "extends: [pci-dss-4.0]\n")
    result = scan(cli, repo)
    assert result.exit_code == 2
    assert ".checker.yaml:4: extends: 'pci-dss-4.0' is not part of the base ruleset (--base)" in result.output
    (repo / ".checker.yaml").write_text(TEAM + "extends: [org-baseline]\n")
    assert cli("scan", str(repo), "--base", "pci-dss-4.0", "--fail-on", "never").exit_code == 0


def test_checker_base_in_the_environment_is_the_base(cli, repo, tmp_path):
    (repo / ".checker.yaml").write_text(TEAM + "gate: {fail_on: never}\n")
    assert cli("scan", str(repo)).exit_code == 0  # no base: the repository's own ruleset decides
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CHECKER_BASE", str(tmp_path / "org.yaml"))
        result = cli("scan", str(repo))
    assert result.exit_code == 2 and "which locks.fail_on of" in result.output


def test_the_bundled_baseline_locks_its_threshold(cli, repo):
    (repo / ".checker.yaml").write_text(TEAM + "extends: [org-baseline]\ngate: {fail_on: critical}\n")
    result = cli("scan", str(repo))
    assert result.exit_code == 2
    assert "'critical' is laxer than 'high', which locks.fail_on of bundled:org-baseline:" in result.output


MARKER_MODULE = "from pathlib import Path\nPath({marker!r}).write_text('repository code ran')\n"


def test_repository_policies_do_not_run_without_trust(repo, tmp_path):
    marker = tmp_path / "marker"
    (repo / "evil").mkdir()
    (repo / "evil" / "check.py").write_text(MARKER_MODULE.format(marker=str(marker)))
    (repo / ".checker.yaml").write_text(TEAM + "checks:\n  include: ['ORG-K8S-*']\n  policy_paths: [./evil]\n")
    refused = run_checker("scan", str(repo))
    assert refused.returncode == 2, refused.stderr
    assert ".checker.yaml:6: checks.policy_paths: Python checks from the repository being judged are not loaded" \
        in refused.stderr
    assert not marker.exists() and "Traceback" not in refused.stderr
    trusted = run_checker("scan", str(repo), "--trust-repo-policies", "--fail-on", "never")
    assert trusted.returncode == 0, trusted.stderr
    assert marker.read_text() == "repository code ran"


def test_a_ruleset_link_leaving_the_repository_is_not_followed(cli, repo, tmp_path):
    (tmp_path / "lax.yaml").write_text(TEAM + "gate: {fail_on: never}\n")
    (repo / ".checker.yaml").symlink_to(tmp_path / "lax.yaml")
    result = cli("scan", str(repo))
    assert result.exit_code == 2
    assert "is a symbolic link to" in result.output and "outside the scanned repository" in result.output
    (repo / ".checker.yaml").unlink()
    (repo / ".checker.yaml").write_text(TEAM + "extends: [../lax.yaml]\n")
    escaped = cli("scan", str(repo))
    assert escaped.exit_code == 2 and "leads outside the scanned repository" in escaped.output


@pytest.mark.parametrize("variable, value, message", [
    ("CHECKER_WARM_IDLE", "soon", "CHECKER_WARM_IDLE='soon': expected a whole number of seconds"),
    ("CHECKER_CHECKOV_TIMEOUT", "-5", "CHECKER_CHECKOV_TIMEOUT='-5': expected a whole number of seconds"),
    ("CHECKER_WORKER_MEMORY_MB", "1e9", "CHECKER_WORKER_MEMORY_MB='1e9': expected a whole number of MiB"),
    ("CHECKER_WORKER_MEMORY_MB", "99999999999999999999", ("CHECKER_WORKER_MEMORY_MB='99999999999999999999': "
                                                          "expected a whole number of MiB from 64 to 1048576")),
    ("CHECKER_WARM", "yes", "CHECKER_WARM='yes': expected 0 (off) or 1 (on)"),
    ("CHECKER_BSAE", "org-baseline", "CHECKER_BSAE: unknown variable (a typo?)"),
])
def test_a_malformed_checker_variable_is_exit_2_from_the_console_script(tmp_path, variable, value, message):
    script = Path(sys.executable).parent / "checker"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "checker"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), variable: value}
    done = subprocess.run([*command, "scan", str(tmp_path)], env=env, capture_output=True, text=True, timeout=120,
                          cwd=PROJECT)
    assert done.returncode == 2, done.stderr
    assert f"checker: error: {message}" in done.stderr and "Traceback" not in done.stderr


def test_the_repository_may_lower_its_limits_but_not_raise_them(cli, repo, tmp_path):
    (repo / ".checker.yaml").write_text(TEAM + "limits:\n  max_yaml_nodes: 100000000\n")
    raised = scan(cli, repo)
    assert raised.exit_code == 2
    assert (".checker.yaml:5: limits.max_yaml_nodes: a ruleset inside the repository being judged may lower a limit, "
            "not raise it (to 100000000 from 250000)") in raised.output
    (repo / ".checker.yaml").write_text(TEAM + "limits:\n  max_file_bytes: 2048\n")
    assert scan(cli, repo).exit_code == 1  # lower is stricter: allowed
    (tmp_path / "org.yaml").write_text(ORG + "limits: {max_yaml_nodes: 400000}\n")
    assert scan(cli, repo).exit_code == 1  # the organisation's layer may raise them


def test_a_file_named_like_the_base_cannot_stand_in_for_it(cli, repo):
    """`--base org-baseline` is the bundled ruleset, whatever the checkout holds under that name."""
    (repo / "org-baseline").write_text(TEAM.replace("team", "org-baseline") + "gate: {fail_on: never}\n")
    result = cli("scan", ".", "--base", "org-baseline", cwd=repo)
    assert result.exit_code == 1, result.output  # the Pod's image is not from the approved registry


def test_outside_git_a_ruleset_above_the_scanned_folder_is_not_picked_up(tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "pwn.py").write_text(MARKER_MODULE.format(marker=str(marker)))
    (tmp_path / ".checker.yaml").write_text(TEAM + "checks:\n  policy_paths: [./evil]\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pod.yaml").write_text(POD)
    done = run_checker("scan", "sub", "--fail-on", "never", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # org-baseline: the .checker.yaml above `sub` is not the scan's
    assert not marker.exists()


def test_a_ruleset_link_loop_is_a_configuration_error(cli, repo):
    (repo / ".checker.yaml").symlink_to(repo / ".checker.yaml")
    result = cli("scan", str(repo))
    assert result.exit_code == 2 and "is not a regular file (or a link that never ends)" in result.output
    (repo / ".checker.yaml").unlink()
    (repo / "a.yaml").symlink_to(repo / "b.yaml")
    (repo / "b.yaml").symlink_to(repo / "a.yaml")
    (repo / ".checker.yaml").write_text(TEAM + "extends: [a.yaml]\n")
    looped = cli("scan", str(repo))
    assert looped.exit_code == 2 and "a.yaml: not a regular file" in looped.output


@pytest.mark.parametrize("layer, message", [
    ('checks: {exclude: ["*"]}\n', "checks.exclude: leaves out"),
    ('checks: {include: ["ORG-REPO-001"]}\n', "checks.include: leaves out"),
    ('ignore: ["**"]\n', "ignore: adds paths the scan would not look at"),
    ("gate: {fail_on: never}\n", "gate.fail_on: 'never' is laxer than 'high'"),
], ids=["exclude-everything", "include-one-rule", "ignore-everything", "never"])
def test_the_ci_templates_base_cannot_be_turned_off_by_the_repository(cli, repo, layer, message):
    """org-gate, the templates' default --base, locks org-baseline's whole selection and its paths."""
    (repo / ".checker.yaml").write_text(TEAM + "extends: [org-baseline]\n" + layer)
    result = cli("scan", str(repo), "--base", "org-gate")
    assert result.exit_code == 2, result.output
    assert message in result.output and re.search(r"of bundled:org-(gate|baseline):\d+ forbids", result.output)


def test_a_file_base_digest_is_the_same_from_any_folder(cli, tmp_path):
    """Waivers' file and line and absolute policy paths stay out of the digest a CI template pins."""
    (tmp_path / "org" / "checks").mkdir(parents=True)
    (tmp_path / "org" / "base.yaml").write_text(ORG + WAIVER.format(who="a@security.example.com"))
    here = yaml.safe_load(cli("ruleset", "show", "base.yaml", cwd=tmp_path / "org").output)["digest"]
    there = yaml.safe_load(cli("ruleset", "show", str(tmp_path / "org" / "base.yaml"), cwd=tmp_path).output)["digest"]
    assert here == there
