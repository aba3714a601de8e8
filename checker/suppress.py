"""Suppressions, a stage of their own after checking: inline comments and ruleset waivers.

Whether a check fired is decided by the engines; whether a finding counts is decided here.
Suppressed findings are kept, marked with how and why, never dropped. A waiver may also accept the gap a
crashed check leaves (a Problem naming its rule, at one of the waiver's paths): that problem no longer
fails the scan, and a note records which waiver accepted it, so the decision stays in the evidence.
"""
from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import re
from collections.abc import Sequence
from pathlib import Path

import pathspec

from checker.model import Finding, Problem, Suppression
from checker.ruleset import Waiver

# `# checker:ignore ORG-GHA-001,CKV_K8S_20 -- reason` (also after `//` in HCL and JSON-ish files)
INLINE = re.compile(r"(?:#|//)\s*checker:ignore\s+(?P<ids>[A-Za-z0-9_*,\- ]+?)\s*(?:--\s*(?P<reason>.*\S))?\s*$")


@dataclasses.dataclass(frozen=True)
class Suppressed:
    """The findings, each marked suppressed or not, and what the ruleset's author should know."""

    findings: list[Finding]
    notes: list[str]
    problems: list[Problem] = dataclasses.field(default_factory=list)  # those no waiver accepted


EXPIRY_WARNING = datetime.timedelta(days=14)


def apply(findings: Sequence[Finding], root: Path, waivers: Sequence[Waiver], allow_inline: bool,
          forbid_inline: Sequence[str], today: datetime.date, problems: Sequence[Problem] = ()) -> Suppressed:
    """Mark findings suppressed by an inline comment or an unexpired waiver, and keep the problems no
    unexpired waiver accepts.

    Inline suppressions do not count when the ruleset forbids them (altogether or for the rule):
    then only approved waivers do; an inline comment never accepts a crash. Notes report waivers expired,
    expiring soon, or matching nothing, and each crash a waiver accepted.
    """
    notes: list[str] = []
    lines = _LineCache(root)
    prepared = [_Compiled(w) for w in waivers]
    used: set[int] = set()
    out = []
    for finding in findings:
        inline_ok = allow_inline and not any(fnmatch.fnmatchcase(finding.rule_id, p) for p in forbid_inline)
        if finding.suppression is not None and not inline_ok:
            notes.append(f"{finding.location.path}:{finding.location.start_line}: inline suppression of "
                         f"{finding.rule_id} is not allowed by the ruleset; only an approved waiver counts")
            finding = dataclasses.replace(finding, suppression=None)
        if finding.suppression is None:
            suppression = _inline(finding, lines, notes, inline_ok)
            suppression = suppression or _waiver(finding, prepared, today, notes, used)
            if suppression:
                finding = dataclasses.replace(finding, suppression=suppression)
        out.append(finding)
    left = [problem for problem in problems if not _accepted(problem, prepared, today, notes, used)]
    for i, waiver in enumerate(waivers):
        if i not in used and waiver.expires >= today:
            notes.append(f"waiver for {waiver.rule} ({waiver.where}) matches no finding: a stale exception; remove it")
        elif today <= waiver.expires <= today + EXPIRY_WARNING:
            notes.append(f"waiver for {waiver.rule} ({waiver.where}) expires on {waiver.expires}, in "
                         f"{(waiver.expires - today).days} day(s)")
    return Suppressed(out, list(dict.fromkeys(notes)), left)


class _LineCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, list[str]] = {}

    def __call__(self, path: str) -> list[str]:
        if path not in self.cache:
            try:
                self.cache[path] = (self.root / path).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                self.cache[path] = []
        return self.cache[path]


def _inline(finding: Finding, lines: _LineCache, notes: list[str], allowed: bool) -> Suppression | None:
    text = lines(finding.location.path)
    line = finding.location.start_line
    for number in (line, line - 1):
        if not 1 <= number <= len(text):
            continue
        match = INLINE.search(text[number - 1])
        if not match:
            continue
        ids = [i for i in re.split(r"[,\s]+", match["ids"]) if i]
        if finding.rule_id not in ids:
            if any("*" in i and fnmatch.fnmatchcase(finding.rule_id, i) for i in ids):
                notes.append(f"{finding.location.path}:{number}: `checker:ignore` names rules exactly, so its "
                             f"pattern does not suppress {finding.rule_id}; name the rule")
            continue
        if not allowed:
            notes.append(f"{finding.location.path}:{number}: inline suppression of {finding.rule_id} is not allowed "
                         "by the ruleset; only an approved waiver counts")
            return None
        if not match["reason"]:
            notes.append(f"{finding.location.path}:{number}: `checker:ignore {finding.rule_id}` has no reason "
                         "(write `-- why`), so it does not suppress")
            return None
        return Suppression("inSource", match["reason"], f"{finding.location.path}:{number}")
    return None


class _Compiled:
    """A waiver with its paths compiled, once per scan."""

    def __init__(self, waiver: Waiver) -> None:
        self.waiver = waiver
        self.spec = pathspec.GitIgnoreSpec.from_lines(waiver.paths) if waiver.paths else None

    def covers(self, rule: str, path: str) -> bool:
        """The waiver's rule, at one of its paths (anywhere when it names none)."""
        if self.waiver.rule != rule:
            return False
        return self.spec is None or self.spec.match_file(path)


def _accepted(problem: Problem, waivers: Sequence[_Compiled], today: datetime.date, notes: list[str],
              used: set[int]) -> bool:
    """Whether an unexpired waiver for the rule whose check raised covers the problem's file (noted)."""
    if not problem.rule:
        return False  # only a check that raised leaves a gap a waiver can name
    for i, compiled in enumerate(waivers):
        waiver = compiled.waiver
        if not compiled.covers(problem.rule, problem.path) or waiver.expires < today:
            continue
        used.add(i)
        notes.append(f"{problem.path}: {problem.rule} could not check it ({problem.message}); the gap is accepted "
                     f"by the waiver at {waiver.where} ({waiver.reason}; approved by {waiver.approved_by}, expires "
                     f"{waiver.expires})")
        return True
    return False


def _waiver(finding: Finding, waivers: Sequence[_Compiled], today: datetime.date,
            notes: list[str], used: set[int]) -> Suppression | None:
    for i, compiled in enumerate(waivers):
        if not compiled.covers(finding.rule_id, finding.location.path):
            continue
        waiver = compiled.waiver
        if waiver.expires < today:
            notes.append(f"waiver for {waiver.rule} ({waiver.where}) expired on {waiver.expires}: "
                         "its findings count again")
            continue
        used.add(i)
        return Suppression("external", waiver.reason, waiver.where, approved_by=waiver.approved_by,
                           expires=waiver.expires.isoformat(), paths=waiver.paths or (), ticket=waiver.ticket or "")
    return None
