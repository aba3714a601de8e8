"""The pre-commit hooks, through the real pre-commit: it builds a virtualenv, pip-installs this
project into it (with Checkov) and runs the hooks in a temporary git repository.

pre-commit installs from a git commit. `pre-commit try-repo` takes uncommitted changes of
tracked files but not untracked ones, and this checkout is shared and not committed by the
tests, so the hooks are installed from a snapshot: a throwaway git repository holding the
working tree (tracked and untracked, .gitignore honoured). The project repository points at
it from its .pre-commit-config.yaml, with PRE_COMMIT_HOME in a module-scoped folder, so the
~30 s install happens once for every test here (try-repo would reinstall on every call).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

RULESET = """\
apiVersion: checker/v1
kind: Ruleset
metadata: {name: hook-test, version: 1.0.0}
organisation:
  approved_registries: [registry.example.com]
checks:
  include: [ORG-K8S-001, CKV_K8S_16]
  severity: {CKV_K8S_16: high}
gate:
  fail_on: high
"""

BAD = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: docker.io/library/nginx:1.27
          securityContext:
            privileged: true
"""
BAD_IMAGE_LINE = 15

GOOD = BAD.replace("docker.io/library/nginx:1.27", "registry.example.com/web/nginx:1.27").replace(
    "privileged: true", "privileged: false")


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=cwd, env=env, check=check,
                          capture_output=True, text=True)


def _init_repo(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.email", "dev@example.com")
    _git(path, "config", "user.name", "Dev")


def _snapshot(dest: Path) -> str:
    """A git repository holding this checkout's working tree; returns its HEAD commit."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    _init_repo(dest)
    for rel in filter(None, listed):
        source = REPO_ROOT / rel
        if source.is_file():  # tracked files deleted in the working tree are skipped
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "snapshot of the working tree")
    return _git(dest, "rev-parse", "HEAD").stdout.strip()


class HookRepo:
    def __init__(self, path: Path, env: dict[str, str], install_seconds: float) -> None:
        self.path = path
        self.env = env
        self.install_seconds = install_seconds

    def pre_commit(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=self.path, env=self.env,
                              capture_output=True, text=True, timeout=600)

    def write(self, rel: str, text: str) -> None:
        (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.path / rel).write_text(text)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _git(self.path, *args, env=self.env, check=check)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> HookRepo:
    base = tmp_path_factory.mktemp("precommit")
    commit = _snapshot(base / "checker-snapshot")
    project = base / "project"
    _init_repo(project)
    (project / ".checker.yaml").write_text(RULESET)
    config = {"repos": [{"repo": str(base / "checker-snapshot"), "rev": commit,
                         "hooks": [{"id": "checker"}, {"id": "checker-repo"}]}]}
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(base / "pre-commit-home"),
        "PRE_COMMIT_COLOR": "never",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PIP_PROGRESS_BAR": "off",
        "PIP_PREFER_BINARY": "1",  # wheels only where they exist: no sdist builds in the hook's virtualenv
        "NO_COLOR": "1",
    }
    env.pop("PRE_COMMIT", None)
    repo = HookRepo(project, env, 0.0)
    repo.git("add", ".checker.yaml", ".pre-commit-config.yaml")
    repo.git("commit", "-q", "-m", "configure checker")
    started = time.monotonic()
    installed = repo.pre_commit("install-hooks")
    repo.install_seconds = time.monotonic() - started
    assert installed.returncode == 0, installed.stdout + installed.stderr
    print(f"\npre-commit install-hooks (virtualenv + pip install of checker): {repo.install_seconds:.1f} s")
    return repo


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def test_manifest_is_valid_for_pre_commit() -> None:
    done = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest",
                           str(REPO_ROOT / ".pre-commit-hooks.yaml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = {h["id"]: h for h in yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["checker"]["entry"] == "checker scan" and hooks["checker"]["require_serial"] is True
    assert hooks["checker-repo"]["entry"] == "checker scan ."
    assert hooks["checker-repo"]["pass_filenames"] is False and hooks["checker-repo"]["always_run"] is True


@pytest.mark.parametrize("path, selected", [
    ("deploy/app.yaml", True), ("deploy/app.yml", True), ("infra/main.tf", True), ("cfn/stack.json", True),
    ("Dockerfile", True), ("app/Dockerfile.prod", True), ("app/api.dockerfile", True), ("Containerfile", True),
    (".checker.yaml", False), (".pre-commit-config.yaml", False), ("src/app.py", False), ("README.md", False),
])
def test_hook_selects_the_kinds_checker_scans(path: str, selected: bool) -> None:
    hook = next(h for h in yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text()) if h["id"] == "checker")
    matched = bool(re.search(hook["files"], path)) and not re.search(hook["exclude"], path)
    assert matched is selected


def test_staged_bad_manifest_fails_with_file_and_line(hook_repo: HookRepo) -> None:
    hook_repo.write("deploy/bad.yaml", BAD)
    hook_repo.git("add", "deploy/bad.yaml")
    done = hook_repo.pre_commit("run", "checker", "--files", "deploy/bad.yaml")
    out = _output(done)
    assert done.returncode == 1, out
    assert re.search(r"checker \(compliance gate, staged files\)\.+Failed", out), out
    assert "deploy/bad.yaml" in out
    # the finding names the exact line of the unapproved image
    assert re.search(rf"^\s*{BAD_IMAGE_LINE}\s+HIGH\s+ORG-K8S-001\b", out, re.MULTILINE), out
    assert "CKV_K8S_16" in out
    hook_repo.git("rm", "-q", "--cached", "deploy/bad.yaml")
    (hook_repo.path / "deploy/bad.yaml").unlink()


def test_compliant_manifest_passes(hook_repo: HookRepo) -> None:
    hook_repo.write("deploy/good.yaml", GOOD)
    hook_repo.git("add", "deploy/good.yaml")
    done = hook_repo.pre_commit("run", "checker", "--files", "deploy/good.yaml")
    assert done.returncode == 0, _output(done)
    assert re.search(r"checker \(compliance gate, staged files\)\.+Passed", _output(done))


def test_git_commit_is_blocked_by_the_installed_hook(hook_repo: HookRepo) -> None:
    installed = hook_repo.pre_commit("install", "--hook-type", "pre-commit")
    assert installed.returncode == 0, _output(installed)
    try:
        hook_repo.write("deploy/good.yaml", GOOD)
        hook_repo.git("add", "deploy/good.yaml")
        ok = hook_repo.git("commit", "-m", "compliant deployment", check=False)
        assert ok.returncode == 0, _output(ok)

        hook_repo.write("deploy/bad.yaml", BAD)
        hook_repo.git("add", "deploy/bad.yaml")
        blocked = hook_repo.git("commit", "-m", "privileged deployment", check=False)
        out = _output(blocked)
        assert blocked.returncode != 0, out
        assert "deploy/bad.yaml" in out
        assert re.search(rf"^\s*{BAD_IMAGE_LINE}\s+HIGH\s+ORG-K8S-001\b", out, re.MULTILINE)
        assert "privileged deployment" not in hook_repo.git("log", "--format=%s").stdout
    finally:
        hook_repo.pre_commit("uninstall")
        hook_repo.git("reset", "-q", "HEAD", "--", "deploy/bad.yaml", check=False)
        (hook_repo.path / "deploy/bad.yaml").unlink(missing_ok=True)


def _run_repo_hook(repo: HookRepo) -> subprocess.CompletedProcess[str]:
    return repo.pre_commit("run", "--hook-stage", "manual", "checker-repo")


def test_repo_hook_scans_the_whole_repository(hook_repo: HookRepo) -> None:
    hook_repo.write("deploy/good.yaml", GOOD)
    hook_repo.git("add", "deploy/good.yaml")
    passed = _run_repo_hook(hook_repo)
    assert passed.returncode == 0, _output(passed)
    assert re.search(r"checker \(compliance gate, whole repository\)\.+Passed", _output(passed))

    hook_repo.write("legacy/old.yaml", BAD)  # not staged, not named: the whole-repository scan still sees it
    try:
        failed = _run_repo_hook(hook_repo)
        out = _output(failed)
        assert failed.returncode == 1, out
        assert "legacy/old.yaml" in out
    finally:
        (hook_repo.path / "legacy/old.yaml").unlink()
