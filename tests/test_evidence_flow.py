"""Evidence from `checker scan` and `checker gate`, end to end: a real git repository, real keys,
the real CLI in a subprocess, and `checker evidence verify` on what was written."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from testkit import PROJECT, sarif_problems

POD = """apiVersion: v1
kind: Pod
metadata: {name: api, namespace: pay}
spec:
  containers:
    - name: api
      # checker:ignore ORG-K8S-001 -- vendor image, mirrored in PAY-9
      image: docker.io/api:1.0
    - name: sidecar
      image: docker.io/sidecar:1.0
"""
RULESET = """apiVersion: checker/v1
kind: Ruleset
metadata: {name: payments, version: '2.0'}
organisation: {approved_registries: [registry.example.com]}
checks: {include: [ORG-K8S-001]}
waivers:
  - rule: ORG-K8S-001
    paths: ["legacy/**"]
    reason: Legacy images, migration tracked in PAY-1234
    approved_by: jane.doe@example.com
    expires: 2099-03-31
    ticket: PAY-1234
gate: {fail_on: high}
"""
PREDICATE_SCHEMA = PROJECT / "checker" / "evidence" / "gate-decision.schema.json"
VSA_SCHEMA = PROJECT / "tests" / "schemas" / "slsa-vsa-v1.schema.json"
IMAGE = "a" * 64


def checker(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CHECKER_", "GITHUB_", "GITLAB_", "CI_"))}
    environ.pop("CI", None)
    environ.update(CHECKER_WARM="0", **env)
    return subprocess.run([sys.executable, "-m", "checker", *args], cwd=cwd, env=environ, capture_output=True,
                          check=False, text=True, timeout=300)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed repository: one open finding, one suppressed inline, two waived (no remote)."""
    root = tmp_path / "repo"
    (root / "deploy").mkdir(parents=True)
    (root / "legacy").mkdir()
    (root / "deploy" / "pod.yaml").write_text(POD)
    (root / "legacy" / "pod.yaml").write_text(POD.replace("      # checker:ignore ORG-K8S-001 -- vendor image, "
                                                          "mirrored in PAY-9\n", ""))
    (root / ".checker.yaml").write_text(RULESET)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-q", "-m", "PAY-42 add the pods")
    return root


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "gate.key"
    path.parent.mkdir()
    done = checker("evidence", "keygen", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return path


def statements(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        envelope = json.loads(line)
        assert envelope["payloadType"] == "application/vnd.in-toto+json"
        out.append(json.loads(base64.b64decode(envelope["payload"])))
    return out


def scan_with_evidence(repo: Path, key: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return checker("scan", ".", "--sarif-output", "../results.sarif", "--evidence-output", "../gate.intoto.jsonl",
                   "--signing-key", str(key), *extra, cwd=repo)


def test_a_scan_leaves_signed_evidence_of_the_whole_decision(repo: Path, key: Path, tmp_path: Path) -> None:
    done = scan_with_evidence(repo, key, "--subject", f"registry.example.com/api=sha256:{IMAGE}",
                              "--environment", "production")
    assert done.returncode == 1, done.stderr
    evidence, sarif = tmp_path / "gate.intoto.jsonl", tmp_path / "results.sarif"
    decision, vsa = statements(evidence)
    commit = git(repo, "rev-parse", "HEAD")
    sarif_digest = hashlib.sha256(sarif.read_bytes()).hexdigest()
    assert decision["subject"] == vsa["subject"]
    assert {json.dumps(s["digest"], sort_keys=True) for s in decision["subject"]} == {
        json.dumps({"gitCommit": commit}), json.dumps({"sha256": sarif_digest}), json.dumps({"sha256": IMAGE})}
    predicate = decision["predicate"]
    jsonschema.validate(predicate, json.loads(PREDICATE_SCHEMA.read_text()))
    jsonschema.validate(vsa["predicate"], json.loads(VSA_SCHEMA.read_text()))
    assert (predicate["decision"], predicate["threshold"], predicate["exitCode"]) == ("FAILED", "high", 1)
    assert predicate["counts"]["high"] == {"open": 1, "suppressed": 3, "baselined": 0}
    blocking = [(b["rule"], b["file"], b["line"]) for b in predicate["blocking"]]
    assert blocking == [("ORG-K8S-001", "deploy/pod.yaml", 10)]
    assert predicate["inlineSuppressions"] == [{"rule": "ORG-K8S-001", "file": "deploy/pod.yaml", "line": 7,
                                                "reason": "vendor image, mirrored in PAY-9"}]
    [waiver] = predicate["waivers"]
    assert waiver == {"rule": "ORG-K8S-001", "paths": ["legacy/**"], "reason": "Legacy images, migration tracked in "
                      "PAY-1234", "approvedBy": "jane.doe@example.com", "expires": "2099-03-31", "ticket": "PAY-1234",
                      "source": ".checker.yaml:7", "findings": 2}
    assert predicate["ruleset"]["name"] == "payments" and predicate["ruleset"]["layers"][-1]["file"] == ".checker.yaml"
    change = predicate["change"]
    assert (change["commit"], change["branch"], change["dirty"]) == (commit, "main", False)
    assert [t["id"] for t in change["tickets"]] == ["PAY-42"]
    assert predicate["environment"] == "production" and vsa["predicate"]["resourceUri"] == "production"
    assert vsa["predicate"]["verificationResult"] == "FAILED"
    assert predicate["sarif"] == {"name": "results.sarif", "digest": {"sha256": sarif_digest}}
    # nothing of the machine: no absolute path in the evidence or in the SARIF's run properties
    run = json.loads(sarif.read_text())["runs"][0]
    for text in (json.dumps(predicate), json.dumps(run["properties"])):
        assert str(tmp_path) not in text and sys.prefix not in text
    assert run["properties"]["change"]["commit"] == commit  # no remote, still the commit

    public = f"{key}.pub"
    verified = checker("evidence", "verify", str(evidence), "--key", public, "--sarif", str(sarif),
                       "--commit", commit, "--subject", f"sha256:{IMAGE}", "--ruleset",
                       f"payments@{predicate['ruleset']['digest']}", "--environment", "production", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    required = checker("evidence", "verify", str(evidence), "--key", public, "--require-pass", cwd=tmp_path)
    assert required.returncode == 1, required.stdout + required.stderr


def test_the_sarif_with_the_change_still_validates(repo: Path, key: Path, tmp_path: Path) -> None:
    assert scan_with_evidence(repo, key).returncode == 1
    assert sarif_problems(tmp_path / "results.sarif") == []


def test_two_stage_gate_seals_the_same_record(repo: Path, key: Path, tmp_path: Path) -> None:
    first = scan_with_evidence(repo, key, "--fail-on", "never")
    assert first.returncode == 0, first.stderr
    second = checker("gate", "results.sarif", "--fail-on", "high", "--evidence-output", "stage2.intoto.jsonl",
                     "--signing-key", str(key), cwd=tmp_path)
    assert second.returncode == 1, second.stdout + second.stderr
    one = statements(tmp_path / "gate.intoto.jsonl")[0]["predicate"]
    two = statements(tmp_path / "stage2.intoto.jsonl")[0]["predicate"]
    assert (one["decision"], one["threshold"], two["decision"], two["threshold"]) == ("PASSED", "never", "FAILED",
                                                                                      "high")
    for field in ("counts", "waivers", "inlineSuppressions", "ruleset", "change", "tools", "sarif", "startedOn"):
        assert one[field] == two[field], field
    assert [b["file"] for b in two["blocking"]] == ["deploy/pod.yaml"]
    verified = checker("evidence", "verify", "stage2.intoto.jsonl", "--key", f"{key}.pub", "--sarif", "results.sarif",
                       cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_dirty_tree_is_no_evidence_for_the_commit(repo: Path, key: Path, tmp_path: Path) -> None:
    (repo / "deploy" / "pod.yaml").write_text(POD.replace("sidecar:1.0", "sidecar:2.0"))
    assert scan_with_evidence(repo, key).returncode == 1
    [decision, _] = statements(tmp_path / "gate.intoto.jsonl")
    assert decision["predicate"]["change"]["dirty"] is True
    assert not any("gitCommit" in s["digest"] for s in decision["subject"])
    refused = checker("evidence", "verify", "gate.intoto.jsonl", "--key", f"{key}.pub", "--commit",
                      git(repo, "rev-parse", "HEAD"), cwd=tmp_path)
    assert refused.returncode == 3 and "uncommitted" in refused.stdout + refused.stderr


def test_unsigned_evidence_is_written_with_a_warning_and_never_verifies(repo: Path, key: Path,
                                                                        tmp_path: Path) -> None:
    done = checker("scan", ".", "--sarif-output", "../results.sarif", "--evidence-output", "../gate.intoto.jsonl",
                   cwd=repo)
    assert done.returncode == 1 and "unsigned" in done.stderr
    refused = checker("evidence", "verify", "gate.intoto.jsonl", "--key", f"{key}.pub", cwd=tmp_path)
    assert refused.returncode == 3 and "unsigned" in refused.stdout + refused.stderr


def test_the_key_can_come_from_the_environment_as_ci_secrets_do(repo: Path, key: Path, tmp_path: Path) -> None:
    done = checker("scan", ".", "--sarif-output", "../results.sarif", "--evidence-output", "../gate.intoto.jsonl",
                   cwd=repo, CHECKER_SIGNING_KEY=key.read_text())
    assert done.returncode == 1 and "unsigned" not in done.stderr
    assert key.read_text().split("\n")[1] not in done.stdout + done.stderr
    verified = checker("evidence", "verify", "gate.intoto.jsonl", "--key", f"{key}.pub", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--evidence-output", "e.jsonl"], {}, "add --sarif-output"),
    (["--sarif-output", "r.sarif", "--evidence-output", "e.jsonl", "--subject", "app=sha256:xyz"], {},
     "NAME=sha256:<64"),
    (["--sarif-output", "r.sarif", "--evidence-output", "e.jsonl", "--subject", f"sha256:{IMAGE}"], {},
     "NAME=sha256:<64"),
    (["--subject", f"app=sha256:{IMAGE}"], {}, "add --evidence-output"),
    (["--sarif-output", "r.sarif", "--evidence-output", "e.jsonl", "--signing-key", "missing.key"], {},
     "missing.key"),
    (["--sarif-output", "r.sarif", "--evidence-output", "e.jsonl"],
     {"CHECKER_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS10ZXh0\n-----END PRIVATE KEY-----\n"},
     "CHECKER_SIGNING_KEY"),
    (["--sarif-output", "r.sarif", "--evidence-output", "e.jsonl"], {"CHECKER_SIGNING_KEY": "s3cret-not-pem"},
     "CHECKER_SIGNING_KEY"),
])
def test_bad_evidence_options_are_usage_errors_before_any_scan(repo: Path, args: list[str], env: dict[str, str],
                                                              message: str) -> None:
    done = checker("scan", ".", *args, cwd=repo, **env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (repo / "r.sarif").exists()  # refused before the scan
    for secret in ("c2VjcmV0LWtleS10ZXh0", "s3cret-not-pem"):
        assert secret not in done.stdout + done.stderr


def test_a_scan_of_less_than_the_whole_repository_is_no_evidence_for_the_commit(repo: Path, key: Path,
                                                                                tmp_path: Path) -> None:
    done = checker("scan", "deploy", "--sarif-output", "../results.sarif", "--evidence-output",
                   "../gate.intoto.jsonl", "--signing-key", str(key), cwd=repo)
    assert done.returncode == 1, done.stderr
    [decision, _] = statements(tmp_path / "gate.intoto.jsonl")
    assert decision["predicate"]["scope"] == {"paths": ["deploy"], "wholeRepository": False, "files": 1, "rules": 1}
    assert not any("gitCommit" in s["digest"] for s in decision["subject"])
    refused = checker("evidence", "verify", "gate.intoto.jsonl", "--key", f"{key}.pub", "--commit",
                      git(repo, "rev-parse", "HEAD"), "--require-pass", cwd=tmp_path)
    assert refused.returncode == 3 and "the scan covered deploy, not the whole repository" in refused.stdout


@pytest.mark.parametrize("how", ["ignored ruleset", "skip-worktree", "assume-unchanged"])
def test_changes_git_status_does_not_show_still_make_the_tree_dirty(repo: Path, key: Path, tmp_path: Path,
                                                                    how: str) -> None:
    """What decides the gate must be committed: an ignored .checker.yaml, or a file git was told not
    to look at, leaves `git status` clean but is not the commit."""
    if how == "ignored ruleset":
        (repo / ".gitignore").write_text(".checker.yaml\n")
        git(repo, "rm", "-q", "--cached", ".checker.yaml")
        git(repo, "add", ".gitignore")
        git(repo, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-q", "-m", "PAY-42 ignore it")
        (repo / ".checker.yaml").write_text(RULESET.replace("[ORG-K8S-001]", "[ORG-REPO-003]"))
        assert git(repo, "status", "--porcelain") == ""
    else:
        git(repo, "update-index", f"--{how}", "deploy/pod.yaml")
        (repo / "deploy" / "pod.yaml").write_text(POD.replace("docker.io/sidecar", "registry.example.com/sidecar"))
        assert git(repo, "status", "--porcelain") == ""
    scan_with_evidence(repo, key)
    [decision, _] = statements(tmp_path / "gate.intoto.jsonl")
    assert decision["predicate"]["change"]["dirty"] is True
    refused = checker("evidence", "verify", "gate.intoto.jsonl", "--key", f"{key}.pub", "--commit",
                      git(repo, "rev-parse", "HEAD"), cwd=tmp_path)
    assert refused.returncode == 3 and "uncommitted" in refused.stdout


def test_a_threshold_laxer_than_the_locked_one_is_no_pass(repo: Path, key: Path, tmp_path: Path) -> None:
    (repo / ".checker.yaml").unlink()
    git(repo, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-qam", "PAY-42 no ruleset")
    done = scan_with_evidence(repo, key, "--base", "org-gate", "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    verified = checker("evidence", "verify", "gate.intoto.jsonl", "--key", f"{key}.pub", "--ruleset", "org-gate",
                       "--require-pass", cwd=tmp_path)
    assert verified.returncode == 1, verified.stdout
    assert "at fail_on never, laxer than the ruleset's locked fail_on high" in verified.stdout


def test_evidence_from_checker_gate_says_it_was_decided_from_a_sarif(repo: Path, key: Path, tmp_path: Path) -> None:
    assert scan_with_evidence(repo, key).returncode == 1
    assert statements(tmp_path / "gate.intoto.jsonl")[0]["predicate"]["decidedFrom"] == "scan"
    assert checker("gate", "results.sarif", "--evidence-output", "two.jsonl", "--signing-key", str(key),
                   cwd=tmp_path).returncode == 1
    assert statements(tmp_path / "two.jsonl")[0]["predicate"]["decidedFrom"] == "sarif"


@pytest.mark.parametrize("edit", [{"ruleset": "x"}, {"versions": [1]}, {"change": "x"}, {"ruleset": {"layers": 5}},
                                  {"scope": 7}])
def test_a_sarif_whose_record_was_edited_is_refused_cleanly(repo: Path, key: Path, tmp_path: Path,
                                                            edit: dict[str, Any]) -> None:
    assert scan_with_evidence(repo, key).returncode == 1
    doc = json.loads((tmp_path / "results.sarif").read_text())
    doc["runs"][0]["properties"].update(edit)
    (tmp_path / "edited.sarif").write_text(json.dumps(doc))
    done = checker("gate", "edited.sarif", "--evidence-output", "e.jsonl", "--signing-key", str(key), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "edited.sarif" in done.stderr, done.stderr
    assert not (tmp_path / "e.jsonl").exists()


def test_key_text_given_as_a_path_is_never_printed(repo: Path, key: Path) -> None:
    secret = key.read_text()
    for args in (["scan", ".", "--sarif-output", "../r.sarif", "--evidence-output", "../e.jsonl", "--signing-key",
                  secret], ["evidence", "verify", "x.jsonl", "--key", secret]):
        done = checker(*args, cwd=repo)
        assert done.returncode == 2 and "looks like key text" in done.stderr, done.stderr
        assert secret.splitlines()[1] not in done.stdout + done.stderr
