"""JUnit XML for CI test tabs (GitLab `reports: junit`, Jenkins, Azure DevOps, GitHub test reporters).

Shape, built with xml.etree.ElementTree (no extra dependency):

    <testsuites name="checker" tests failures errors skipped time timestamp>
      <testsuite name="RULE-ID" ...>             one suite per rule that fired, most severe first
        <properties/>                             rule title, severity, controls, ruleset and its digest
        <testcase classname="RULE-ID" name="path resource" file line>   one per rule x resource
          <failure message type="high">path:line, message, fix hint, help URL</failure>   open
          <skipped message="suppressed (external): why"/>                                suppressed
      <testsuite name="checker.problems">         one error testcase per thing the scan could not check
        <testcase><error message type/></testcase>

Engines report only what fired, so a rule without findings has no suite: the counts in the
report are exactly the findings (failures + skipped) and the problems (errors) of the scan.

Every text from the scanned repository or the ruleset goes through `_clean`: `printable` (a
newline or an ESC in a resource name cannot forge a line in a CI test tab or a terminal), then
XML's own rules (ElementTree escapes markup; the two noncharacters XML cannot carry become U+FFFD).
Multi-line texts are built from cleaned parts, so only our own line breaks remain.
"""
from __future__ import annotations

import datetime
import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence

from checker.model import Finding, Problem, Rule, ScanResult
from checker.output import printable
from checker.reporters import help_uri_of

PROBLEMS_SUITE = "checker.problems"
# Characters XML 1.0 cannot carry, even escaped, that `printable` leaves (it escapes the controls).
_INVALID_XML = re.compile("[\ufffe\uffff]")


def render(result: ScanResult) -> str:
    root = ET.Element("testsuites", name="checker")
    suites = [_rule_suite(result, rule_id, list(group))
              for rule_id, group in itertools.groupby(_ordered(result.findings), key=lambda f: f.rule_id)]
    if result.problems:
        suites.append(_problem_suite(result, result.problems))
    for suite in suites:
        suite.set("timestamp", result.started)
        root.append(suite)
    for counter in ("tests", "failures", "errors", "skipped"):
        root.set(counter, str(sum(int(s.get(counter, "0")) for s in suites)))
    root.set("time", _seconds(result.started, result.finished))
    root.set("timestamp", result.started)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe rule first, then rule id, file, line and resource (grouped by rule id)."""
    return sorted(findings, key=lambda f: (-f.severity.rank, f.rule_id, f.location, f.resource, f.fingerprint))


def _rule_suite(result: ScanResult, rule_id: str, findings: Sequence[Finding]) -> ET.Element:
    rule = result.rules.get(rule_id)
    suite = ET.Element("testsuite", name=_clean(rule_id))
    props = ET.SubElement(suite, "properties")
    for name, value in _rule_properties(result, rule, findings):
        ET.SubElement(props, "property", name=name, value=_clean(value))
    names = _case_names(findings)
    failures = skipped = 0
    for finding, name in zip(findings, names, strict=True):
        case = ET.SubElement(suite, "testcase", classname=_clean(rule_id), name=_clean(name),
                             file=_clean(finding.location.path), line=str(finding.location.start_line), time="0")
        if finding.suppression is None:
            failures += 1
            failure = ET.SubElement(case, "failure", message=_clean(finding.message), type=finding.severity.value)
            failure.text = _failure_text(finding, rule)
        else:
            skipped += 1
            sup = finding.suppression
            skip = ET.SubElement(case, "skipped", message=f"suppressed ({sup.kind}): {_clean(sup.justification)}")
            skip.text = _skipped_text(finding)
    _counts(suite, tests=len(findings), failures=failures, errors=0, skipped=skipped)
    return suite


def _rule_properties(result: ScanResult, rule: Rule | None, findings: Sequence[Finding]) -> list[tuple[str, str]]:
    first = findings[0]
    props = [("title", rule.title if rule else first.rule_id),
             ("severity", first.severity.value),
             ("engine", rule.engine if rule else "")]
    if rule and rule.controls:
        props.append(("controls", ", ".join(rule.controls)))
    page = help_uri_of(rule, findings) if rule else ""
    if page:
        props.append(("help_uri", page))
    props += [("ruleset", result.ruleset.name), ("ruleset_version", str(result.ruleset.version)),
              ("ruleset_digest", f"sha256:{result.ruleset.digest}")]
    return props


def _case_names(findings: Sequence[Finding]) -> list[str]:
    """`path resource` (or `path` when no resource); equal names are told apart by their line."""
    base = [f"{f.location.path} {f.resource}" if f.resource else f.location.path for f in findings]
    counts: dict[str, int] = {}
    for name in base:
        counts[name] = counts.get(name, 0) + 1
    return [name if counts[name] == 1 else f"{name} (line {f.location.start_line})"
            for name, f in zip(base, findings, strict=True)]


def _failure_text(finding: Finding, rule: Rule | None) -> str:
    lines = [_where(finding),
             f"rule: {_clean(finding.rule_id)}" + (f" {_clean(rule.title)}" if rule else ""),
             f"severity: {finding.severity.value}"]
    if finding.resource:
        lines.append(f"resource: {_clean(finding.resource)}")
    hint = fix_hint(rule, finding.kind)
    if hint:
        lines.append(f"fix: {_clean(hint)}")
    page = rule.help_uri_for(finding.kind) if rule else ""
    if page and page not in hint:
        lines.append(f"more: {_clean(page)}")
    return "\n".join(lines)


def _where(finding: Finding) -> str:
    """`path:line: message`, the first line of a failure or skipped text."""
    return f"{_clean(finding.location.path)}:{finding.location.start_line}: {_clean(finding.message)}"


def _skipped_text(finding: Finding) -> str:
    sup = finding.suppression
    assert sup is not None
    lines = [_where(finding), f"suppressed ({sup.kind}): {_clean(sup.justification)}"]
    if sup.source:
        lines.append(f"by: {_clean(sup.source)}")
    lines.extend(f"{_clean(key)}: {_clean(', '.join(map(str, value)) if isinstance(value, list) else str(value))}"
                 for key, value in sup.properties().items())
    return "\n".join(lines)


def fix_hint(rule: Rule | None, kind: str = "") -> str:
    """The first paragraph of the rule's remediation, on one line, for a finding of that kind (`Rule.fix_hint`).

    A paragraph that ends in a colon introduces an example: a one-line example is kept with it. The rule's
    page for the kind, where it is not in the text, is the failure's `more:` line.
    """
    text, example, _ = rule.fix_hint(kind) if rule else ("", "", "")
    return f"{text} {example}" if example else text


def _problem_suite(result: ScanResult, problems: Sequence[Problem]) -> ET.Element:
    suite = ET.Element("testsuite", name=PROBLEMS_SUITE)
    names: dict[str, int] = {}
    for problem in problems:
        name = f"{problem.path}:{problem.line}" if problem.line else (problem.path or "scan")
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name} ({names[name]})"
        attrs = {"classname": PROBLEMS_SUITE, "name": _clean(name), "time": "0"}
        if problem.path:
            attrs["file"] = _clean(problem.path)
        if problem.line:
            attrs["line"] = str(problem.line)
        case = ET.SubElement(suite, "testcase", attrs)
        error = ET.SubElement(case, "error", message=_clean(problem.message),
                              type=_clean(problem.source or "ScanError"))
        error.text = f"could not check: {_clean(str(problem))}\nThe gate fails closed (exit 3) until this is fixed."
    _counts(suite, tests=len(problems), failures=0, errors=len(problems), skipped=0)
    return suite


def _counts(suite: ET.Element, **counts: int) -> None:
    for name, value in counts.items():
        suite.set(name, str(value))
    suite.set("time", "0")


def _seconds(started: str, finished: str) -> str:
    try:
        start = datetime.datetime.fromisoformat(started.replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(finished.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return "0"
    return f"{max((end - start).total_seconds(), 0.0):.3f}"


def _clean(text: object) -> str:
    """Scanned or ruleset text, safe for a terminal, a CI test tab and XML 1.0."""
    return _INVALID_XML.sub("\ufffd", printable(str(text)))
