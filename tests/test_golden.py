"""Whole-output tests: every report of one canonical scan result, compared with the text checked in.

The result is built by hand in tests/golden/canonical.py (fixed times, versions and paths; the
ruleset tests/golden/ruleset.yaml through the real loader); the expected outputs are the files in
tests/golden/expected/. A change to any report shows here as a unified diff of the whole output.
When the change is intended, rewrite the expected files and review their diff before committing:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden.py

Rewriting passes (as snapshot tools do); under CI (CI set and not false) it is refused and fails,
so a pipeline can never bless its own output. A new format in checker.reporters.Format fails here
until its expected file is written the same way.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path

import click
import pytest
from golden.canonical import GOLDEN, RULESET, TODAY, canonical_result, golden_ruleset
from testkit import Cli, sarif_problems

from checker import suppress
from checker.gate import decide
from checker.model import ScanResult
from checker.reporters import Format

EXPECTED = GOLDEN / "expected"
UPDATE_COMMAND = "UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden.py"

# Every format of the registry, as a user sees it, in expected/FORMAT.EXT: the text report with
# colour off (as click.echo writes it to a file or a pipe).
EXTENSIONS = {Format.SARIF: "sarif", Format.CODE_SCANNING: "sarif", Format.JSON: "json", Format.JUNIT: "xml",
              Format.MARKDOWN: "md"}


def expected_name(fmt: Format) -> str:
    return f"{fmt.value}.{EXTENSIONS.get(fmt, 'txt')}"


def rendered(fmt: Format, result: ScanResult) -> str:
    out = fmt.renderer()(result)
    return click.unstyle(out) if fmt is Format.TEXT else out


# `checker rules explain RULE -r ruleset.yaml`, run in tests/golden: a rule the ruleset selects as
# it is, and one whose severity the ruleset overrides.
EXPLAINED = {"rules-explain-ORG-GHA-001.txt": "ORG-GHA-001", "rules-explain-ORG-REPO-003.txt": "ORG-REPO-003"}


@pytest.fixture(scope="module")
def result() -> ScanResult:
    return canonical_result()


@pytest.mark.parametrize("fmt", list(Format), ids=lambda fmt: fmt.value)
def test_report_is_exactly_the_expected_text(fmt: Format, result: ScanResult) -> None:
    compare(expected_name(fmt), rendered(fmt, result))


@pytest.mark.parametrize("name", sorted(EXPLAINED))
def test_rules_explain_is_exactly_the_expected_text(name: str) -> None:
    outcome = Cli()("rules", "explain", EXPLAINED[name], "-r", RULESET.name, cwd=GOLDEN)
    assert outcome.exit_code == 0, outcome.output
    compare(name, outcome.output)


def test_no_stale_expected_files() -> None:
    """Every file in expected/ is one a test compares (a renamed output leaves none behind)."""
    assert sorted(p.name for p in EXPECTED.iterdir()) == sorted([*map(expected_name, Format), *EXPLAINED])


@pytest.mark.parametrize("name", ["sarif.sarif", "code-scanning.sarif"])
def test_expected_sarif_is_valid(name: str, tmp_path: Path) -> None:
    """What the golden files pin is valid SARIF (the OASIS schema and the SARIF Multitool's GitHub rules)."""
    copy = tmp_path / name  # the Multitool writes its log beside the file it validates
    copy.write_bytes((EXPECTED / name).read_bytes())
    assert sarif_problems(copy) == []


def test_canonical_result_is_what_the_stages_make(result: ScanResult) -> None:
    """The hand-made waiver suppression and its note are what checker.suppress makes from the
    golden ruleset on the canonical day, and the decision is the gate's: the canonical result
    stays a result a scan could produce."""
    waived = next(f for f in result.findings if f.suppression and f.suppression.kind == "external")
    bare = dataclasses.replace(waived, suppression=None)
    ruleset = golden_ruleset()
    outcome = suppress.apply([bare], GOLDEN, ruleset.waivers, ruleset.allow_inline, ruleset.forbid_inline, TODAY)
    assert outcome.findings == [waived]
    assert outcome.notes == [n for n in result.notes if n.startswith("waiver for")]
    assert result.decision == decide(result.findings, result.problems, result.fail_on)


def compare(name: str, actual: str) -> None:
    """Fail with a unified diff unless `actual` is the expected file byte for byte; with
    UPDATE_GOLDEN set (outside CI), write it instead."""
    path = EXPECTED / name
    if os.environ.get("UPDATE_GOLDEN"):
        if _in_ci():
            pytest.fail(f"UPDATE_GOLDEN is refused under CI (CI={os.environ['CI']!r}): update the expected files "
                        f"locally with `{UPDATE_COMMAND}` and commit them", pytrace=False)
        if not path.is_file() or path.read_bytes() != actual.encode("utf-8"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(actual.encode("utf-8"))
        return
    if not path.is_file():
        pytest.fail(f"{_shown(path)} is missing; write it with `{UPDATE_COMMAND}`", pytrace=False)
    expected = path.read_bytes().decode("utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                            fromfile=f"{_shown(path)} (expected)", tofile=f"{name} (actual)"))
        pytest.fail(f"{name} is not the expected output. If the change is intended, run `{UPDATE_COMMAND}` and "
                    f"review the diff of tests/golden/expected/.\n{diff}", pytrace=False)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _shown(path: Path) -> str:
    return path.relative_to(GOLDEN.parent.parent).as_posix()
