"""Every engine, in the order they run: a literal registry (as pre-commit's `all_languages`).

Importing this is cheap: each engine imports its heavy library (Checkov) only when it runs.
"""
from __future__ import annotations

from checker.engines import checkov, python
from checker.engines.base import Engine

ENGINES: tuple[Engine, ...] = (python.ENGINE, checkov.ENGINE)
