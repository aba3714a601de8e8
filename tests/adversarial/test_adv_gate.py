"""A. Who controls the gate: the judged repository cannot weaken its judge.

The organisation's layer (`--base`, CHECKER_BASE, or a file others extend) carries `locks`;
every way a later layer could loosen one is a configuration error (exit 2) naming the file,
the line and the lock, and the gate still fails on the violation the repository holds when a
layer is only stricter. Code the repository names is never imported without the flag.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hostile import BAD, line_of, put, run_cli

WITHIN = 60.0
BASE = """\
apiVersion: checker/v1
kind: Ruleset
metadata: {name: org-base, version: '1'}
organisation: {approved_registries: [registry.example.com], required_labels: [app]}
checks:
  include: ["ORG-K8S-001", "ORG-K8S-002"]
gate:
  fail_on: high
  allow_inline: false
locks:
  fail_on: high
  rules: ["ORG-K8S-001"]
  allow_inline: false
  approvers: ["*@security.example.com"]
  repo_policies: false
  ignore: false
"""
LAYER_HEAD = "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: team, version: '1'}\n"
WAIVER = "waivers:\n  - rule: ORG-K8S-001\n    reason: migrating, PAY-1\n    approved_by: {}\n    expires: 2099-01-01\n"
EVIL = "from pathlib import Path\nPath({marker!r}).write_text('the repository ran code inside the gate')\n"


def _repo(tmp_path: Path, layer: str | None, base: str = BASE) -> tuple[Path, Path]:
    """tmp/org/base.yaml (the organisation) and tmp/repo with a high violation and .checker.yaml = layer."""
    base_file = put(tmp_path, "org/base.yaml", base)
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", BAD)
    put(repo, "evil/evil_check.py", EVIL.format(marker=str(tmp_path / "MARKER")))
    if layer is not None:
        put(repo, ".checker.yaml", LAYER_HEAD + layer)
    return repo, base_file


# (id, the repository layer's body, the lock it loosens, the text on the offending line)
LOOSENINGS = [
    ("fail_on-never", "gate:\n  fail_on: never\n", "fail_on", "fail_on: never"),
    ("fail_on-critical", "gate:\n  fail_on: critical\n", "fail_on", "fail_on: critical"),
    ("exclude-locked-rule", "checks:\n  exclude: [ORG-K8S-001]\n", "rules", "exclude"),
    ("exclude-glob-over-locked-rule", "checks:\n  exclude: ['ORG-*']\n", "rules", "exclude"),
    ("include-leaves-locked-rule-out", "checks:\n  include: [ORG-K8S-002]\n", "rules", "include"),
    ("severity-of-locked-rule-lowered", "checks:\n  severity:\n    ORG-K8S-001: low\n", "rules", "ORG-K8S-001: low"),
    ("allow_inline-back-on", "gate:\n  allow_inline: true\n", "allow_inline", "allow_inline"),
    ("waiver-from-unlisted-approver", WAIVER.format("mallory@example.com"), "approvers", "approved_by"),
    ("waiver-from-lookalike-approver-domain", WAIVER.format("eve@security.example.com.evil.io"), "approvers",
     "approved_by"),
    ("waiver-approver-glob-characters", WAIVER.format("'*'"), "approvers", "approved_by"),
    ("ignore-added-when-locked", "ignore: ['k8s/**']\n", "ignore", "ignore"),
    ("policy_paths-when-repo_policies-locked", "checks:\n  policy_paths: [./evil]\n", "repo_policies", "policy_paths"),
]


@pytest.mark.parametrize(("layer", "lock", "needle"), [c[1:] for c in LOOSENINGS], ids=[c[0] for c in LOOSENINGS])
def test_a_repository_layer_that_loosens_a_lock_is_exit_2_naming_file_line_and_lock(tmp_path, layer, lock, needle):
    repo, base = _repo(tmp_path, layer)
    line = line_of(LAYER_HEAD + layer, needle)
    run = run_cli("scan", ".", "--base", base, "--trust-repo-policies", "--sarif-output", tmp_path / "out.sarif",
                  cwd=repo)
    run.expect({2}, within=WITHIN, names=(f".checker.yaml:{line}", f"locks.{lock}"))
    assert not (tmp_path / "MARKER").exists(), "the repository's Python module was imported"


def test_checker_base_variable_binds_like_the_flag(tmp_path):
    repo, base = _repo(tmp_path, "gate:\n  fail_on: never\n")
    run = run_cli("scan", ".", cwd=repo, env={"CHECKER_BASE": str(base)})
    run.expect({2}, within=WITHIN, names=(".checker.yaml:5", "locks.fail_on"))


def test_a_ruleset_that_extends_the_locked_layer_cannot_loosen_it_either(tmp_path):
    repo, _ = _repo(tmp_path, None)
    team = put(tmp_path, "org/team.yaml", LAYER_HEAD + "extends: [./base.yaml]\ngate:\n  fail_on: never\n")
    run = run_cli("scan", ".", "-r", team, cwd=repo)
    run.expect({2}, within=WITHIN, names=("team.yaml:6", "locks.fail_on"))


def test_locking_every_rule_refuses_excluding_any(tmp_path):
    base = BASE.replace('rules: ["ORG-K8S-001"]', 'rules: ["*"]')
    repo, base_file = _repo(tmp_path, "checks:\n  exclude: [ORG-K8S-002]\n", base=base)
    run_cli("scan", ".", "--base", base_file, cwd=repo).expect({2}, within=WITHIN,
                                                             names=(".checker.yaml:5", "locks.rules"))


@pytest.mark.parametrize("extends", ["pci-dss-4.0", "./team.yaml"], ids=["bundled-not-in-base", "own-file"])
def test_the_repository_layer_may_extend_only_what_the_base_includes(tmp_path, extends):
    repo, base = _repo(tmp_path, f"extends: [{extends}]\n")
    put(repo, "team.yaml", LAYER_HEAD + "gate:\n  fail_on: never\n")
    run_cli("scan", ".", "--base", base, cwd=repo).expect({2}, within=WITHIN, names=(".checker.yaml:4", "extends"))


def _digest(tmp_path: Path, ref: Path | str) -> str:
    shown = run_cli("ruleset", "show", ref, cwd=tmp_path).expect({0}, within=WITHIN)
    return yaml.safe_load(shown.stdout)["digest"]


def test_a_base_pinned_by_its_digest_binds_and_another_digest_is_refused(tmp_path):
    repo, base = _repo(tmp_path, "gate:\n  fail_on: medium\n")
    digest = _digest(tmp_path, base)
    assert digest.startswith("sha256:")
    run_cli("scan", ".", "--base", f"{base}@{digest}", "--sarif-output", tmp_path / "ok.sarif", cwd=repo).expect(
        {1}, within=WITHIN, sarif=tmp_path / "ok.sarif", names=("ORG-K8S-001",))
    wrong = "sha256:" + ("0" * 64 if digest[-1] != "0" else "1" * 64)
    run_cli("scan", ".", "--base", f"{base}@{wrong}", cwd=repo).expect({2}, within=WITHIN, names=("base.yaml",))


def test_a_base_whose_content_changed_after_pinning_is_refused(tmp_path):
    repo, base = _repo(tmp_path, "")
    digest = _digest(tmp_path, base)
    base.write_text(BASE.replace("fail_on: high\nlocks", "fail_on: never\nlocks").replace("  fail_on: high\n  rules",
                                                                                          "  rules"))
    run_cli("scan", ".", "--base", f"{base}@{digest}", cwd=repo).expect({2}, within=WITHIN, names=(digest[7:15],))


# (id, the repository layer's body, expected exit): stricter settings, and what locks still allow
STRICTER = [
    ("fail_on-medium", "gate:\n  fail_on: medium\n", 1),
    ("fail_on-info", "gate:\n  fail_on: info\n", 1),
    ("severity-of-locked-rule-raised", "checks:\n  severity:\n    ORG-K8S-001: critical\n", 1),
    ("unlocked-rule-excluded", "checks:\n  exclude: [ORG-K8S-002]\n", 1),
    ("more-rules-included", "checks:\n  include: [ORG-K8S-001, ORG-K8S-002, ORG-K8S-003]\n", 1),
    ("allow_inline-false-again", "gate:\n  allow_inline: false\n", 1),
    ("waiver-from-listed-approver", WAIVER.format("alice@security.example.com"), 0),
]


@pytest.mark.parametrize(("layer", "code"), [c[1:] for c in STRICTER], ids=[c[0] for c in STRICTER])
def test_stricter_settings_stay_allowed(tmp_path, layer, code):
    repo, base = _repo(tmp_path, layer)
    sarif = tmp_path / "out.sarif"
    run_cli("scan", ".", "--base", base, "--sarif-output", sarif, cwd=repo).expect({code}, within=WITHIN, sarif=sarif)


def test_a_locked_rule_cannot_be_suppressed_inline(tmp_path):
    base = BASE.replace("  allow_inline: false\nlocks", "  allow_inline: true\nlocks").replace(
        "  allow_inline: false\n  approvers", "  approvers")
    repo, base_file = _repo(tmp_path, "", base=base)
    put(repo, "k8s/web.yaml", BAD.replace("          image:", "          # checker:ignore ORG-K8S-001 -- trust me\n"
                                                           "          image:"))
    run_cli("scan", ".", "--base", base_file, cwd=repo).expect({1}, within=WITHIN, names=("ORG-K8S-001",))


def test_repository_policy_paths_never_import_without_the_flag(tmp_path):
    layer = "organisation: {approved_registries: [registry.example.com]}\nchecks:\n  include: [ORG-K8S-001]\n" \
            "  policy_paths: [./evil]\n"
    repo, _ = _repo(tmp_path, layer)
    line = line_of(LAYER_HEAD + layer, "policy_paths")
    for args in (("scan", "."), ("rules", "list"), ("ruleset", "validate", ".checker.yaml")):
        run_cli(*args, cwd=repo).expect({2}, within=WITHIN, names=(f".checker.yaml:{line}", "policy_paths"))
        assert not (tmp_path / "MARKER").exists(), f"`checker {' '.join(args)}` imported the repository's module"
    run_cli("ruleset", "show", ".checker.yaml", cwd=repo).expect({0, 2}, within=WITHIN)
    assert not (tmp_path / "MARKER").exists(), "`checker ruleset show` imported the repository's module"


def test_repository_policy_paths_load_with_the_flag_when_nothing_locks_them(tmp_path):
    layer = "organisation: {approved_registries: [registry.example.com]}\nchecks:\n  include: [ORG-K8S-001]\n" \
            "  policy_paths: [./evil]\n"
    repo, _ = _repo(tmp_path, layer)
    run_cli("scan", ".", "--trust-repo-policies", cwd=repo).expect({1}, within=WITHIN)
    assert (tmp_path / "MARKER").exists(), "--trust-repo-policies did not load the repository's checks"


@pytest.mark.parametrize("with_base", [False, True], ids=["no-base", "on-a-base"])
def test_a_checker_yaml_linking_outside_the_root_is_not_followed(tmp_path, with_base):
    repo, base = _repo(tmp_path, None)
    put(tmp_path, "elsewhere/loose.yaml", LAYER_HEAD + "checks:\n  include: [ORG-K8S-002]\ngate:\n  fail_on: never\n")
    (repo / ".checker.yaml").symlink_to(tmp_path / "elsewhere" / "loose.yaml")
    args = ("--base", base) if with_base else ()
    run_cli("scan", ".", *args, cwd=repo).expect({2}, within=WITHIN, names=(".checker.yaml",))
