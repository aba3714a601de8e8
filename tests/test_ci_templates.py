"""The CI templates in ci/: valid YAML, the shape the paved road promises, and compliant with the
organisation's own rules, checked with the real CLI where users put them (.github/workflows/,
.gitlab-ci.yml).

The ORG-* assertions run over whatever ORG-* rules the bundled org-baseline selects, so they
stay meaningful as the policy library grows. The evidence tests run each template's own shell
text with bash, with the variables each CI would set, in a real git repository with real keys:
a typo in a template's command line fails them.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from checker.cache import LAYOUT, Cache
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
    assert "exit" in gate["steps"][-1]["run"]
    assert "steps.scan.outputs.exit-code" in gate["steps"][-1]["env"]["GATE_EXIT_CODE"]
    assert deploy["needs"] == "compliance-gate" and deploy["environment"] == "production"
    assert deploy["permissions"] == {"contents": "read"}


def test_gitlab_template_shape() -> None:
    ci = _load(GITLAB)
    gate, deploy = ci["compliance-gate"], ci["deploy-production"]
    assert "checker scan ." in " ".join(gate["script"])
    assert gate["artifacts"]["reports"]["junit"] == "junit.xml"
    assert "results.sarif" in gate["artifacts"]["paths"] and gate["artifacts"]["when"] == "always"
    assert deploy["needs"] == [{"job": "compliance-gate", "artifacts": "true"}]
    assert deploy["environment"]["name"] == "production"
    assert deploy.get("when") == "manual" or all(r.get("when") == "manual" for r in deploy["rules"])
    for job in (gate, deploy):
        assert DIGEST_PIN.search(job["image"]), job["image"]


def test_templates_are_classified_where_users_put_them(tmp_path: Path) -> None:
    repo = _repo_with_templates(tmp_path)
    found = {s.path: s.kind for s in discover(repo, [repo]).sources}
    assert found == dict(PLACES.values())
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


# --- the evidence: written by the gate, kept, verified before the deploy -------------------------

EVIDENCE = "gate.intoto.jsonl"
VERIFY = re.compile(r"checker evidence verify gate\.intoto\.jsonl\b(?P<args>.*)")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)


def _joined(script: str) -> str:
    """A shell text with its line continuations joined, so a command reads as one line."""
    return script.replace("\\\n", " ")


def _step(job: dict[str, Any], name: str) -> tuple[int, dict[str, Any]]:
    return next((i, s) for i, s in enumerate(job["steps"]) if s.get("name") == name)


def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(where, text) of every key and value of a YAML tree."""
    if isinstance(node, dict):
        return [pair for key, value in node.items()
                for pair in [(f"{path}.{key}", str(key)), *_strings(value, f"{path}.{key}")]]
    if isinstance(node, list):
        return [pair for i, value in enumerate(node) for pair in _strings(value, f"{path}[{i}]")]
    return [(path, str(node))]


def _assert_verify_args(args: str, commit: str) -> None:
    assert re.search(r'(?:^|\s)"\$@"(?:\s|$)', args) or "--key" in args, args
    assert "--sarif results.sarif" in args, args
    assert f'--commit "{commit}"' in args, args
    assert re.search(r'--ruleset "\$\w+"', args), args
    assert "--require-pass" in args, args


def test_github_gate_writes_signed_evidence_and_the_deploy_verifies_it_first() -> None:
    wf = _load(GITHUB)
    gate, deploy = wf["jobs"]["compliance-gate"], wf["jobs"]["deploy"]
    # no ${{ }} inside any script: every value reaches the shell through env (template injection)
    for job in wf["jobs"].values():
        for step in job["steps"]:
            assert not EXPRESSION.search(step.get("run", "")), step
    _, scan = _step(gate, "Scan")
    command = _joined(scan["run"])
    assert re.search(r"checker scan \. .*--sarif-output results\.sarif .*--evidence-output gate\.intoto\.jsonl",
                     command), command
    assert '${GATE_ENVIRONMENT:+--environment "$GATE_ENVIRONMENT"}' in command
    assert "production" in scan["env"]["GATE_ENVIRONMENT"] and "refs/heads/main" in scan["env"]["GATE_ENVIRONMENT"]
    # the signing key: the secret, in the Scan step's env only, never on a command line or printed
    assert scan["env"]["CHECKER_SIGNING_KEY"] == "${{ secrets.CHECKER_SIGNING_KEY }}"
    scan_at = gate["steps"].index(scan)
    holders = {where for where, text in _strings(wf) if "CHECKER_SIGNING_KEY" in text}
    assert holders == {".on.workflow_call.secrets.CHECKER_SIGNING_KEY",  # the reusable workflow's input
                       f".jobs.compliance-gate.steps[{scan_at}].env.CHECKER_SIGNING_KEY"}, holders
    assert set(wf["on"]["workflow_call"]["secrets"]) == {"CHECKER_SIGNING_KEY", "CHECKER_LEDGER", "CHECKER_CACHE_KEY"}
    assert "--signing-key" not in GITHUB.read_text()
    assert not re.search(r"^\s*(echo|printf|cat)\b.*SIGNING", scan["run"], re.MULTILINE)
    # kept with the SARIF, under the name the deploy asks for
    artifact = next(s for s in gate["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    kept = artifact["with"]["path"].split()
    assert {"results.sarif", EVIDENCE} <= set(kept), kept
    assert gate["outputs"]["evidence-artifact"] == artifact["with"]["name"]
    # the deploy: get the artifact, install checker as the gate does, verify, and only then deploy
    get, download = next((i, s) for i, s in enumerate(deploy["steps"])
                         if s.get("uses", "").startswith("actions/download-artifact@"))
    assert SHA_PIN.match(download["uses"]), download["uses"]
    assert download["with"]["name"] == "${{ needs.compliance-gate.outputs.evidence-artifact }}"
    assert "path" not in download["with"], "the verify step reads the files from the workspace"
    assert _step(deploy, "Install checker")[1] == _step(gate, "Install checker")[1]
    verify_at, verify = _step(deploy, "Verify the gate's evidence")
    deploy_at, _ = _step(deploy, "Deploy")
    assert get < verify_at < deploy_at == len(deploy["steps"]) - 1
    match = VERIFY.search(_joined(verify["run"]))
    assert match, verify["run"]
    _assert_verify_args(match["args"], "$GITHUB_SHA")
    assert verify["env"]["GATE_EVIDENCE_PUBLIC_KEY"] == "${{ vars.GATE_EVIDENCE_PUBLIC_KEY }}"
    assert verify["env"]["BASE"] == scan["env"]["BASE"]
    assert not any(name.startswith("CHECKER_") for name in verify["env"]), "checker refuses CHECKER_* it does not read"
    # downloading this run's own artifact needs no permission beyond reading the code
    assert deploy["permissions"] == {"contents": "read"}


def test_gitlab_gate_writes_signed_evidence_and_the_deploy_verifies_it_first() -> None:
    ci = _load(GITLAB)
    gate, deploy = ci["compliance-gate"], ci["deploy-production"]
    command = " ".join(gate["script"])
    assert re.search(r"checker scan \. .*--sarif-output results\.sarif .*--evidence-output gate\.intoto\.jsonl",
                     command), command
    assert '${GATE_ENVIRONMENT:+--environment "$GATE_ENVIRONMENT"}' in command
    default_branch = next(r for r in gate["rules"] if r["if"] == "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH")
    assert default_branch["variables"] == {"GATE_ENVIRONMENT": "production"}
    assert ci["variables"]["GATE_ENVIRONMENT"] == ""
    assert {"results.sarif", EVIDENCE} <= set(gate["artifacts"]["paths"])
    # the signing key comes only from the CI/CD variable: never defined, passed or printed here
    assert "CHECKER_SIGNING_KEY" not in ci["variables"] and "--signing-key" not in GITLAB.read_text()
    for job in (gate, deploy):
        assert "CHECKER_SIGNING_KEY" not in (job.get("variables") or {})
        for line in "\n".join(job["script"]).splitlines():
            assert not re.match(r"\s*(echo|printf|cat)\b.*CHECKER_SIGNING_KEY", line), line
    # the deploy installs checker as the gate does, verifies, and only then deploys
    assert deploy["script"][0] == gate["script"][0] == 'python -m pip install --quiet "$GATE_CHECKER_SPEC"'
    verify_at, match = next((i, m) for i, s in enumerate(deploy["script"]) if (m := VERIFY.search(_joined(s))))
    _assert_verify_args(match["args"], "$CI_COMMIT_SHA")
    assert "GATE_EVIDENCE_PUBLIC_KEY" in deploy["script"][verify_at]
    assert deploy["script"][-1].startswith("./deploy.sh") and verify_at < len(deploy["script"]) - 1


# --- the result cache: restored, saved, and trusted only when signed -----------------------------

CACHE_DIR = ".checker-cache"
CACHE_STEP = re.compile(r"^\s*uses: actions/cache/(restore|save)@[0-9a-f]{40}  # v\d+\.\d+\.\d+$", re.MULTILINE)


def test_github_gate_restores_and_saves_the_result_cache_and_signs_it() -> None:
    wf = _load(GITHUB)
    gate = wf["jobs"]["compliance-gate"]
    restore_at, restore = next((i, s) for i, s in enumerate(gate["steps"])
                               if s.get("uses", "").startswith("actions/cache/restore@"))
    save_at, save = next((i, s) for i, s in enumerate(gate["steps"])
                         if s.get("uses", "").startswith("actions/cache/save@"))
    scan_at, scan = _step(gate, "Scan")
    gate_at, _ = _step(gate, "Gate")
    assert restore_at < scan_at < save_at < gate_at
    # one release of actions/cache, pinned by commit, its version in the comment (for Dependabot)
    assert [m[1] for m in CACHE_STEP.finditer(GITHUB.read_text())] == ["restore", "save"]
    assert restore["uses"].partition("@")[2] == save["uses"].partition("@")[2]
    # per OS and commit; else the newest of the same OS; saved under the key it restored, once
    key = restore["with"]["key"]
    assert save["with"]["key"] == key and "${{ runner.os }}" in key and key.endswith("${{ github.sha }}")
    assert restore["with"]["restore-keys"].strip() == key.removesuffix("${{ github.sha }}")
    assert restore["with"]["path"] == save["with"]["path"] == CACHE_DIR
    assert "always()" in save["if"] and "steps.scan.outcome == 'success'" in save["if"]  # a failed gate's too
    assert f"steps.{restore['id']}.outputs.cache-hit != 'true'" in save["if"]
    assert f"--cache-dir {CACHE_DIR}" in _joined(scan["run"])
    # the key that signs it: the secret, in the Scan step's env only
    assert scan["env"]["CHECKER_CACHE_KEY"] == "${{ secrets.CHECKER_CACHE_KEY }}"
    holders = {where for where, text in _strings(wf) if "CHECKER_CACHE_KEY" in text}
    assert holders == {".on.workflow_call.secrets.CHECKER_CACHE_KEY",
                       f".jobs.compliance-gate.steps[{scan_at}].env.CHECKER_CACHE_KEY"}, holders


def test_gitlab_gate_caches_results_per_branch_and_signs_them() -> None:
    ci = _load(GITLAB)
    gate = ci["compliance-gate"]
    cache = gate["cache"]
    assert cache["paths"] == [f"{CACHE_DIR}/"] and cache["when"] == "always"
    assert "$CI_COMMIT_REF_SLUG" in cache["key"]
    assert cache["fallback_keys"] == [cache["key"].replace("$CI_COMMIT_REF_SLUG", "$CI_DEFAULT_BRANCH")]
    assert "unprotect" not in cache  # protected branches keep caches of their own
    assert f"--cache-dir {CACHE_DIR}" in " ".join(gate["script"])
    assert "cache" not in ci["deploy-production"]
    # the key that signs it comes only from the masked, protected CI/CD variable: never defined here
    assert {where for where, text in _strings(ci) if "CHECKER_CACHE_KEY" in text} == set()


# --- end to end: the templates' own shell text, run with bash as each CI would ------------------

GITHUB_EXPRESSIONS = {  # what GitHub substitutes in each env: value, for a push to main
    "${{ inputs.ruleset }}": "",
    "${{ inputs.base || 'org-gate' }}": "org-gate",
    "${{ inputs.checker-spec || 'checker==0.1.0' }}": "checker==0.1.0",
    "${{ github.event_name == 'push' && github.ref == 'refs/heads/main' && 'production' || '' }}": "production",
    "${{ secrets.CHECKER_LEDGER }}": "",  # an organisation without a ledger yet (a test sets one where it matters)
    "${{ secrets.CHECKER_CACHE_KEY }}": "9b1f" * 16,  # `openssl rand -hex 32`
}
UNPINNED_WORKFLOW = """on: push
permissions: {contents: read}
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
"""


class Pipeline:
    """A git repository, a key pair and the environment a CI job sees, to run template text in."""

    def __init__(self, tmp_path: Path, files: dict[str, str]) -> None:
        self.root = tmp_path
        self.repo = tmp_path / "repo"
        self.repo.mkdir()
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "checker"  # what `pip install "$GATE_CHECKER_SPEC"` puts on PATH
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m checker "$@"\n')
        shim.chmod(0o755)
        self.base_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
                         "HOME": str(tmp_path), "LANG": "C.UTF-8", "CI": "true",
                         **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}  # the checker tests import
        files = {"README.md": "# app\n", "deploy.sh": "#!/bin/sh\necho deployed > deployed.txt\n", **files}
        for name, text in files.items():
            (self.repo / name).parent.mkdir(parents=True, exist_ok=True)
            (self.repo / name).write_text(text)
        (self.repo / "deploy.sh").chmod(0o755)
        self.git("init", "-q", "-b", "main")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "PAY-42 the change")
        self.commit = self.git("rev-parse", "HEAD")
        keys = tmp_path / "keys"
        keys.mkdir()
        for name in ("gate", "old"):
            done = subprocess.run([str(shim), "evidence", "keygen", str(keys / f"{name}.key")], check=False,
                                  env=self.base_env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        self.private = (keys / "gate.key").read_text()
        self.public = (keys / "gate.key.pub").read_text()
        self.old_public = (keys / "old.key.pub").read_text()  # a rotation: the previous key, still trusted

    def git(self, *args: str) -> str:
        env = {**self.base_env, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
               "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}
        return subprocess.run(["git", *args], cwd=self.repo, env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    def bash(self, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """The script as both CIs run it: bash, errexit and pipefail, in the checkout."""
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                              check=False, cwd=self.repo, env={**self.base_env, **env}, capture_output=True,
                              text=True, timeout=600)

    def deployed(self) -> bool:
        return (self.repo / "deployed.txt").is_file()


def _github_env(step: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    env = {}
    for name, value in (step.get("env") or {}).items():
        key = value.strip()
        known = {**GITHUB_EXPRESSIONS, **{f"${{{{ {k} }}}}": v for k, v in secrets.items()}}
        assert key in known or not EXPRESSION.search(key), f"the test does not know what GitHub puts in {value}"
        env[name] = known.get(key, value)
    return env


def _github_run(pipe: Pipeline, job: dict[str, Any], secrets: dict[str, str], commit: str) \
        -> list[tuple[str, int, str]]:
    """The job's `run:` steps in order, as a runner does (stopping at the first failure); steps that
    `uses:` an action and the pip install are done already (the checkout is the repository, the
    artifact is in it, checker is on PATH)."""
    (pipe.root / "out").write_text("")
    (pipe.root / "event.json").write_text(json.dumps({"ref": "refs/heads/main", "after": commit}))
    context = {"GITHUB_EVENT_PATH": str(pipe.root / "event.json"), "GITHUB_ACTIONS": "true", "GITHUB_SHA": commit,
               "GITHUB_REF": "refs/heads/main",
               "GITHUB_EVENT_NAME": "push", "GITHUB_REPOSITORY": "example/app", "GITHUB_RUN_ID": "7",
               "GITHUB_RUN_ATTEMPT": "1", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_ACTOR": "dev",
               "GITHUB_WORKSPACE": str(pipe.repo), "GITHUB_OUTPUT": str(pipe.root / "out"),
               "GITHUB_STEP_SUMMARY": str(pipe.root / "summary"), "RUNNER_TEMP": str(pipe.root)}
    ran = []
    for step in job["steps"]:
        if "uses" in step or "pip install" in step.get("run", ""):
            continue
        outputs = dict(line.split("=", 1) for line in (pipe.root / "out").read_text().splitlines() if "=" in line)
        done = pipe.bash(step["run"], {**context, **_github_env(step, {
            **secrets, "steps.scan.outputs.exit-code": outputs.get("exit-code", "")})})
        ran.append((step["name"], done.returncode, done.stdout + done.stderr))
        if done.returncode != 0:
            break
    return ran


def _gitlab_run(pipe: Pipeline, ci: dict[str, Any], name: str, group: dict[str, str], commit: str) \
        -> tuple[int, str]:
    """The job's script as the runner runs it (one shell, stopping at the first failure), with the
    pipeline's, the matching rule's and the group's variables; the pip install is done already."""
    job = ci[name]
    rule = next(r for r in job["rules"] if "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in r["if"])
    context = {"GITLAB_CI": "true", "CI_COMMIT_SHA": commit, "CI_COMMIT_SHORT_SHA": commit[:8],
               "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main",
               "CI_PIPELINE_SOURCE": "push", "CI_PROJECT_PATH": "example/app", "CI_SERVER_URL": "https://gitlab.com",
               "CI_PIPELINE_URL": "https://gitlab.com/example/app/-/pipelines/7", "GITLAB_USER_LOGIN": "dev",
               **ci["variables"], **(job.get("variables") or {}), **(rule.get("variables") or {}), **group}
    script = [line for line in job["script"] if not line.startswith("python -m pip install")]
    done = pipe.bash("\n".join(script), context)
    return done.returncode, done.stdout + done.stderr


def _public_file(pipe: Pipeline, *pems: str) -> str:
    """A File variable's value: the path of a file GitLab wrote the variable's text to."""
    path = pipe.root / f"GATE_EVIDENCE_PUBLIC_KEY.{len(list(pipe.root.glob('GATE_EVIDENCE_PUBLIC_KEY.*')))}"
    path.write_text("".join(pems))
    return str(path)


def test_github_template_commands_sign_verify_and_gate_the_deploy(tmp_path: Path) -> None:
    wf = _load(GITHUB)
    gate, deploy = wf["jobs"]["compliance-gate"], wf["jobs"]["deploy"]
    pipe = Pipeline(tmp_path, {})
    signing = {"secrets.CHECKER_SIGNING_KEY": pipe.private}
    ran = _github_run(pipe, gate, signing, pipe.commit)
    assert [(n, c) for n, c, _ in ran] == [("Scan", 0), ("Job summary", 0), ("Gate", 0)], ran
    assert pipe.private not in "".join(out for _, _, out in ran), "the signing key was printed"
    assert (pipe.repo / EVIDENCE).is_file() and (pipe.repo / "results.sarif").is_file()
    lines = (pipe.repo / EVIDENCE).read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["signatures"] for line in lines)
    statement = json.loads(base64.b64decode(json.loads(lines[0])["payload"]))
    assert statement["predicate"]["environment"] == "production"
    assert statement["predicate"]["change"]["commit"] == pipe.commit

    # the deploy, trusting the old and the new key (a rotation): verified, then deployed
    trusted = {"vars.GATE_EVIDENCE_PUBLIC_KEY": pipe.old_public + pipe.public}
    ledger = pipe.root / "ledger.sqlite"
    ran = _github_run(pipe, deploy, {**trusted, "secrets.CHECKER_LEDGER": str(ledger)}, pipe.commit)
    assert [(n, c) for n, c, _ in ran] == [("Verify the gate's evidence", 0), ("Record the change in the ledger", 0),
                                           ("Deploy", 0)], ran
    assert pipe.deployed()
    recorded = pipe.bash(f"checker ledger verify --ledger {ledger} --format json", {})
    assert recorded.returncode == 0 and json.loads(recorded.stdout)["entries"] == 1, recorded.stdout
    (pipe.repo / "deployed.txt").unlink()
    # another key only, or another commit: the evidence does not verify (3), nothing deploys
    for variables, commit in (({"vars.GATE_EVIDENCE_PUBLIC_KEY": pipe.old_public}, pipe.commit),
                              (trusted, "0" * 40)):
        ran = _github_run(pipe, deploy, variables, commit)
        assert [(n, c) for n, c, _ in ran] == [("Verify the gate's evidence", 3)], ran
        assert not pipe.deployed()
    # no public key configured: a usage error, nothing deploys
    ran = _github_run(pipe, deploy, {"vars.GATE_EVIDENCE_PUBLIC_KEY": ""}, pipe.commit)
    assert [(n, c) for n, c, _ in ran] == [("Verify the gate's evidence", 2)] and not pipe.deployed(), ran


def test_github_template_without_the_secret_writes_evidence_no_deploy_accepts(tmp_path: Path) -> None:
    """A fork's pull request gets an empty secret: the gate still runs, the evidence is unsigned."""
    wf = _load(GITHUB)
    pipe = Pipeline(tmp_path, {})
    ran = _github_run(pipe, wf["jobs"]["compliance-gate"], {"secrets.CHECKER_SIGNING_KEY": ""}, pipe.commit)
    assert [c for _, c, _ in ran] == [0, 0, 0] and "unsigned" in ran[0][2], ran
    ran = _github_run(pipe, wf["jobs"]["deploy"], {"vars.GATE_EVIDENCE_PUBLIC_KEY": pipe.public}, pipe.commit)
    assert [(n, c) for n, c, _ in ran] == [("Verify the gate's evidence", 3)] and not pipe.deployed(), ran


def test_github_template_evidence_of_a_failed_gate_does_not_deploy(tmp_path: Path) -> None:
    wf = _load(GITHUB)
    pipe = Pipeline(tmp_path, {".github/workflows/build.yml": UNPINNED_WORKFLOW})
    ran = _github_run(pipe, wf["jobs"]["compliance-gate"], {"secrets.CHECKER_SIGNING_KEY": pipe.private},
                      pipe.commit)
    assert [(n, c) for n, c, _ in ran] == [("Scan", 0), ("Job summary", 0), ("Gate", 1)], ran
    assert (pipe.repo / EVIDENCE).is_file()
    # were the deploy to run on it anyway, --require-pass stops it: exit 1, the recorded gate failed
    ran = _github_run(pipe, wf["jobs"]["deploy"], {"vars.GATE_EVIDENCE_PUBLIC_KEY": pipe.public}, pipe.commit)
    assert [(n, c) for n, c, _ in ran] == [("Verify the gate's evidence", 1)] and not pipe.deployed(), ran


def test_gitlab_template_commands_sign_verify_and_gate_the_deploy(tmp_path: Path) -> None:
    ci = _load(GITLAB)
    pipe = Pipeline(tmp_path, {})
    # group variables, as GitLab hands them to every job of a protected branch: the signing key
    # masked (so base64 on one line), the public keys a File variable (a path), old and new
    group = {"CHECKER_SIGNING_KEY": base64.b64encode(pipe.private.encode()).decode(),
             "GATE_EVIDENCE_PUBLIC_KEY": _public_file(pipe, pipe.old_public, pipe.public)}
    code, output = _gitlab_run(pipe, ci, "compliance-gate", group, pipe.commit)
    assert code == 0, output
    assert pipe.private not in output and "unsigned" not in output, output
    lines = (pipe.repo / EVIDENCE).read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["signatures"] for line in lines)
    statement = json.loads(base64.b64decode(json.loads(lines[0])["payload"]))
    assert statement["predicate"]["environment"] == "production"
    assert all(path in ci["compliance-gate"]["artifacts"]["paths"] for path in ("results.sarif", EVIDENCE))

    code, output = _gitlab_run(pipe, ci, "deploy-production", group, pipe.commit)
    assert code == 0 and pipe.deployed(), output
    (pipe.repo / "deployed.txt").unlink()
    for variables, commit, expected in (
            ({**group, "GATE_EVIDENCE_PUBLIC_KEY": _public_file(pipe, pipe.old_public)}, pipe.commit, 3),
            (group, "0" * 40, 3),
            ({"GATE_EVIDENCE_PUBLIC_KEY": _public_file(pipe, "not a key\n")}, pipe.commit, 2)):
        code, output = _gitlab_run(pipe, ci, "deploy-production", variables, commit)
        assert code == expected and not pipe.deployed(), output


def test_gitlab_template_unsigned_or_failed_evidence_does_not_deploy(tmp_path: Path) -> None:
    ci = _load(GITLAB)
    pipe = Pipeline(tmp_path, {".github/workflows/build.yml": UNPINNED_WORKFLOW})
    # the PEM itself, unmasked, also signs; the gate fails on the unpinned action (exit 1)
    signed = {"CHECKER_SIGNING_KEY": pipe.private,
              "GATE_EVIDENCE_PUBLIC_KEY": _public_file(pipe, pipe.public)}
    code, output = _gitlab_run(pipe, ci, "compliance-gate", signed, pipe.commit)
    assert code == 1 and (pipe.repo / EVIDENCE).is_file(), output
    code, output = _gitlab_run(pipe, ci, "deploy-production", signed, pipe.commit)
    assert code == 1 and not pipe.deployed(), output
    # an unprotected branch gets no protected variable: unsigned evidence, which never verifies
    code, output = _gitlab_run(pipe, ci, "compliance-gate", {}, pipe.commit)
    assert code == 1 and "unsigned" in output, output
    code, output = _gitlab_run(pipe, ci, "deploy-production", signed, pipe.commit)
    assert code == 3 and not pipe.deployed(), output


# Fails the gate on Checkov's CKV_DOCKER_8 (high) alone: our own checks find nothing at high here.
ROOT_IMAGE = f"FROM registry.example.com/mirror/python:3.12-slim@sha256:{'a' * 64}\nUSER root\nHEALTHCHECK CMD true\n"
OUTPUTS = ("results.sarif", EVIDENCE, "summary.md", "junit.xml", "code-scanning.sarif")


def _entries(pipe: Pipeline) -> list[Path]:
    return sorted((pipe.repo / CACHE_DIR / LAYOUT).glob("*/*.json.z"))


def _forge(pipe: Pipeline, secret: str | None) -> int:
    """Rewrite every entry of the restored cache to say Checkov found nothing, whole and under its key,
    signed with `secret` (None: unsigned): what another job of the pipeline, which runs the repository's
    code and can write the shared cache, would do. How many entries were rewritten."""
    found = _entries(pipe)
    for entry in found:
        meta, _, payload = zlib.decompress(entry.read_bytes()).partition(b"\n")
        Cache(pipe.repo / CACHE_DIR, secret=secret).put(json.loads(meta)["key"], {**json.loads(payload),
                                                                                   "records": []})
    return len(found)


def _next_run(pipe: Pipeline) -> None:
    """The workspace of the next pipeline: a fresh checkout (no outputs of the last run) with the cache restored."""
    for name in OUTPUTS:
        (pipe.repo / name).unlink(missing_ok=True)


def test_github_template_trusts_a_restored_cache_only_when_signed_with_its_key(tmp_path: Path) -> None:
    wf = _load(GITHUB)
    gate, deploy = wf["jobs"]["compliance-gate"], wf["jobs"]["deploy"]
    pipe = Pipeline(tmp_path, {"Dockerfile": ROOT_IMAGE})
    key = GITHUB_EXPRESSIONS["${{ secrets.CHECKER_CACHE_KEY }}"]
    secrets = {"secrets.CHECKER_SIGNING_KEY": pipe.private}
    ran = _github_run(pipe, gate, secrets, pipe.commit)
    assert [(n, c) for n, c, _ in ran] == [("Scan", 0), ("Job summary", 0), ("Gate", 1)], ran
    assert _entries(pipe), "the scan kept its results in the cache the template saves"
    # the next pipeline restores a cache another job rewrote to say "no findings": without the key it
    # signs nothing that checks out, and neither does a job that reads the secret of a fork (empty)
    for forger, cache_key in ((None, key), ("f0e1" * 16, key), (None, "")):
        assert _forge(pipe, forger)
        _next_run(pipe)
        ran = _github_run(pipe, gate, {**secrets, "secrets.CHECKER_CACHE_KEY": cache_key}, pipe.commit)
        assert [(n, c) for n, c, _ in ran] == [("Scan", 0), ("Job summary", 0), ("Gate", 1)], ran
        assert "CKV_DOCKER_8" in (pipe.repo / "results.sarif").read_text()
        assert ("CHECKER_CACHE_KEY" in ran[0][2]) == (cache_key == ""), ran[0][2]  # the note: a cache went unused
        assert key not in "".join(out for _, _, out in ran)
    # control: signed with the key, the same entries are used, and the gate passes on them; whoever can
    # read the key can pass the gate, so only the Scan step gets it. The restored cache is no uncommitted
    # change: the evidence verifies and the deploy goes ahead.
    assert _forge(pipe, key)
    _next_run(pipe)
    ran = _github_run(pipe, gate, secrets, pipe.commit)
    assert [(n, c) for n, c, _ in ran] == [("Scan", 0), ("Job summary", 0), ("Gate", 0)], ran
    ran = _github_run(pipe, deploy, {"vars.GATE_EVIDENCE_PUBLIC_KEY": pipe.public}, pipe.commit)
    assert [(n, c) for n, c, _ in ran] == [("Verify the gate's evidence", 0), ("Record the change in the ledger", 0),
                                           ("Deploy", 0)], ran


def test_gitlab_template_trusts_a_restored_cache_only_when_signed_with_its_key(tmp_path: Path) -> None:
    ci = _load(GITLAB)
    pipe = Pipeline(tmp_path, {"Dockerfile": ROOT_IMAGE})
    key = "5c3a" * 16
    group = {"CHECKER_SIGNING_KEY": pipe.private, "CHECKER_CACHE_KEY": key,
             "GATE_EVIDENCE_PUBLIC_KEY": _public_file(pipe, pipe.public)}
    code, output = _gitlab_run(pipe, ci, "compliance-gate", group, pipe.commit)
    assert code == 1 and _entries(pipe), output
    assert _forge(pipe, None)  # another job of the branch's pipelines, without the key
    _next_run(pipe)
    code, output = _gitlab_run(pipe, ci, "compliance-gate", group, pipe.commit)
    assert code == 1 and "CKV_DOCKER_8" in (pipe.repo / "results.sarif").read_text(), output
    # an unprotected branch's pipeline gets no protected variable: the cache is not used at all
    assert _forge(pipe, None)
    _next_run(pipe)
    code, output = _gitlab_run(pipe, ci, "compliance-gate", {**group, "CHECKER_CACHE_KEY": ""}, pipe.commit)
    assert code == 1 and "CHECKER_CACHE_KEY" in output, output
    # control: signed with the key, the entries are used; the restored cache is no uncommitted change
    assert _forge(pipe, key)
    _next_run(pipe)
    code, output = _gitlab_run(pipe, ci, "compliance-gate", group, pipe.commit)
    assert code == 0 and key not in output, output
    code, output = _gitlab_run(pipe, ci, "deploy-production", group, pipe.commit)
    assert code == 0 and pipe.deployed(), output
