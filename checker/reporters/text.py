"""Human-readable report: findings grouped by file, a fix hint each, counts and the verdict.

A fix hint fits the kind of file the finding is in (`Rule.fix_hint`): a Checkov check found in a
CloudFormation template points at the CloudFormation page of Checkov's policy index, and at our
corrected CloudFormation template when checker/fixes has one.

Under a check that raised (Checkov's on a valid file, say), the hint says which of our rules cover its
ground and how to leave it out (`gap_hint`).

Colour comes from click.style; click.echo strips it when the output is not a terminal.
Every text from the scanned repository or the ruleset (paths, messages, resource names, problems,
notes, justifications, fix hints, the ruleset's name) goes through `printable` first, so none of
it can start a line of its own or send the terminal an escape sequence: only our styling does.
"""
from __future__ import annotations

import itertools

import click

from checker.model import Finding, Problem, ScanResult, Severity
from checker.output import printable
from checker.reporters import gap_hint

COLOURS = {Severity.CRITICAL: "magenta", Severity.HIGH: "red", Severity.MEDIUM: "yellow",
           Severity.LOW: "cyan", Severity.INFO: "white"}


def render(result: ScanResult) -> str:
    lines: list[str] = []
    shown = sorted(result.findings, key=lambda f: (f.location.path, f.location.start_line, f.rule_id))
    for path, group in itertools.groupby(shown, key=lambda f: f.location.path):
        lines.append(click.style(printable(path), bold=True))
        lines.extend(_finding(f, result) for f in group)
        lines.append("")
    if result.problems:
        lines.append(click.style("Could not check:", fg="red", bold=True))
        lines.extend(_problem(p, result) for p in result.problems)
        lines.append("")
    for note in result.notes:
        lines.append(f"note: {printable(note)}")
    lines.append(_summary(result))
    return "\n".join(lines) + "\n"


def _finding(f: Finding, result: ScanResult) -> str:
    sev = click.style(f"{f.severity.value.upper():8}", fg=COLOURS[f.severity], bold=f.severity.rank >= 3)
    text = f"  {f.location.start_line:>5}  {sev} {printable(f.rule_id)}  {printable(f.message)}"
    if f.suppression:
        why = printable(f.suppression.justification)
        text += click.style(f"  [suppressed ({f.suppression.kind}): {why}]", dim=True)
        return text
    if f.baseline_state == "unchanged":
        return text + click.style("  [in baseline]", dim=True)
    rule = result.rules.get(f.rule_id)
    hint, example, link = map(printable, rule.fix_hint(f.kind)) if rule else ("", "", "")
    below = example or link  # the one-line example, or the rule's page for this kind of file
    if hint:
        text += "\n" + click.style(f"{'':16}fix: {hint}" + (f"\n{'':21}{below}" if below else ""), dim=True)
    return text


def _problem(p: Problem, result: ScanResult) -> str:
    text = f"  {printable(str(p))}"
    hint, example = map(printable, gap_hint(p, result.rules))
    if hint:
        text += "\n" + click.style(f"{'':4}fix: {hint}\n{'':9}{example}", dim=True)
    return text


def _summary(result: ScanResult) -> str:
    open_findings = [f for f in result.findings if f.is_open]
    counts = ", ".join(f"{sum(f.severity is s for f in open_findings)} {s.value}" for s in Severity)
    suppressed = sum(f.suppression is not None for f in result.findings)
    unchanged = sum(f.suppression is None and f.baseline_state == "unchanged" for f in result.findings)
    baseline = f"; {unchanged} unchanged and {len(result.fixed)} fixed since the baseline" if (
        unchanged or result.fixed) else ""
    decision = result.decision
    colour = "green" if decision.passed else "red"
    return (
        f"{len(result.targets)} file(s) checked with {len(result.rules)} rule(s) of ruleset "
        f"{printable(str(result.ruleset.name))} {printable(str(result.ruleset.version))}\n"
        f"{len(open_findings)} open finding(s): {counts}; {suppressed} suppressed{baseline}; "
        f"{len(result.problems)} could not be checked\n"
        + click.style(f"gate {decision.verdict}", fg=colour, bold=True) + f": {decision.reason} "
        f"(fail_on: {result.fail_on})"
    )
