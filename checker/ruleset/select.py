"""Select the rules a ruleset asks for from the engines' catalogues, and apply its overrides."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Mapping

from checker.errors import ConfigError, where
from checker.model import Rule
from checker.ruleset.loader import Ruleset


def select_rules(ruleset: Ruleset, catalogue: Mapping[str, Rule]) -> dict[str, Rule]:
    """The selected rules by id, with the ruleset's severities and controls applied.

    Every id or glob the ruleset writes must match a known rule: a typo is an error (exit 2)
    naming the file and line, never a rule silently not run.
    """
    for mention in ruleset.mentions:
        if not any(fnmatch.fnmatchcase(rule_id, mention.pattern) for rule_id in catalogue):
            hint = _close(mention.pattern, catalogue)
            raise ConfigError(
                f"{where(mention.path, mention.line, mention.key)}: {mention.pattern!r} matches no known rule"
                + (f"; did you mean {hint}?" if hint else "; `checker rules list` shows them"))
    controls = _controls_by_rule(ruleset)
    selected = {}
    for rule_id in sorted(catalogue):
        if not _matches(rule_id, ruleset.include) or _matches(rule_id, ruleset.exclude):
            continue
        rule = catalogue[rule_id]
        selected[rule_id] = dataclasses.replace(
            rule,
            severity=ruleset.severity.get(rule_id, rule.severity),
            controls=tuple(sorted({*rule.controls, *(c for p, cs in controls.items()
                                                     if fnmatch.fnmatchcase(rule_id, p) for c in cs)})),
        )
    return selected


def _matches(rule_id: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(rule_id, p) for p in patterns)


def _controls_by_rule(ruleset: Ruleset) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for framework, controls in ruleset.controls.items():
        for control, spec in controls.items():
            for pattern in spec["rules"]:
                out.setdefault(pattern, set()).add(f"{framework}:{control}")
    return out


def _close(pattern: str, catalogue: Mapping[str, Rule]) -> str:
    return ", ".join(difflib.get_close_matches(pattern, list(catalogue), n=3, cutoff=0.8))
