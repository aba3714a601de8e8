"""Shared fixtures; helpers live in testkit.py (a unique module name beside other conftest files)."""
from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["CHECKER_WARM"] = "0"  # subprocesses run cold; tests/test_warm.py turns the server on itself
# A CI running this suite sets its own context; scans in tests record only what a test sets itself.
for _name in [n for n in os.environ if n.startswith(("GITHUB_", "GITLAB_", "CI_"))] + ["GITLAB_CI"]:
    os.environ.pop(_name, None)

from testkit import Cli  # noqa: E402


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write('a/b.yaml', text) -> path, dedented, under tmp_path."""

    def _write(rel: str, text: str) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write
