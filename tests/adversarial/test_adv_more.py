"""E. More hostile and careless inputs: odd names, odd files, odd rulesets, baselines and patterns.

Each is held to the same contract as the other classes (exit code, no traceback, time, memory,
valid SARIF where one is written).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from hostile import (
    BAD,
    CLEAN,
    ORG_ONLY,
    VIOLATION,
    WITH_CHECKOV,
    Run,
    put,
    rules_file,
    ruleset,
    run_cli,
    seeded_garbage,
    skip_unless_unreadable,
)

WITHIN = 60.0


def _scan(tmp_path: Path, repo: Path, rules: Sequence[str] = WITH_CHECKOV, *extra: str | Path,
          timeout: float = WITHIN + 5) -> tuple[Run, Path]:
    """Scan `repo` (or the options and paths in `extra`) with a ruleset of `rules`, writing SARIF."""
    sarif = tmp_path / "out.sarif"
    run = run_cli("scan", "-r", rules_file(tmp_path, rules), "--sarif-output", sarif, *(extra or (".",)), cwd=repo,
                  timeout=timeout)
    return run, sarif


# --------------------------------------------------------------------------------------------
# Names and shapes
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["-r.yaml", "--fail-on=never.yaml", "--help.yaml", "-.yaml", "--.yaml"])
def test_a_file_named_like_an_option_is_scanned_as_a_file(tmp_path, name):
    repo = tmp_path / "repo"
    put(repo, f"k8s/{name}", BAD)
    run, sarif = _scan(tmp_path, repo, ORG_ONLY)
    run.expect({1}, within=WITHIN, sarif=sarif)
    run, sarif = _scan(tmp_path, repo / "k8s", ORG_ONLY, "--", name)  # as pre-commit hands file names over
    run.expect({1}, within=WITHIN, sarif=sarif)


def test_a_255_byte_file_name_gives_valid_sarif(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "k8s/" + "n" * 250 + ".yaml", BAD)
    run, sarif = _scan(tmp_path, repo, ORG_ONLY)
    run.expect({1}, within=WITHIN, sarif=sarif)


@pytest.mark.parametrize("name", ["x.yaml", "main.tf", "kustomization.yaml"])
def test_a_directory_with_a_file_name_is_not_read_as_a_file(tmp_path, name):
    repo = tmp_path / "repo"
    put(repo, "k8s/real.yaml", CLEAN)
    (repo / "k8s" / name).mkdir()
    put(repo, f"k8s/{name}/inner.yaml", CLEAN)
    run, sarif = _scan(tmp_path, repo)
    run.expect({0}, within=WITHIN, sarif=sarif)


def test_an_unreadable_file_is_named(tmp_path):
    repo = tmp_path / "repo"
    secret = put(repo, "k8s/secret.yaml", BAD)
    secret.chmod(0)
    try:
        skip_unless_unreadable(secret)
        run, sarif = _scan(tmp_path, repo)
        run.expect({3}, within=WITHIN, sarif=sarif, names=("k8s/secret.yaml",))
    finally:
        secret.chmod(0o644)


def test_a_huge_single_line_is_checked_or_named(tmp_path):
    repo = tmp_path / "repo"
    huge = "name: web\n  annotations: {x: '" + "y" * 2_000_000 + "'}\n"
    put(repo, "k8s/web.yaml", BAD.replace("name: web\n", huge, 1))
    run, sarif = _scan(tmp_path, repo)
    run.expect({1, 3}, within=WITHIN, sarif=sarif)


@pytest.mark.slow
def test_ten_thousand_tiny_files_in_bounded_time(tmp_path):
    """Our checks and Checkov's Kubernetes runner over 10,000 manifests (its secrets scan would triple the time)."""
    repo = tmp_path / "repo"
    for i in range(10_000):
        put(repo, f"k8s/{i % 100:02d}/c{i}.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n")
    put(repo, "k8s/web.yaml", BAD)
    run, sarif = _scan(tmp_path, repo, (*ORG_ONLY, "CKV_K8S_*"), timeout=125)
    run.expect({1}, within=120, sarif=sarif)


@pytest.mark.slow
def test_a_dockerfile_just_under_the_size_limit_is_checked_in_bounded_time(tmp_path):
    """One RUN continued over 400,000 lines (4.8 MB, under the 5 MiB default): parsing must not be quadratic."""
    repo = tmp_path / "repo"
    put(repo, "Dockerfile", "FROM docker.io/x:1\nRUN true \\\n" + "  && true \\\n" * 400_000 + "  && true\n")
    run, sarif = _scan(tmp_path, repo)
    run.expect({1, 3}, within=WITHIN, sarif=sarif)


@pytest.mark.slow
def test_three_thousand_findings_give_valid_sarif(tmp_path):
    repo = tmp_path / "repo"
    containers = "".join(f"        - name: c{i}\n          image: docker.io/app{i}:1\n" for i in range(3_000))
    put(repo, "k8s/web.yaml", VIOLATION.split("        - name: web")[0].format(name="web") + containers)
    run, sarif = _scan(tmp_path, repo, ORG_ONLY)
    run.expect({1}, within=WITHIN, sarif=sarif)


# --------------------------------------------------------------------------------------------
# Line endings, tags, duplicate keys
# --------------------------------------------------------------------------------------------
def test_old_mac_line_endings_are_checked_or_named(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", BAD.replace("\n", "\r"))
    run, sarif = _scan(tmp_path, repo, ORG_ONLY)
    run.expect({1, 3}, within=WITHIN, sarif=sarif)


@pytest.mark.parametrize("rules", [ORG_ONLY, WITH_CHECKOV], ids=["org-checks", "with-checkov"])
def test_a_python_tag_in_a_manifest_never_runs(tmp_path, rules):
    repo = tmp_path / "repo"
    marker = tmp_path / "PWNED"
    put(repo, "k8s/web.yaml", BAD.replace("name: web\n", f"name: web\n  x: !!python/object/apply:os.system "
                                                         f"['touch {marker}']\n", 1))
    run, sarif = _scan(tmp_path, repo, rules)
    run.expect({1, 3}, within=WITHIN, sarif=sarif)
    assert not marker.exists(), "a YAML tag ran a command"


def test_a_duplicate_key_cannot_smuggle_a_violation_past_the_gate(tmp_path):
    """A reviewer sees docker.io; whichever value a parser keeps, the gate must not pass."""
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", BAD.replace("          image: docker.io/nginx:1.27\n",
                                          "          image: docker.io/nginx:1.27\n"
                                          "          image: registry.example.com/nginx:1.27\n"))
    run, sarif = _scan(tmp_path, repo, ORG_ONLY)
    run.expect({1, 3}, within=WITHIN, sarif=sarif)


# --------------------------------------------------------------------------------------------
# Terraform and Dockerfile garbage
# --------------------------------------------------------------------------------------------
GARBAGE = [  # binary files are refused before any parser, so our own checks suffice there
    ("terraform-unbalanced", "main.tf", 'resource "aws_s3_bucket" "b" {{{ = \n  region = "us-east-1"\n', {3},
     WITH_CHECKOV),
    ("terraform-binary", "main.tf", seeded_garbage(4096, 11), {3}, ORG_ONLY),
    ("terraform-deep-1000", "main.tf", "locals {\n  x = " + "[" * 1_000 + "]" * 1_000 + "\n}\n", {0, 3}, WITH_CHECKOV),
    ("terraform-deep-100000", "main.tf", "locals {\n  x = " + "[" * 100_000 + "]" * 100_000 + "\n}\n", {0, 3},
     WITH_CHECKOV),
    ("terraform-json-garbage", "main.tf.json", '{"resource": {"aws_s3_bucket": [1, 2, {]}', {3}, WITH_CHECKOV),
    ("dockerfile-binary", "Dockerfile", seeded_garbage(4096, 12), {3}, ORG_ONLY),
    ("dockerfile-text-garbage", "Dockerfile", "}{ not a dockerfile\n\\\n\\\nFROM\n" * 50, {0, 1, 3}, WITH_CHECKOV),
]


@pytest.mark.parametrize(("rel", "data", "codes", "rules"), [c[1:] for c in GARBAGE], ids=[c[0] for c in GARBAGE])
def test_terraform_and_dockerfile_garbage_fails_closed(tmp_path, rel, data, codes, rules):
    repo = tmp_path / "repo"
    put(repo, rel, data)
    run, sarif = _scan(tmp_path, repo, rules)
    run.expect(codes, within=WITHIN, sarif=sarif, names=(rel,) if codes == {3} else ())


# --------------------------------------------------------------------------------------------
# Rulesets that point at themselves, at FIFOs, at folders
# --------------------------------------------------------------------------------------------
HEAD = "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: odd, version: '1'}\n"


@pytest.mark.parametrize("case", ["extends-itself", "extends-each-other", "extends-a-fifo", "extends-a-folder",
                                  "extends-etc-passwd", "is-a-fifo", "is-a-folder", "empty", "null"])
def test_odd_ruleset_files_are_exit_2_without_hanging(tmp_path, case):
    rules = tmp_path / "rules.yaml"
    if case == "extends-itself":
        put(tmp_path, "rules.yaml", HEAD + "extends: [./rules.yaml]\n")
    elif case == "extends-each-other":
        put(tmp_path, "rules.yaml", HEAD + "extends: [./other.yaml]\n")
        put(tmp_path, "other.yaml", HEAD + "extends: [./rules.yaml]\n")
    elif case == "extends-a-fifo":
        put(tmp_path, "rules.yaml", HEAD + "extends: [./pipe.yaml]\n")
        os.mkfifo(tmp_path / "pipe.yaml")
    elif case == "extends-a-folder":
        put(tmp_path, "rules.yaml", HEAD + "extends: [./folder.yaml]\n")
        (tmp_path / "folder.yaml").mkdir()
    elif case == "extends-etc-passwd":
        put(tmp_path, "rules.yaml", HEAD + "extends: [/etc/passwd]\n")
    elif case == "is-a-fifo":
        os.mkfifo(rules)
    elif case == "is-a-folder":
        rules.mkdir()
    elif case == "empty":
        put(tmp_path, "rules.yaml", "")
    else:
        put(tmp_path, "rules.yaml", "null\n")
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", CLEAN)
    run_cli("scan", ".", "-r", rules, cwd=repo).expect({2}, within=WITHIN)
    run_cli("ruleset", "validate", rules, cwd=repo).expect({2}, within=WITHIN)


@pytest.mark.parametrize("case", ["fifo", "empty", "folder"])
def test_an_odd_repository_layer_fails_without_hanging(tmp_path, case):
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", BAD)
    layer = repo / ".checker.yaml"
    if case == "fifo":
        os.mkfifo(layer)
    elif case == "empty":
        layer.write_text("")
    else:
        layer.mkdir()
    # a FIFO or an empty file where the repository's ruleset belongs must not mean "no ruleset, pass"
    run_cli("scan", ".", cwd=repo).expect({1, 2, 3} if case == "folder" else {2, 3}, within=WITHIN)


def test_scanning_a_fifo_named_on_the_command_line_does_not_hang(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", CLEAN)
    os.mkfifo(repo / "k8s" / "x.yaml")
    run, _ = _scan(tmp_path, repo, ORG_ONLY, "k8s/x.yaml", "k8s/web.yaml")
    run.expect({2, 3}, within=WITHIN, names=("x.yaml",))


# --------------------------------------------------------------------------------------------
# Baselines and the two-stage gate
# --------------------------------------------------------------------------------------------
BASELINES = [
    ("garbage", seeded_garbage(2048, 21)),
    ("empty", b""),
    ("json-list", b"[1, 2, 3]"),
    ("runs-not-a-list", b'{"version": "2.1.0", "runs": "x"}'),
    ("fingerprints-not-a-map", b'{"version": "2.1.0", "runs": [{"results": [{"partialFingerprints": 5}]}]}'),
    ("yaml-not-json", b"version: 2.1.0\nruns: []\n"),
    ("deep-json-100000", b'{"runs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("nan-and-huge-numbers", b'{"version": "2.1.0", "runs": [{"results": [{"rank": NaN, "x": 1e999999}]}]}'),
]


@pytest.mark.parametrize("data", [b[1] for b in BASELINES], ids=[b[0] for b in BASELINES])
def test_a_baseline_that_is_not_sarif_is_exit_2(tmp_path, data):
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", BAD)
    baseline = put(tmp_path, "baseline.sarif", data)
    run, _ = _scan(tmp_path, repo, ORG_ONLY, "--baseline", baseline, ".")
    run.expect({2}, within=WITHIN, names=("baseline.sarif",))


@pytest.mark.parametrize("data", [b[1] for b in BASELINES], ids=[b[0] for b in BASELINES])
def test_gating_a_sarif_that_is_not_ours_is_exit_2(tmp_path, data):
    results = put(tmp_path, "results.sarif", data)
    run_cli("gate", results, cwd=tmp_path).expect({2}, within=WITHIN, names=("results.sarif",))


# --------------------------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------------------------
PATHOLOGICAL = "/".join(["**"] * 40) + "/x\n" + "".join(f"*{'?' * i}*[!a]*\n" for i in range(1, 200))


@pytest.mark.parametrize("where", ["gitignore", "ruleset-ignore"])
def test_pathological_ignore_patterns_cost_bounded_time(tmp_path, where):
    repo = tmp_path / "repo"
    for i in range(30):
        put(repo, "/".join(["a"] * (i + 1)) + "/c.yaml", CLEAN)
    put(repo, "k8s/web.yaml", BAD)
    if where == "gitignore":
        put(repo, ".gitignore", PATHOLOGICAL)
        rules = rules_file(tmp_path, ORG_ONLY)
    else:
        rules = rules_file(tmp_path, ORG_ONLY, extra="ignore: " + json.dumps(PATHOLOGICAL.splitlines()) + "\n")
    run = run_cli("scan", ".", "-r", rules, "--format", "json", cwd=repo, timeout=WITHIN + 5)
    run.expect({0, 1}, within=WITHIN)


def test_helper_ruleset_is_valid(tmp_path):
    """The suite's own ruleset must be valid, or every case above would fail for the wrong reason."""
    put(tmp_path, "rules.yaml", ruleset(WITH_CHECKOV))
    run_cli("ruleset", "validate", tmp_path / "rules.yaml", cwd=tmp_path).expect({0}, within=WITHIN)
