"""What every engine is and returns: the Engine protocol and its Outcome.

An engine is a module-level object with:
- `name`: its key, recorded on every Rule it defines (`Rule.engine`);
- `distribution`: the Python distribution whose version the results depend on (recorded in every
  report), or None when it is this package's own code;
- `lists_every_rule`: whether the SARIF lists each of its selected rules even without a result
  (the organisation's own catalogue, yes; Checkov's thousand-odd rules, only those that fired);
- `catalogue(ruleset) -> dict[id, Rule]`: every rule it can check, with default metadata;
- `run(discovery, rules, ruleset, cache, progress) -> Outcome`: findings for the selected rules it
  owns; it may keep what it computed in the scan's result cache (checker.cache) under a key of
  everything the result depends on, and take it from there next time. It tells `progress`
  (checker.progress) where it is, from the loop where its work happens (`show` a Step, `tick` per
  file, or pass `progress.watcher(...)` to `workers.run_all`): the scan's progress line on a
  terminal. It never writes to stdout or stderr itself.
Engines never decide what is reported or whether the gate passes: later stages do.
Adding one: a module in this package with such an object, then a line in `checker.engines.registry`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from checker.cache import Cache
    from checker.discover import Discovery
    from checker.model import Finding, Problem, Rule
    from checker.progress import Progress
    from checker.ruleset import Ruleset


@dataclasses.dataclass
class Outcome:
    """What one engine produced."""

    findings: list[Finding] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


class Engine(Protocol):
    """A checking engine (see the module docstring)."""

    @property
    def name(self) -> str: ...

    @property
    def distribution(self) -> str | None: ...

    @property
    def lists_every_rule(self) -> bool: ...

    def catalogue(self, ruleset: Ruleset) -> dict[str, Rule]: ...

    def run(self, discovery: Discovery, rules: Mapping[str, Rule], ruleset: Ruleset, cache: Cache,
            progress: Progress) -> Outcome: ...
