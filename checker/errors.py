"""The error family: one type per exit code, caught only in cli.py."""
from __future__ import annotations


class CheckerError(Exception):
    """Base of every error the CLI turns into an exit code."""

    exit_code = 2


class ConfigError(CheckerError):
    """Usage or configuration error: bad ruleset, unknown rule id, bad flag (exit 2)."""

    exit_code = 2


class ScanError(CheckerError):
    """The scan could not complete at all (exit 3)."""

    exit_code = 3


def where(path: object, line: int | None = None, key: str | None = None) -> str:
    """Format 'file:line: key' for error messages."""
    text = str(path)
    if line:
        text += f":{line}"
    if key:
        text += f": {key}"
    return text
