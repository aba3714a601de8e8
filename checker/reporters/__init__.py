"""Reporters render a ScanResult to a string: one module per format, each with a render function.

`Format` is the registry: each member names its module and function and says what the output is
for. The CLI makes `--format NAME` and `--NAME-output FILE` from it, and
tests/test_formats.py fails when a format lacks its reporter, its option or its README line.
Adding a format: a module here with `render(result) -> str`, a member below, a README row.
What several formats say alike (`gap_hint`, `help_uri_of`) is here too.
"""
from __future__ import annotations

import collections
import enum
import importlib
from collections.abc import Callable, Iterable, Mapping

from checker.model import Finding, Problem, Rule, ScanResult

Renderer = Callable[[ScanResult], str]


class Format(str, enum.Enum):
    """An output format: its name (the enum's value), where its renderer is, and what it is for."""

    module: str
    function: str
    help: str

    def __new__(cls, name: str, module: str, function: str, help: str) -> Format:
        member = str.__new__(cls, name)
        member._value_ = name
        member.module, member.function, member.help = f"checker.reporters.{module}", function, help
        return member

    TEXT = "text", "text", "render", "the report for people: findings by file, a fix each, the verdict"
    SARIF = "sarif", "sarif", "render", "the complete SARIF audit record (suppressed and baselined results too)"
    CODE_SCANNING = ("code-scanning", "sarif", "render_alerts",
                     "SARIF with only the open alerts, for GitHub code scanning upload")
    JSON = "json", "json", "render", "our JSON report (schema checker/scan-result/v1)"
    JUNIT = "junit", "junit", "render", "JUnit XML, for CI test tabs"
    MARKDOWN = "markdown", "markdown", "render", "a Markdown summary, e.g. for $GITHUB_STEP_SUMMARY"

    @property
    def option(self) -> str:
        """The scan option that also writes this format to a file."""
        return f"--{self.value}-output"

    def renderer(self) -> Renderer:
        """The render function (its module imported on demand: SARIF's pulls in sarif-om)."""
        render: Renderer = getattr(importlib.import_module(self.module), self.function)
        return render


def gap_hint(problem: Problem, rules: Mapping[str, Rule]) -> tuple[str, str]:
    """(what else covers the ground of a check that raised, and how to accept the gap; the ruleset YAML that
    does), or ("", "") when the problem is not a check that raised.

    A developer whose valid file crashes a Checkov check is otherwise stuck at exit 3. The rules the scan
    ran (selected, active) that find the same class of issue (`Rule.covers`) are named; the ways out are
    reviewed decisions: an approved, expiring waiver of the check for that file (checker.suppress accepts
    the gap and notes it), or leaving the check out in the ruleset where a base layer's `locks.rules`
    allows it.
    """
    if not problem.rule:
        return "", ""
    covering = sorted(r.id for r in rules.values() if problem.rule in r.covers and not r.inactive_reason)
    verb = "covers" if len(covering) == 1 else "cover"
    ground = f"Our {' and '.join(covering)} {verb} the same ground." if covering else (
        "None of our own rules in this ruleset covers the same ground.")
    where = f", paths: [{problem.path}]" if problem.path else ""
    accept = (f"To accept the gap deliberately, exclude the check in the ruleset (`checks: {{exclude: "
              f"[{problem.rule}]}}`; if a base layer locks it, only that layer can), or waive it"
              f"{' for this file' if problem.path else ''}, approved and expiring:")
    return f"{ground} {accept}", (f"waivers: [{{rule: {problem.rule}{where}, reason: ..., approved_by: ..., "
                                  "expires: ...}]")


def help_uri_of(rule: Rule, findings: Iterable[Finding]) -> str:
    """The one page a report names for a rule as a whole (SARIF's helpUri, a JUnit suite's help_uri): its
    page for the kind of file most of its `findings` (this report's of the rule) are in, the first of its
    kinds on a tie.

    A Checkov check run on several frameworks has a page per framework (`Rule.help_uris`), and a rule
    has one helpUri: the page a developer needs is the one of the files they have (a CloudFormation
    repository, the CloudFormation page), whichever framework Checkov lists first. Without findings, or
    for a rule with one page, it is `help_uri`.
    """
    counts = collections.Counter(f.kind for f in findings if f.kind in rule.kinds)
    if not counts:
        return rule.help_uri
    kind = min(counts, key=lambda k: (-counts[k], rule.kinds.index(k)))
    return rule.help_uri_for(kind)
