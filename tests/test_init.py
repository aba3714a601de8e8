"""`checker init` through the real CLI: a fresh folder, an existing pre-commit config kept,
refusal to overwrite without --force, and a generated ruleset that validates."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from checker.cli import main

EXISTING_CONFIG = """\
# team hooks: keep this comment
default_stages: [pre-commit]
repos:
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v5.0.0  # pinned
    hooks:
      - id: trailing-whitespace
      - id: check-yaml
        args: [--allow-multiple-documents]
  - repo: local
    hooks:
      - id: unit-tests
        name: unit tests
        entry: make test
        language: system
        pass_filenames: false
"""


def _init(folder: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["init", "--path", str(folder), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def _checker_hooks(config: dict) -> list[str]:
    return [h["id"] for r in config["repos"] if r["repo"].endswith("/checker") for h in r["hooks"]]


def _validate(ruleset: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["ruleset", "validate", str(ruleset)])
    return result.exit_code, result.output


def test_fresh_folder(tmp_path: Path) -> None:
    repo = tmp_path / "payments api"
    repo.mkdir()
    code, out = _init(repo)
    assert code == 0, out
    ruleset = yaml.safe_load((repo / ".checker.yaml").read_text())
    assert ruleset["apiVersion"] == "checker/v1" and ruleset["kind"] == "Ruleset"
    assert ruleset["metadata"]["name"] == "payments-api"
    assert ruleset["extends"] == ["org-baseline"]
    text = (repo / ".checker.yaml").read_text()
    assert "# waivers:" in text and "# ignore:" in text and "approved_by:" in text
    config = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())
    assert _checker_hooks(config) == ["checker", "checker-repo"]
    assert "ci/github-actions.yml" in out and "ci/gitlab-ci.yml" in out and "checker scan ." in out
    assert str(repo / ".checker.yaml") in out


def test_generated_ruleset_validates(tmp_path: Path) -> None:
    assert _init(tmp_path)[0] == 0
    code, out = _validate(tmp_path / ".checker.yaml")
    assert code == 0, out
    assert "valid:" in out


def test_commented_examples_are_valid_when_uncommented(tmp_path: Path) -> None:
    assert _init(tmp_path)[0] == 0
    text = (tmp_path / ".checker.yaml").read_text()
    example = re.compile(r"^(\s*)# ( *- | *[a-z_]+:)", re.MULTILINE)
    uncommented = example.sub(lambda m: m.group(1) + m.group(2), text)
    assert "\nwaivers:" in uncommented and "\ngate:" in uncommented and "  owner:" in uncommented
    (tmp_path / ".checker.yaml").write_text(uncommented)
    code, out = _validate(tmp_path / ".checker.yaml")
    assert code == 0, out + uncommented


def test_existing_pre_commit_config_is_kept(tmp_path: Path) -> None:
    config_path = tmp_path / ".pre-commit-config.yaml"
    config_path.write_text(EXISTING_CONFIG)
    before = yaml.safe_load(EXISTING_CONFIG)
    code, out = _init(tmp_path)
    assert code == 0, out
    text = config_path.read_text()
    after = yaml.safe_load(text)
    assert after["repos"][:2] == before["repos"] and after["default_stages"] == ["pre-commit"]
    assert _checker_hooks(after) == ["checker", "checker-repo"]
    assert text.startswith(EXISTING_CONFIG.rstrip("\n"))  # appended: comments and layout kept
    assert "# team hooks: keep this comment" in text and "# pinned" in text
    done = subprocess.run([sys.executable, "-m", "pre_commit", "validate-config", str(config_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_repos_followed_by_other_keys(tmp_path: Path) -> None:
    config_path = tmp_path / ".pre-commit-config.yaml"
    config_path.write_text("repos:\n- repo: local\n  hooks:\n  - id: x\n    name: x\n    entry: x\n"
                           "    language: system\n# trailing note\nci:\n  autofix_prs: false\n")
    assert _init(tmp_path)[0] == 0
    text = config_path.read_text()
    after = yaml.safe_load(text)
    assert [r["repo"] for r in after["repos"]] == ["local", "https://github.com/paved-road/checker"]
    assert after["ci"] == {"autofix_prs": False} and "# trailing note" in text


def test_hooks_are_not_added_twice(tmp_path: Path) -> None:
    assert _init(tmp_path)[0] == 0
    first = (tmp_path / ".pre-commit-config.yaml").read_text()
    code, out = _init(tmp_path, "--force")
    assert code == 0, out
    assert (tmp_path / ".pre-commit-config.yaml").read_text() == first
    assert "already has" in out


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    mine = "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: mine}\n"
    (tmp_path / ".checker.yaml").write_text(mine)
    code, out = _init(tmp_path)
    assert code == 2
    assert ".checker.yaml" in out and "--force" in out and "already exists" in out
    assert (tmp_path / ".checker.yaml").read_text() == mine
    assert not (tmp_path / ".pre-commit-config.yaml").exists()  # nothing half-done

    code, out = _init(tmp_path, "--force")
    assert code == 0, out
    assert "extends:" in (tmp_path / ".checker.yaml").read_text()


@pytest.mark.parametrize("content", ["repos: [", "- just\n- a list\n"])
def test_unusable_pre_commit_config_is_a_config_error(tmp_path: Path, content: str) -> None:
    (tmp_path / ".pre-commit-config.yaml").write_text(content)
    code, out = _init(tmp_path)
    assert code == 2, out
    assert ".pre-commit-config.yaml" in out
    assert (tmp_path / ".pre-commit-config.yaml").read_text() == content


def test_default_is_the_current_git_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    sub = tmp_path / "deploy"
    sub.mkdir()
    monkeypatch.chdir(sub)
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".checker.yaml").is_file() and not (sub / ".checker.yaml").exists()


def test_scan_after_init_has_no_findings_about_the_files_init_wrote(tmp_path: Path) -> None:
    """What init writes satisfies the organisation's own rules about it (e.g. the pre-commit hook rule)."""
    assert _init(tmp_path)[0] == 0
    out = tmp_path / "scan.json"
    result = CliRunner().invoke(main, ["scan", str(tmp_path), "--fail-on", "never", "--json-output", str(out)])
    assert result.exit_code == 0, result.output
    findings = json.loads(out.read_text())["findings"]
    about = [f for f in findings if f["path"] in (".pre-commit-config.yaml", ".checker.yaml")]
    assert about == [], about
