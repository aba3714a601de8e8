"""Engines check targets against rules and report Findings and Problems.

An engine is a module-level object with:
- `name`: its key in ENGINES;
- `catalogue(ruleset) -> dict[id, Rule]`: every rule it can check, with default metadata;
- `run(discovery, rules, ruleset) -> Outcome`: findings for the selected rules it owns.
Engines never decide what is reported or whether the gate passes: later stages do.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol

from checker.discover import Discovery
from checker.model import Finding, Problem, Rule
from checker.ruleset import Ruleset


@dataclasses.dataclass
class Outcome:
    """What one engine produced."""

    findings: list[Finding] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


class Engine(Protocol):
    name: str

    def catalogue(self, ruleset: Ruleset) -> dict[str, Rule]: ...

    def run(self, discovery: Discovery, rules: Mapping[str, Rule], ruleset: Ruleset) -> Outcome: ...


def engines() -> tuple[Engine, ...]:
    """The engines in the order they run (imported here, not at start-up: Checkov is heavy)."""
    from checker.engines import checkov, python

    return (python.ENGINE, checkov.ENGINE)
