"""B. Nothing outside the root is read, and nothing inside it is skipped silently.

Symbolic links that leave the scanned folder (files, folders, loops, dangling ones) are never
reported as if their targets were inside, by our discovery nor by Checkov's own walk; a link
that could hide a config file fails the scan closed (exit 3) naming it. A Kustomization whose
resources leave the root is named. In a git checkout every tracked file is scanned whatever
.gitignore says.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hostile import (
    BAD,
    CLEAN,
    ORG_ONLY,
    VIOLATION,
    WITH_CHECKOV,
    findings_json,
    put,
    rules_file,
    run_cli,
)

WITHIN = 90.0
OUTSIDE_NAME = "outside-secret"  # the resource name only the target outside the root holds
OUTSIDE = VIOLATION.format(name=OUTSIDE_NAME, image="docker.io/evil:1")


def _layout(tmp_path: Path) -> tuple[Path, Path]:
    """tmp/outside (a violating manifest and folder) and tmp/repo with a clean manifest."""
    outside = tmp_path / "outside"
    put(outside, "secret.yaml", OUTSIDE)
    put(outside, "dir/more.yaml", OUTSIDE)
    repo = tmp_path / "repo"
    put(repo, "k8s/real.yaml", CLEAN)
    return repo, outside


def _no_outside_content(run_stdout: str, findings: list[dict[str, object]], link: str) -> None:
    assert OUTSIDE_NAME not in run_stdout, "content from outside the root was reported"
    assert not [f for f in findings if str(f.get("path", "")).startswith(link)], \
        "a finding was reported at a path that is a link leaving the root"


# (id, link path in the repo, target relative to tmp_path; None: dangling)
LINKS = [
    ("file-link-to-outside-manifest", "k8s/link.yaml", "outside/secret.yaml"),
    ("folder-link-to-outside-folder", "k8s/ext", "outside/dir"),
    ("file-link-to-absolute-outside-path", "k8s/abs.yaml", "ABS:outside/secret.yaml"),
    ("dangling-file-link", "k8s/gone.yaml", "outside/nothing-here.yaml"),
    ("link-loop", "k8s/loop.yaml", "LOOP"),
]


@pytest.mark.parametrize(("link", "target"), [c[1:] for c in LINKS], ids=[c[0] for c in LINKS])
def test_a_link_leaving_the_root_is_named_and_never_read(tmp_path, link, target):
    """With Checkov's runners too: its own walk must not follow the link either."""
    repo, _ = _layout(tmp_path)
    path = repo / link
    if target == "LOOP":
        path.symlink_to(path.name)
    elif target.startswith("ABS:"):
        path.symlink_to(tmp_path / target[4:])
    else:
        path.symlink_to(Path("../" * link.count("/") + "../" + target))
    sarif = tmp_path / "out.sarif"
    run = run_cli("scan", ".", "-r", rules_file(tmp_path, WITH_CHECKOV), "--format", "json", "--sarif-output", sarif,
                  cwd=repo)
    run.expect({3}, within=WITHIN, sarif=sarif, names=(link,))
    _no_outside_content(run.stdout, findings_json(run), link)


INSIDE = [("file-link-to-a-manifest", "k8s/alias.yaml", "bad.yaml", WITH_CHECKOV),
          ("folder-link-to-the-root", "k8s/up", "..", ORG_ONLY), ("folder-link-to-itself", "k8s/again", ".", ORG_ONLY)]


@pytest.mark.parametrize(("link", "target", "rules"), [c[1:] for c in INSIDE], ids=[c[0] for c in INSIDE])
def test_a_link_inside_the_root_is_named_and_not_a_second_copy(tmp_path, link, target, rules):
    """Its target is scanned anyway, so a note may name it; it is never walked or reported twice."""
    repo, _ = _layout(tmp_path)
    put(repo, "k8s/bad.yaml", BAD)
    (repo / link).symlink_to(target)
    run = run_cli("scan", ".", "-r", rules_file(tmp_path, rules), "--format", "json", cwd=repo)
    run.expect({1, 3}, within=WITHIN, names=(link,))
    assert [f["path"] for f in findings_json(run) if f["rule"] == "ORG-K8S-001"] == ["k8s/bad.yaml"]


def test_a_link_named_on_the_command_line_is_not_followed_out(tmp_path):
    repo, _ = _layout(tmp_path)
    (repo / "k8s" / "link.yaml").symlink_to(tmp_path / "outside" / "secret.yaml")
    run = run_cli("scan", "k8s/link.yaml", "-r", rules_file(tmp_path), "--format", "json", cwd=repo)
    run.expect({2, 3}, within=WITHIN, names=("link.yaml",))
    _no_outside_content(run.stdout, findings_json(run), "k8s/link.yaml")


def test_a_gitignore_linking_outside_cannot_hide_a_violation(tmp_path):
    repo, outside = _layout(tmp_path)
    put(repo, "k8s/bad.yaml", BAD)
    put(outside, "ignore-everything", "*\n")
    (repo / ".gitignore").symlink_to(outside / "ignore-everything")
    run_cli("scan", ".", "-r", rules_file(tmp_path), cwd=repo).expect({1, 3}, within=WITHIN)


KUSTOMIZE_OUT = [("resources-relative-folder", "resources", "../../outside", WITH_CHECKOV),
                 ("bases-absolute-folder", "bases", "/etc", ORG_ONLY),
                 ("components-relative-file", "components", "../../outside/secret.yaml", ORG_ONLY)]


@pytest.mark.parametrize(("key", "target", "rules"), [c[1:] for c in KUSTOMIZE_OUT], ids=[c[0] for c in KUSTOMIZE_OUT])
def test_a_kustomization_reaching_outside_the_root_is_named(tmp_path, key, target, rules):
    repo, _ = _layout(tmp_path)
    put(repo, "deploy/kustomization.yaml",
        f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n{key}:\n  - {target}\n")
    run = run_cli("scan", ".", "-r", rules_file(tmp_path, rules), cwd=repo)
    run.expect({3}, within=WITHIN, names=("deploy/kustomization.yaml",))
    assert OUTSIDE_NAME not in run.stdout


def test_a_kustomization_with_a_remote_base_fails_closed(tmp_path):
    repo, _ = _layout(tmp_path)
    put(repo, "deploy/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        "  - https://github.com/example/never-fetched//deploy?ref=v1\n")
    run_cli("scan", ".", "-r", rules_file(tmp_path, WITH_CHECKOV), cwd=repo).expect(
        {3}, within=WITHIN, names=("deploy/kustomization.yaml",))


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
                   cwd=repo, check=True, capture_output=True, timeout=60)


def _git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    put(repo, "k8s/real.yaml", CLEAN)
    put(repo, ".gitignore", "k8s/generated/\n*.local.yaml\n")
    _git(repo, "init", "-q")
    return repo


@pytest.mark.parametrize("rel", ["k8s/generated/web.yaml", "k8s/web.local.yaml"],
                         ids=["ignored-folder", "ignored-name"])
def test_a_tracked_file_matched_by_gitignore_is_scanned(tmp_path, rel):
    repo = _git_repo(tmp_path)
    put(repo, rel, BAD)
    _git(repo, "add", "-A")
    _git(repo, "add", "-f", rel)
    _git(repo, "commit", "-q", "-m", "x")
    sarif = tmp_path / "out.sarif"
    run = run_cli("scan", ".", "-r", rules_file(tmp_path), "--format", "json", "--sarif-output", sarif, cwd=repo)
    run.expect({1}, within=WITHIN, sarif=sarif)
    assert [(f["rule"], f["path"]) for f in findings_json(run)] == [("ORG-K8S-001", rel)]


def test_an_untracked_ignored_file_is_not_scanned(tmp_path):
    repo = _git_repo(tmp_path)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "x")
    put(repo, "k8s/generated/web.yaml", BAD)  # untracked and ignored: a build output
    run = run_cli("scan", ".", "-r", rules_file(tmp_path), "--format", "json", cwd=repo)
    run.expect({0}, within=WITHIN)
    assert json.loads(run.stdout)["findings"] == []
