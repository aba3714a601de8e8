"""Select the rules a ruleset asks for from the engines' catalogues, and apply its overrides."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping

from checker.errors import ConfigError, where
from checker.model import Rule
from checker.ruleset.loader import Ruleset


def select_rules(ruleset: Ruleset, catalogue: Mapping[str, Rule]) -> dict[str, Rule]:
    """The selected rules by id, with the ruleset's severities and controls applied.

    Every id or glob the ruleset writes must match a known rule: a typo is an error (exit 2)
    naming the file and line, never a rule silently not run.
    """
    for mention in ruleset.mentions:
        if mention.pattern not in catalogue and not _matcher((mention.pattern,))(catalogue):
            hint = _close(mention.pattern, catalogue)
            raise ConfigError(
                f"{where(mention.path, mention.line, mention.key)}: {mention.pattern!r} matches no known rule"
                + (f"; did you mean {hint}?" if hint else "; `checker rules list` shows them"))
    controls = [(_matcher((pattern,)), found) for pattern, found in _controls_by_rule(ruleset).items()]
    include, exclude = _matcher(ruleset.include), _matcher(ruleset.exclude)
    selected = {}
    for rule_id in sorted(catalogue):
        if not include((rule_id,)) or exclude((rule_id,)):
            continue
        rule = catalogue[rule_id]
        selected[rule_id] = dataclasses.replace(
            rule,
            severity=ruleset.severity.get(rule_id, rule.severity),
            controls=tuple(sorted({*rule.controls, *(c for match, found in controls if match((rule_id,))
                                                     for c in found)})),
        )
    return selected


def _matcher(patterns: Iterable[str]) -> Callable[[Iterable[str]], bool]:
    """A test: does any of these ids match any of the globs? (one compiled regex for all globs)"""
    regex = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns) or "(?!)")
    return lambda ids: any(regex.match(i) for i in ids)


def _controls_by_rule(ruleset: Ruleset) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for framework, controls in ruleset.controls.items():
        for control, spec in controls.items():
            for pattern in spec["rules"]:
                out.setdefault(pattern, set()).add(f"{framework}:{control}")
    return out


def _close(pattern: str, catalogue: Mapping[str, Rule]) -> str:
    return ", ".join(difflib.get_close_matches(pattern, list(catalogue), n=3, cutoff=0.8))
