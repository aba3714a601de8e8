"""Select the rules a ruleset asks for from the engines' catalogues, and apply its overrides."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping

from checker.errors import ConfigError, where
from checker.model import Rule
from checker.ruleset.loader import Lock, Ruleset


def select_rules(ruleset: Ruleset, catalogue: Mapping[str, Rule]) -> dict[str, Rule]:
    """The selected rules by id, with the ruleset's severities and controls applied.

    Every id or glob the ruleset writes must match a known rule: a typo is an error (exit 2)
    naming the file and line, never a rule silently not run.
    """
    for mention in ruleset.mentions:
        if mention.pattern not in catalogue and not matcher((mention.pattern,))(catalogue):
            hint = _close(mention.pattern, catalogue)
            raise ConfigError(
                f"{where(mention.path, mention.line, mention.key)}: {mention.pattern!r} matches no known rule"
                + (f"; did you mean {hint}?" if hint else "; `checker rules list` shows them"))
    controls = [(matcher((pattern,)), found) for pattern, found in _controls_by_rule(ruleset).items()]
    include, exclude = matcher(ruleset.include), matcher(ruleset.exclude)
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
    for lock in ruleset.locks:
        if lock.rules:
            _hold(lock, ruleset, catalogue, selected)
    return selected


def _hold(lock: Lock, ruleset: Ruleset, catalogue: Mapping[str, Rule], selected: Mapping[str, Rule]) -> None:
    """Every rule a lock covers (selected at the locking layer) stays selected, at no lower severity."""
    locked, include, exclude = matcher(lock.rules), matcher(lock.include), matcher(lock.exclude)
    later = [m for m in ruleset.mentions if m.layer > lock.layer]
    for rule_id in sorted(catalogue):
        if not (locked((rule_id,)) and include((rule_id,)) and not exclude((rule_id,))):
            continue
        if rule_id not in selected:
            culprit = next((m for m in later if m.key == "checks.exclude" and matcher((m.pattern,))((rule_id,))),
                           None) or next((m for m in reversed(ruleset.include_keys) if m.layer > lock.layer), None)
            spot = where(culprit.path, culprit.line, culprit.key) if culprit else ruleset.path
            raise ConfigError(f"{spot}: leaves out {rule_id}, which {lock.name('rules')} forbids")
        floor = lock.severity.get(rule_id, catalogue[rule_id].severity)
        if selected[rule_id].severity.rank < floor.rank:
            culprit = next(m for m in reversed(later) if m.key == "checks.severity" and m.pattern == rule_id)
            raise ConfigError(f"{where(culprit.path, culprit.line, culprit.key)}: lowers {rule_id} from "
                              f"{floor.value} to {selected[rule_id].severity.value}, which {lock.name('rules')} "
                              "forbids")


def matcher(patterns: Iterable[str]) -> Callable[[Iterable[str]], bool]:
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
