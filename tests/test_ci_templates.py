"""The CI templates in ci/: valid YAML, the shape the paved road promises, and compliant with the
organisation's own rules, checked with the real CLI where users put them (.github/workflows/,
.gitlab-ci.yml).

The ORG-* assertions run over whatever ORG-* rules the bundled org-baseline selects, so they
stay meaningful as the policy library grows.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from checker.cli import main
from checker.discover import discover
from checker.model import Kind, Severity

REPO_ROOT = Path(__file__).resolve().parents[1]
GITHUB = REPO_ROOT / "ci" / "github-actions.yml"
GITLAB = REPO_ROOT / "ci" / "gitlab-ci.yml"
# Where users put each template, and the kind checker must classify it as there.
PLACES = {GITHUB: (".github/workflows/compliance.yml", Kind.GITHUB_ACTIONS),
          GITLAB: (".gitlab-ci.yml", Kind.GITLAB_CI)}
SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
DIGEST_PIN = re.compile(r"@sha256:[0-9a-f]{64}$")


def _load(path: Path) -> Any:
    # BaseLoader: GitHub's `on:` stays a string key (YAML 1.1 would read it as True)
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)


def _repo_with_templates(tmp_path: Path, texts: dict[Path, str] | None = None) -> Path:
    repo = tmp_path / "repo"
    for template, (place, _) in PLACES.items():
        target = repo / place
        target.parent.mkdir(parents=True, exist_ok=True)
        if texts and template in texts:
            target.write_text(texts[template])
        else:
            shutil.copyfile(template, target)
    return repo


def _scan(repo: Path, tmp_path: Path) -> tuple[int, list[dict[str, Any]], str]:
    out = tmp_path / "scan.json"
    result = CliRunner().invoke(main, ["scan", str(repo), "-r", "org-baseline", "--fail-on", "never",
                                       "--json-output", str(out)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert out.is_file(), result.output
    return result.exit_code, json.loads(out.read_text())["findings"], result.output


def _org_rules() -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["rules", "list", "-r", "org-baseline", "--format", "json"])
    assert result.exit_code == 0, result.output
    return [r for r in json.loads(result.output) if r["id"].startswith("ORG-")]


def test_templates_are_yaml_mappings() -> None:
    for template in (GITHUB, GITLAB):
        assert isinstance(_load(template), dict), template


def test_github_template_shape() -> None:
    wf = _load(GITHUB)
    assert set(wf["on"]) >= {"workflow_call", "pull_request", "push"}
    assert wf["permissions"] == {"contents": "read"}
    gate, deploy = wf["jobs"]["compliance-gate"], wf["jobs"]["deploy"]
    assert gate["permissions"] == {"contents": "read", "security-events": "write", "actions": "read"}
    uses = [s["uses"] for job in wf["jobs"].values() for s in job["steps"] if "uses" in s]
    assert uses and all(SHA_PIN.match(u) for u in uses), uses
    runs = "\n".join(s.get("run", "") for s in gate["steps"])
    assert re.search(r"checker scan \. .*--sarif-output results\.sarif", runs.replace("\\\n", " "))
    for flag in ("--code-scanning-output code-scanning.sarif", "--markdown-output summary.md",
                 "--junit-output junit.xml"):
        assert flag in runs
    assert 'cat summary.md >> "$GITHUB_STEP_SUMMARY"' in runs
    upload = next(s for s in gate["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["sarif_file"] == "code-scanning.sarif" and upload["with"]["category"]
    artifact = next(s for s in gate["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert "results.sarif" in artifact["with"]["path"] and artifact["if"] == "always()"
    # the job fails on the gate's exit code, after the evidence is kept
    assert "exit" in gate["steps"][-1]["run"] and "steps.scan.outputs.exit-code" in gate["steps"][-1]["env"]["GATE_EXIT_CODE"]
    assert deploy["needs"] == "compliance-gate" and deploy["environment"] == "production"
    assert deploy["permissions"] == {"contents": "read"}


def test_gitlab_template_shape() -> None:
    ci = _load(GITLAB)
    gate, deploy = ci["compliance-gate"], ci["deploy-production"]
    assert "checker scan ." in " ".join(gate["script"])
    assert gate["artifacts"]["reports"]["junit"] == "junit.xml"
    assert "results.sarif" in gate["artifacts"]["paths"] and gate["artifacts"]["when"] == "always"
    assert deploy["needs"] == ["compliance-gate"]
    assert deploy["environment"]["name"] == "production"
    assert deploy.get("when") == "manual" or all(r.get("when") == "manual" for r in deploy["rules"])
    for job in (gate, deploy):
        assert DIGEST_PIN.search(job["image"]), job["image"]


def test_templates_are_classified_where_users_put_them(tmp_path: Path) -> None:
    repo = _repo_with_templates(tmp_path)
    found = {s.path: s.kind for s in discover(repo, [repo]).sources}
    assert found == {place: kind for place, kind in PLACES.values()}
    _, _, output = _scan(repo, tmp_path)
    assert "2 file(s) checked" in output


def test_templates_have_no_org_findings_at_medium_or_above(tmp_path: Path) -> None:
    org = _org_rules()
    kinds = {kind for rule in org if not rule["inactive_reason"] for kind in rule["kinds"]}
    assert {Kind.GITHUB_ACTIONS.value, Kind.GITLAB_CI.value} <= kinds, "no active ORG-* rule checks CI files"
    repo = _repo_with_templates(tmp_path)
    _, findings, _ = _scan(repo, tmp_path)
    places = {place for place, _ in PLACES.values()}
    bad = [f for f in findings
           if f["path"] in places and f["rule"].startswith("ORG-")
           and Severity(f["severity"]).rank >= Severity.MEDIUM.rank]
    assert bad == [], "\n".join(f"{f['path']}:{f['start_line']}: {f['rule']} {f['message']}" for f in bad)


@pytest.mark.parametrize("template, mutate", [
    (GITHUB, lambda text: re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v4", text, count=1)),
    (GITLAB, lambda text: text.replace("registry.example.com/mirror/python", "docker.io/library/python", 1)),
])
def test_the_scan_really_checks_the_templates(tmp_path: Path, template: Path, mutate: Any) -> None:
    """Control: a weakened copy of each template does draw an ORG-* finding at medium or above."""
    text = mutate(template.read_text())
    assert text != template.read_text()
    repo = _repo_with_templates(tmp_path, {template: text})
    _, findings, _ = _scan(repo, tmp_path)
    place = PLACES[template][0]
    assert any(f["path"] == place and f["rule"].startswith("ORG-")
               and Severity(f["severity"]).rank >= Severity.MEDIUM.rank for f in findings), findings
