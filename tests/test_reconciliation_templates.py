"""The nightly reconciliation templates in ci/: compliant with our own policy library, least
privilege, and their own shell commands run against a real SQLite ledger of real signed evidence."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from ledger_kit import RULESET_DIGEST, keypair, write_evidence

from checker.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
GITHUB = REPO_ROOT / "ci" / "github-reconciliation.yml"
GITLAB = REPO_ROOT / "ci" / "gitlab-reconciliation.yml"
SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
EXPRESSION = re.compile(r"\$\{\{")


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # `on:` stays a string key


def test_the_templates_pass_our_own_policy_library(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copyfile(GITHUB, repo / ".github" / "workflows" / "change-reconciliation.yml")
    shutil.copyfile(GITLAB, repo / ".gitlab-ci.yml")
    out = tmp_path / "scan.json"
    result = CliRunner().invoke(main, ["scan", str(repo), "-r", "org-baseline", "--fail-on", "never",
                                       "--json-output", str(out)])
    import json

    findings = json.loads(out.read_text())["findings"]
    pipelines = [f for f in findings if f["rule"].startswith("ORG-") and not f["rule"].startswith("ORG-REPO")]
    assert pipelines == [], result.output


def test_github_template_shape() -> None:
    wf = _load(GITHUB)
    assert set(wf["on"]) == {"schedule", "workflow_dispatch"} and wf["permissions"] == {"contents": "read"}
    job = wf["jobs"]["reconcile"]
    assert job["permissions"] == {"contents": "read"} and "environment" not in job  # not a deploy
    uses = [s["uses"] for s in job["steps"] if "uses" in s]
    assert uses and all(SHA_PIN.match(u) for u in uses), uses
    for step in job["steps"]:
        assert not EXPRESSION.search(step.get("run", "")), step  # values reach the shell through env only
    names = [s["name"] for s in job["steps"]]
    assert (names.index("Verify the ledger") < names.index("Report yesterday's changes")
            < names.index("Checkpoint the ledger") < names.index("Keep the report and the checkpoint")
            < names.index("Exceptions"))
    keep = next(s for s in job["steps"] if s["name"] == "Keep the report and the checkpoint")
    assert keep["if"] == "always()" and {"changes.html", "checkpoint.txt"} <= set(keep["with"]["path"].split())


def _run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """As both CIs run a script: bash, errexit and pipefail; checker on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHECKER_")}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                          env={**environ, "PATH": path, "CHECKER_WARM": "0", **env}, capture_output=True,
                          text=True, timeout=300, check=False)


def _today(script: str) -> str:
    """Entries are appended now, so "yesterday" would select none: the test reports today instead."""
    assert "--since yesterday --until yesterday" in script
    return script.replace("--since yesterday --until yesterday", "--since today")


APPROVED = f"payments@{RULESET_DIGEST}"  # the ruleset ledger_kit's evidence records


def _ledger(tmp_path: Path, *decisions: str) -> tuple[Path, Path, Path]:
    """A ledger of real signed evidence, and its first checkpoint kept at tmp_path/work/ledger/checkpoint.txt."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    private, public = keypair(tmp_path)
    ledger = tmp_path / "ledger.sqlite"
    files = [write_evidence(tmp_path / f"e{i}.jsonl", private, decision=d, tickets=["PAY-1"])
             for i, d in enumerate(decisions)]
    done = CliRunner().invoke(main, ["ledger", "append", *map(str, files), "--ledger", str(ledger)])
    assert done.exit_code == 0, done.output
    kept = tmp_path / "work" / "ledger" / "checkpoint.txt"
    kept.parent.mkdir(parents=True, exist_ok=True)
    done = CliRunner().invoke(main, ["ledger", "checkpoint", "--ledger", str(ledger), "--signing-key", str(private),
                                     "--output", str(kept)])
    assert done.exit_code == 0, done.output
    return ledger, private, public


def test_github_template_commands_verify_report_checkpoint_and_fail_on_exceptions(tmp_path: Path) -> None:
    job = _load(GITHUB)["jobs"]["reconcile"]
    for decisions, expected in ((("PASSED", "PASSED"), "0"), (("PASSED", "FAILED"), "1")):
        folder = tmp_path / "-".join(decisions)
        work = folder / "work"
        ledger, private, public = _ledger(folder, *decisions)
        known = {"secrets.CHECKER_LEDGER": str(ledger), "vars.GATE_EVIDENCE_PUBLIC_KEY": public.read_text(),
                 "vars.GATE_APPROVED_RULESETS": APPROVED, "secrets.CHECKER_SIGNING_KEY": private.read_text()}
        output = folder / "out"
        output.write_text("")
        base = {"RUNNER_TEMP": str(folder), "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(folder / "sum")}
        for step in job["steps"]:
            if "uses" in step or "pip install" in step.get("run", ""):
                continue
            env = dict(base)
            for name, value in (step.get("env") or {}).items():
                expression = re.fullmatch(r"\$\{\{ (.+) \}\}", value.strip())
                if expression and expression[1] == "steps.report.outputs.exit-code":
                    env[name] = dict(line.split("=", 1) for line in output.read_text().splitlines())["exit-code"]
                else:
                    env[name] = known[expression[1]] if expression else value
            done = _run(_today(step["run"]) if "report changes" in step["run"] else step["run"], work, env)
            if step["name"] == "Exceptions":
                assert str(done.returncode) == expected, done.stdout + done.stderr
            else:
                assert done.returncode == 0, (step["name"], done.stdout + done.stderr)
        assert ("**gate FAILED**" in (folder / "sum").read_text()) == (expected == "1")
        assert (work / "changes.html").read_text().startswith("<!DOCTYPE html>")
        assert (work / "checkpoint.txt").read_text().splitlines()[1] == "2"  # origin, size, root hash, signature
        assert private.read_text().splitlines()[1] not in (folder / "sum").read_text()


def test_gitlab_template_commands_verify_against_the_kept_checkpoint(tmp_path: Path) -> None:
    job = _load(GITLAB)["change-reconciliation"]
    script = "\n".join(line for line in job["script"] if not line.startswith("python -m pip install"))
    ledger, private, public = _ledger(tmp_path, "PASSED")
    work = tmp_path / "work"
    env = {"CHECKER_LEDGER": str(ledger), "GATE_EVIDENCE_PUBLIC_KEY": str(public),
           "CHECKER_SIGNING_KEY": private.read_text(), "GATE_APPROVED_RULESETS": APPROVED}
    first = _run(_today(script), work, env)
    assert first.returncode == 0 and "extends the checkpoint" in first.stdout + first.stderr, first.stdout
    # fail closed: no kept checkpoint, or no approved list
    for missing, said in (("checkpoint", "first checkpoint"), ("approved", "GATE_APPROVED_RULESETS")):
        moved = work / "ledger" / "checkpoint.txt"
        if missing == "checkpoint":
            moved.rename(tmp_path / "aside.txt")
        done = _run(_today(script), work, {**env, **({"GATE_APPROVED_RULESETS": ""} if missing == "approved" else {})})
        assert done.returncode == 2 and said in done.stderr, done.stdout + done.stderr
        if missing == "checkpoint":
            (tmp_path / "aside.txt").rename(moved)
    # a ledger recreated from scratch (the same evidence, a new chain) no longer extends the kept checkpoint
    ledger.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)
    assert CliRunner().invoke(main, ["ledger", "append", str(tmp_path / "e0.jsonl"), "--ledger",
                                     str(ledger)]).exit_code == 0
    rewritten = _run(_today(script), work, env)
    assert rewritten.returncode == 3, rewritten.stdout + rewritten.stderr
