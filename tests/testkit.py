"""Test helpers: the real CLI (CliRunner and a subprocess), the corpus, the SARIF validators, rulesets."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.cli import main

PROJECT = Path(__file__).resolve().parent.parent
CORPUS = PROJECT.parent / "shared" / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def corpus_folder(name: str) -> Path:
    """A corpus folder, or a skip with the reason when ../shared is not beside the checkout."""
    folder = CORPUS / name
    if not folder.is_dir():
        pytest.skip(f"needs the shared corpus at {CORPUS} (absent here; CI has it)")
    return folder


class Cli:
    """Runs `checker` in-process with Click's CliRunner."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, cwd: Path | None = None):
        old = os.getcwd()
        if cwd:
            os.chdir(cwd)
        try:
            return self.runner.invoke(main, list(args), catch_exceptions=False)
        finally:
            os.chdir(old)


def run_checker(*args: str, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m checker ...` in a real subprocess (`env`: variables added to this process's)."""
    return subprocess.run([sys.executable, "-m", "checker", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env} if env else None)


def ruleset_text(include: list[str], **extra: str) -> str:
    lines = ["apiVersion: checker/v1", "kind: Ruleset", "metadata: {name: test, version: '1'}",
             f"checks: {{include: {json.dumps(include)}}}"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


MULTITOOL = PROJECT / ".tools" / "node_modules" / "@microsoft" / "sarif-multitool-linux" / "Sarif.Multitool"
SARIF_SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-schema-2.1.0.json"


def sarif_problems(path: Path) -> list[str]:
    """Errors and warnings from the OASIS schema (with format checks) and the SARIF Multitool (Gh;Sarif)."""
    import jsonschema

    doc = json.loads(path.read_text())
    schema = json.loads(SARIF_SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    found = [f"schema: {list(e.absolute_path)}: {e.message}"
             for e in cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(doc)]
    if not MULTITOOL.exists() and shutil.which("npm") is None:
        pytest.skip("the SARIF Multitool is not installed (make test installs it with npm)")
    assert MULTITOOL.exists(), "run `make tools` (make test does) to install the SARIF Multitool"
    out = path.with_suffix(".validation.sarif")
    subprocess.run([str(MULTITOOL), "validate", str(path), "-o", str(out), "--log", "ForceOverwrite",
                    "--json-schema", str(SARIF_SCHEMA), "--max-file-size-in-kb", "1000000",
                    "--rule-kind", "Gh;Sarif", "--level", "Error;Warning"],
                   capture_output=True, text=True, check=False, timeout=300)
    assert out.exists(), "the SARIF Multitool wrote no output log"
    run = json.loads(out.read_text())["runs"][0]
    ignored = {"SARIF2006", "SARIF2002"}  # URLs reachable (no network here); message arguments (GitHub needs text)
    found += [f"{r['ruleId']}: {r.get('message', {})}" for r in run.get("results", [])
              if r["ruleId"] not in ignored and r.get("level", "warning") in ("error", "warning")]
    for inv in run.get("invocations", []):
        found += [f"notification: {n['message']['text']}" for n in inv.get("toolExecutionNotifications", [])]
    return found
