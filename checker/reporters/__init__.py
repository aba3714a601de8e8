"""Reporters render a ScanResult to a string: one module per format, each with `render(result) -> str`."""
from __future__ import annotations

import enum
import importlib
from collections.abc import Callable

from checker.model import ScanResult


class Format(str, enum.Enum):
    TEXT = "text"
    SARIF = "sarif"
    JSON = "json"
    JUNIT = "junit"
    MARKDOWN = "markdown"


Renderer = Callable[[ScanResult], str]

MODULES: dict[Format, str] = {
    Format.TEXT: "checker.reporters.text",
    Format.SARIF: "checker.reporters.sarif",
    Format.JSON: "checker.reporters.json",
    Format.JUNIT: "checker.reporters.junit",
    Format.MARKDOWN: "checker.reporters.markdown",
}


def renderer(fmt: Format) -> Renderer:
    """The render function of a format (its module is imported on demand)."""
    render: Renderer = importlib.import_module(MODULES[fmt]).render
    return render
