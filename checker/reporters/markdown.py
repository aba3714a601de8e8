"""A Markdown summary for `$GITHUB_STEP_SUMMARY` or a merge-request comment.

The verdict first (a plain badge, no emoji), then which ruleset decided it, counts by severity,
the top open findings (most severe first, at most 50, linked to the line when the scan knows
the repository and commit), what could not be checked (why the gate failed closed) and the
waivers that expire soon. The SARIF file stays the complete record; this is the digest.

Text from the scanned repository or the ruleset (paths, resource names, messages, problems,
notes, justifications, the ruleset's name) can neither break a table nor forge a line, a link,
an image or HTML: it goes through `printable` (control and bidi characters become visible
escapes), then onto one line, then Markdown's own escaping (code spans, or escaped punctuation).
"""
from __future__ import annotations

import datetime
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path

from checker.model import Finding, Rule, ScanResult, Severity, Suppression
from checker.output import printable

TOP = 50
EXPIRING_DAYS = 14
MESSAGE_WIDTH = 240
FIX_WIDTH = 480  # our fixes for Checkov's checks run to some 400 characters, and a fix cut short misleads
MAX_NOTES = 20  # GitHub truncates a step summary over 1 MiB: every section is bounded
# Punctuation that would make scanned text a link, an image, emphasis, code or an escape.
_MARKUP = re.compile(r"([\\`*_\[\]~])")


def render(result: ScanResult) -> str:
    """The summary; waivers "expiring soon" are counted from the day the scan finished, so the
    same result always renders the same text."""
    today = datetime.date.fromisoformat(result.finished[:10])
    decision = result.decision
    open_findings = [f for f in result.findings if f.is_open]
    out = [f"## Compliance gate: {decision.verdict}", "",
           f"**Gate: {decision.verdict}** - {decision.reason} (fail_on: `{result.fail_on}`)", ""]
    out += _ruleset(result)
    out += ["### Findings by severity", ""]
    out += _table(["Severity", "Open", "Suppressed", "In the baseline", "Blocks the gate"], _counts(result))
    out.append("")
    if open_findings:
        top = sorted(open_findings, key=lambda f: (-f.severity.rank, f.location, f.rule_id, f.resource))[:TOP]
        out += [f"### Top findings ({len(top)} of {len(open_findings)} open)", ""]
        out += _table(["Severity", "Rule", "Location", "Resource", "Message", "How to fix"],
                      [_finding_row(result, f) for f in top])
        if len(open_findings) > TOP:
            out += ["", f"{len(open_findings) - TOP} more open finding(s) are in the SARIF report."]
        out.append("")
    else:
        out += ["No open findings.", ""]
    if result.problems:
        out += ["### Could not check (the gate fails closed)", ""]
        out += _table(["Location", "Problem", "Source"],
                      [[_code(f"{p.path}:{p.line}" if p.line else (p.path or "(scan)")),
                        _text(_shorten(p.message)), _text(p.source)]
                       for p in result.problems[:TOP]])
        if len(result.problems) > TOP:
            out += ["", f"{len(result.problems) - TOP} more in the SARIF report's invocation notifications."]
        out.append("")
    expiring = expiring_waivers(result.findings, today)
    if expiring:
        out += [f"### Waivers expiring within {EXPIRING_DAYS} days", ""]
        out += _table(["Expires", "Rule", "Location", "Approved by", "Reason"],
                      [[str(suppression.expires), _code(f.rule_id), _location(result, f),
                        _text(suppression.approved_by), _text(suppression.justification)]
                       for f, suppression in expiring[:TOP]])
        if len(expiring) > TOP:
            out += ["", f"{len(expiring) - TOP} more waiver(s) expire within {EXPIRING_DAYS} days."]
        out.append("")
    if result.notes:
        out += ["### Notes", ""]
        out += [f"- {_text(_shorten(note, 500))}" for note in result.notes[:MAX_NOTES]]
        if len(result.notes) > MAX_NOTES:
            out.append(f"- and {len(result.notes) - MAX_NOTES} more in the SARIF report")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _ruleset(result: ScanResult) -> list[str]:
    rs = result.ruleset
    lines = [f"- Ruleset: {_code(rs.name)} version {_code(rs.version)}, digest `sha256:{rs.digest}`",
             f"- Scanned: {len(result.targets)} file(s) with {len(result.rules)} rule(s)"]
    change = result.change
    if change.commit:
        where = f" of {_prose(change.repository)}" if change.repository else ""
        dirty = ", with uncommitted changes" if change.dirty else ""
        lines.append(f"- Commit: {_code(change.commit)}{where}"
                     + (f" (branch {_code(change.branch)}{dirty})" if change.branch else f"{dirty}"))
    if change.tickets:
        lines.append("- Tickets: " + ", ".join(_code(t.id) for t in change.tickets))
    lines.append("")
    return lines


def _counts(result: ScanResult) -> list[list[str]]:
    """Findings by severity, counted as the gate and the text report count them: open ones are
    neither suppressed nor unchanged since the baseline."""
    blocking = {id(f) for f in result.decision.blocking}
    rows = []
    for sev in [*Severity, None]:
        of_sev = [f for f in result.findings if sev is None or f.severity is sev]
        counts = (sum(f.is_open for f in of_sev), sum(f.suppression is not None for f in of_sev),
                  sum(f.suppression is None and not f.is_open for f in of_sev), sum(id(f) in blocking for f in of_sev))
        rows.append([sev.value, *map(str, counts)] if sev else ["**total**", *(f"**{n}**" for n in counts)])
    return rows


def _finding_row(result: ScanResult, f: Finding) -> list[str]:
    rule = result.rules.get(f.rule_id)
    page = rule.help_uri_for(f.kind) if rule else ""  # for its kind of file: a Checkov check has a page per framework
    rule_cell = f"[{_code(f.rule_id)}]({page})" if page else _code(f.rule_id)
    return [f.severity.value, rule_cell, _location(result, f), _code(f.resource) if f.resource else "",
            _text(_shorten(f.message)), _fix(rule, f.kind)]


def _fix(rule: Rule | None, kind: str) -> str:
    """The fix hint for a finding of that kind; empty when it only points at the rule's page (the rule id
    links there), which is also why the page a hint carries for the line under it is left out."""
    text, example, _ = rule.fix_hint(kind) if rule else ("", "", "")
    page = rule.help_uri_for(kind) if rule else ""
    if page and page in text:
        return ""
    return _prose(_shorten(text, FIX_WIDTH)) + (f" {_code(_shorten(example))}" if example else "")


def _location(result: ScanResult, f: Finding) -> str:
    text = f"{f.location.path}:{f.location.start_line}"
    url = blob_url(result, f.location.path, f.location.start_line)
    return f"[{_code(text)}]({url})" if url else _code(text)


def blob_url(result: ScanResult, path: str, line: int) -> str:
    """`{repo}/blob/{commit}/{path}#L{line}` (GitLab: `/-/blob/`), or '' without repository and commit.

    Finding paths are relative to the scan root; the URL needs them relative to the repository.
    A finding about a missing file (a CODEOWNERS the repository lacks) gets no link.
    """
    repo = result.change.repository.rstrip("/")
    commit = result.change.commit
    if not repo or not commit or not (Path(result.root) / path).is_file():
        return ""  # no repository to link to, or a finding about a file that is missing
    prefix = ""
    top = result.change.toplevel
    if top:
        try:
            rel = Path(result.root).resolve().relative_to(Path(top).resolve()).as_posix()
        except ValueError:
            rel = "."
        prefix = "" if rel == "." else rel + "/"
    blob = "/-/blob/" if "gitlab" in urllib.parse.urlsplit(repo).netloc else "/blob/"
    anchor = f"#L{line}" if line > 0 else ""
    return f"{repo}{blob}{commit}/{urllib.parse.quote(prefix + path)}{anchor}"


def expiring_waivers(findings: Iterable[Finding], today: datetime.date,
                     days: int = EXPIRING_DAYS) -> list[tuple[Finding, Suppression]]:
    """Findings suppressed by a ruleset waiver ('external') that expires within `days` of today."""
    soon = []
    for f in findings:
        if f.suppression is None or f.suppression.kind != "external":
            continue
        try:
            expires = datetime.date.fromisoformat(f.suppression.expires)
        except ValueError:
            continue
        if 0 <= (expires - today).days <= days:
            soon.append((expires, f, f.suppression))
    return [(f, s) for _, f, s in sorted(soon, key=lambda item: (item[0], item[1].rule_id, item[1].location))]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [_row(header), "|" + "|".join(" --- " for _ in header) + "|"]
    for row in rows:
        assert len(row) == len(header)
        lines.append(_row(row))
    return lines


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(text: str) -> str:
    """One table cell: on one line, with `|` escaped (GitHub and GitLab honour `\\|`, even in code)."""
    return _inline(text).replace("|", "\\|")


def _inline(text: object) -> str:
    """On one line, with no control or bidi character (those are shown as escapes)."""
    return " ".join(printable(str(text)).split())


def _prose(text: object) -> str:
    """Our rules' own prose (fix hints): its Markdown kept, raw HTML shown as text."""
    return _inline(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(text: object) -> str:
    """Text from the scanned repository or a ruleset: shown as it is, never as markup or HTML."""
    return _MARKUP.sub(r"\\\1", _prose(text))


def _code(text: object) -> str:
    """A code span (paths, resources, ids): a backtick inside would end it, so it becomes a quote."""
    text = _inline(text).replace("`", "'")
    return f"`{text}`" if text else ""


def _shorten(text: str, width: int = MESSAGE_WIDTH) -> str:
    text = _inline(text)
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."
