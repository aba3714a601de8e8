"""Reporters render a ScanResult to a string: one module per format, registered in FORMATS."""
from __future__ import annotations

import enum
from collections.abc import Callable

from checker.model import ScanResult


class Format(str, enum.Enum):
    TEXT = "text"
    SARIF = "sarif"
    JSON = "json"


Renderer = Callable[[ScanResult], str]


def renderer(fmt: Format) -> Renderer:
    """The render function of a format (imported on demand)."""
    from checker.reporters import json as json_reporter
    from checker.reporters import sarif, text

    renderers: dict[Format, Renderer] = {
        Format.TEXT: text.render,
        Format.SARIF: sarif.render,
        Format.JSON: json_reporter.render,
    }
    return renderers[fmt]
