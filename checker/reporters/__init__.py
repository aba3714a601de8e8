"""Reporters render a ScanResult to a string: one module per format, each with a render function.

`Format` is the registry: each member names its module and function and says what the output is
for. The CLI makes `--format NAME` and `--NAME-output FILE` from it, and
tests/test_formats.py fails when a format lacks its reporter, its option or its README line.
Adding a format: a module here with `render(result) -> str`, a member below, a README row.
"""
from __future__ import annotations

import enum
import importlib
from collections.abc import Callable

from checker.model import ScanResult

Renderer = Callable[[ScanResult], str]


class Format(str, enum.Enum):
    """An output format: its name (the enum's value), where its renderer is, and what it is for."""

    module: str
    function: str
    help: str

    def __new__(cls, name: str, module: str, function: str, help: str) -> Format:
        member = str.__new__(cls, name)
        member._value_ = name
        member.module, member.function, member.help = f"checker.reporters.{module}", function, help
        return member

    TEXT = "text", "text", "render", "the report for people: findings by file, a fix each, the verdict"
    SARIF = "sarif", "sarif", "render", "the complete SARIF audit record (suppressed and baselined results too)"
    CODE_SCANNING = ("code-scanning", "sarif", "render_alerts",
                     "SARIF with only the open alerts, for GitHub code scanning upload")
    JSON = "json", "json", "render", "our JSON report (schema checker/scan-result/v1)"
    JUNIT = "junit", "junit", "render", "JUnit XML, for CI test tabs"
    MARKDOWN = "markdown", "markdown", "render", "a Markdown summary, e.g. for $GITHUB_STEP_SUMMARY"

    @property
    def option(self) -> str:
        """The scan option that also writes this format to a file."""
        return f"--{self.value}-output"

    def renderer(self) -> Renderer:
        """The render function (its module imported on demand: SARIF's pulls in sarif-om)."""
        render: Renderer = getattr(importlib.import_module(self.module), self.function)
        return render
