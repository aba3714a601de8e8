"""Every output format has its reporter, its options and its README row (pip-audit's exhaustiveness test)."""
from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import checker.reporters
from checker.cli import scan_command
from checker.reporters import Format

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
SCAN_OPTIONS = {opt for param in scan_command.params for opt in param.opts}


@pytest.mark.parametrize("fmt", list(Format), ids=lambda f: f.value)
def test_each_format_has_a_reporter_an_option_and_a_readme_row(fmt: Format) -> None:
    module = importlib.import_module(fmt.module)
    assert callable(getattr(module, fmt.function, None)), f"{fmt.module} has no {fmt.function}()"
    assert fmt.option in SCAN_OPTIONS, f"`checker scan` has no {fmt.option}"
    assert fmt.value in next(p for p in scan_command.params if p.name == "fmt").type.choices
    assert re.search(rf"^\| `{re.escape(fmt.value)}` \| \S", README, re.MULTILINE), f"README has no row for {fmt.value}"


def test_every_reporter_module_and_output_option_belongs_to_a_format() -> None:
    modules = {f"checker.reporters.{m.name}" for m in pkgutil.iter_modules(checker.reporters.__path__)}
    assert modules == {fmt.module for fmt in Format}, "a reporter module no format names"
    outputs = {opt for opt in SCAN_OPTIONS if opt.endswith("-output")} - {"--evidence-output"}
    assert outputs == {fmt.option for fmt in Format}, "an --*-output option no format generates"
    rows = set(re.findall(r"^\| `([a-z-]+)` \| ", README.split("| Format | What it is for |")[1], re.MULTILINE))
    assert rows >= {fmt.value for fmt in Format}


def test_a_format_renders_what_scan_writes(tmp_path: Path) -> None:
    """The options really write each format, and a file never carries terminal colour."""
    from click.testing import CliRunner

    from checker.cli import main

    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "Dockerfile").write_text("FROM python:latest\n")
    args = ["scan", str(tmp_path / "repo"), "-r", "org-baseline"]
    for fmt in Format:
        args += [fmt.option, str(tmp_path / f"out.{fmt.value}")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    for fmt in Format:
        text = (tmp_path / f"out.{fmt.value}").read_text(encoding="utf-8")
        assert text and "\x1b[" not in text, fmt
    assert (tmp_path / "out.text").read_text(encoding="utf-8") == result.output  # what stdout showed
