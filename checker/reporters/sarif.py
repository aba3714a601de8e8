"""SARIF 2.1.0 built with sarif-om from our Finding model (never from Checkov's own SARIF).

One run per scan. GitHub reads the first location of a result and needs one on every result,
keeps the top 5,000 results of a run, and rejects files over 10 MB gzipped; findings are
therefore sorted most severe first so what GitHub keeps is what matters most.

Artifact URIs are percent-encoded (RFC 3986) from the file's path relative to the repository:
a file name may hold spaces, `%`, `#`, `?`, `:`, non-ASCII letters or even a newline, and each
must stay one valid relative reference; `checker.baseline` decodes them back to the path.
"""
from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attr
import sarif_om as om

from checker import output
from checker.engines.registry import ENGINES
from checker.model import FINGERPRINT_KEY, Finding, Problem, Rule, ScanResult
from checker.reporters import gap_hint, help_uri_of

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/paved-road/checker"
SRCROOT = "%SRCROOT%"
# Characters json.dumps(ensure_ascii=False) leaves raw that only ever occur inside JSON strings.
_INVISIBLE = re.compile(f"[{output.INVISIBLE}]")


def render(result: ScanResult) -> str:
    """The complete audit record: every result with its suppression and baseline state."""
    return serialize(build(result, alerts_only=False))


def render_alerts(result: ScanResult) -> str:
    """The code-scanning view of the same run: only results that should be open alerts.

    GitHub code scanning ignores `suppressions` and `baselineState`, so anything suppressed or
    already in the baseline would show as an open alert; rules and fingerprints stay the same.
    """
    return serialize(build(result, alerts_only=True))


def build(result: ScanResult, alerts_only: bool = False) -> om.SarifLog:
    found: dict[str, list[Finding]] = {}
    for f in result.findings:  # every finding, as the rules are the same in both views
        found.setdefault(f.rule_id, []).append(f)
    listed = {engine.name for engine in ENGINES if engine.lists_every_rule}
    rules = [r for r in sorted(result.rules.values(), key=lambda r: r.id) if r.id in found or r.engine in listed]
    index = {r.id: i for i, r in enumerate(rules)}
    taxonomies = _taxonomies(result, rules)
    refs = _taxon_refs(rules, taxonomies)
    prefix = repo_prefix(result)
    shown = [f for f in result.findings if f.is_open] if alerts_only else result.findings
    findings = sorted(shown, key=lambda f: (-f.severity.rank, f.location, f.rule_id))
    decision = result.decision
    run = om.Run(
        tool=om.Tool(driver=om.ToolComponent(
            name="checker", semantic_version=result.versions.get("checker"),
            version=result.versions.get("checker"), information_uri=INFORMATION_URI,
            rules=[_rule(r, refs[r.id], help_uri_of(r, found.get(r.id, ()))) for r in rules],
            supported_taxonomies=[om.ToolComponentReference(name=t.name, index=i)
                                  for i, t in enumerate(taxonomies)] or None,
        )),
        taxonomies=taxonomies or None,
        results=[_result(f, index, prefix, refs.get(f.rule_id, [])) for f in findings],
        invocations=[om.Invocation(
            execution_successful=not result.problems,
            start_time_utc=result.started, end_time_utc=result.finished,
            exit_code=decision.exit_code,
            tool_execution_notifications=[_notification(p, prefix, result.rules) for p in result.problems] or None,
        )],
        automation_details=om.RunAutomationDetails(id=f"checker/{result.ruleset.name}/{_root_name(result)}/"),
        original_uri_base_ids={SRCROOT: om.ArtifactLocation(uri=_file_uri(result))},
        version_control_provenance=_provenance(result),
        column_kind="utf16CodeUnits",
        properties=om.PropertyBag(),
    )
    run.properties = {**run_properties(result), "view": "code-scanning alerts" if alerts_only
                      else "complete audit record", "notes": list(result.notes)}
    if result.fixed:
        run.properties["fixedSinceBaseline"] = list(result.fixed)
    return om.SarifLog(version="2.1.0", schema_uri=SCHEMA_URI, runs=[run])


def run_properties(result: ScanResult) -> dict[str, Any]:
    """What the scan was and decided: the ruleset (every layer named `bundled:NAME` or relative to
    the repository, never by a path of this machine), versions, the gate, the change (commit
    always, with or without a remote), what was scanned (scope) and the baseline. `checker gate` and
    the evidence read it back.
    """
    ruleset = result.ruleset
    decision = result.decision
    props: dict[str, Any] = {
        "ruleset": {
            "name": ruleset.name, "version": ruleset.version, "digest": f"sha256:{ruleset.digest}",
            "base": {"name": ruleset.base_layer[0], "digest": f"sha256:{ruleset.base_layer[1]}"}
            if ruleset.base_layer else None,
            "layers": [{"name": layer.name, "file": layer.path, "digest": f"sha256:{layer.digest}"}
                       for layer in ruleset.layers],
            "lockedFailOn": ruleset.locked_fail_on,
        },
        "versions": dict(result.versions),
        "gate": {"failOn": result.fail_on, "verdict": decision.verdict, "reason": decision.reason},
        "change": result.change.as_dict(),
        "scope": {"paths": list(result.scope), "wholeRepository": bool(result.change.toplevel)
                  and result.scope == (".",), "files": len(result.targets), "rules": len(result.rules)},
    }
    if result.baseline_digest:
        props["baseline"] = {"digest": f"sha256:{result.baseline_digest}"}
    return props


def _taxonomies(result: ScanResult, rules: list[Rule]) -> list[om.ToolComponent]:
    """One taxonomy per compliance framework; its taxa are the controls the shown rules support."""
    titles: dict[str, dict[str, str]] = {}
    for rule in rules:
        for control in rule.controls:
            framework, _, control_id = control.partition(":")
            spec = result.ruleset.controls.get(framework, {}).get(control_id, {})
            titles.setdefault(framework, {})[control_id] = spec.get("title", "")
    return [
        om.ToolComponent(
            name=framework, organization="checker ruleset " + result.ruleset.name,
            short_description=om.MultiformatMessageString(text=f"{framework} controls mapped by the ruleset."),
            taxa=[om.ReportingDescriptor(
                id=control_id,
                short_description=om.MultiformatMessageString(text=_sentence(title)) if title else None)
                for control_id, title in sorted(controls.items())],
        )
        for framework, controls in sorted(titles.items())
    ]


def _taxon_refs(rules: list[Rule], taxonomies: list[om.ToolComponent]) -> dict[str, list[Any]]:
    """Rule id -> references to the taxa (controls) it supports; shared by rules and their results."""
    where = {(t.name, taxon.id): (t_index, x_index)
             for t_index, t in enumerate(taxonomies) for x_index, taxon in enumerate(t.taxa)}
    refs: dict[str, list[Any]] = {}
    for rule in rules:
        refs[rule.id] = []
        for control in rule.controls:
            framework, _, control_id = control.partition(":")
            tax, taxon = where[(framework, control_id)]
            refs[rule.id].append(om.ReportingDescriptorReference(
                id=control_id, index=taxon, tool_component=om.ToolComponentReference(name=framework, index=tax)))
    return refs


def _rule(rule: Rule, taxa: list[Any], help_uri: str) -> om.ReportingDescriptor:
    """A rule's descriptor; `help_uri` is its page for the kind of file most of its findings are in
    (`help_uri_of`), and its help names every page and shows every corrected file (`_how_to_fix`)."""
    markdown = f"**{rule.title}**\n\n{rule.help or rule.description}\n\n"
    if rule.rationale:
        markdown += f"**Why**: {rule.rationale}\n\n"
    fix_text, fix_markdown = _how_to_fix(rule)
    if fix_markdown:
        markdown += f"**How to fix**\n\n{fix_markdown}\n\n"
    if rule.controls:
        markdown += "**Controls**: " + ", ".join(rule.controls) + "\n"
    why = f" Why: {rule.rationale}" if rule.rationale else ""
    text = f"{rule.title}. {rule.help or rule.description}{why} How to fix: {fix_text}".strip()
    return om.ReportingDescriptor(
        id=rule.id, name=_pascal(rule.title),
        short_description=om.MultiformatMessageString(text=_sentence(rule.title)),
        full_description=om.MultiformatMessageString(text=_sentence(rule.description or rule.title)),
        help=om.MultiformatMessageString(text=text, markdown=markdown.strip()),
        help_uri=help_uri or None,
        default_configuration=om.ReportingConfiguration(level=rule.severity.sarif_level),
        properties={
            "tags": sorted(set(rule.tags) | {"security"}),
            "security-severity": rule.severity.security_severity,
            "severity": rule.severity.value,
            "engine": rule.engine,
            **({"controls": list(rule.controls)} if rule.controls else {}),
        },
        relationships=[om.ReportingDescriptorRelationship(target=ref, kinds=["relevant"]) for ref in taxa] or None,
    )


def _how_to_fix(rule: Rule) -> tuple[str, str]:
    """The remediation as help text and Markdown: for a rule with corrected files (our fixes for Checkov's
    checks), each file after it, fenced with its language in Markdown; for a rule with a page per kind of
    file, every page (the remediation of a check without our fix ends in a colon that introduces them).

    A rule's help is one for all its findings, so it shows every kind's file and page; which one fits a
    finding is the text report's and `rules explain`'s to say.
    """
    text, markdown = rule.remediation, rule.remediation
    for example in rule.examples:
        text += f"\n\n{example.heading()}\n\n{example.text.rstrip()}"
        markdown += f"\n\n{example.heading()}\n\n{_fenced(example.text, example.language)}"
    pages = rule.pages()
    if pages:
        listed = "; ".join(f"{', '.join(kinds)}: {uri}" for kinds, uri in pages)
        linked = ", ".join(f"[{', '.join(kinds)}]({uri})" for kinds, uri in pages)
        more = " " if rule.remediation.endswith(":") else "\n\nMore: "
        text, markdown = f"{text}{more}{listed}", f"{markdown}{more}{linked}"
    return text, markdown


def _fenced(text: str, language: str) -> str:
    """A Markdown code block, its fence longer than any run of backticks in the text."""
    fence = "`" * max([3, *(len(run) + 1 for run in re.findall(r"`+", text))])
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _result(f: Finding, index: dict[str, int], prefix: str, taxa: list[Any]) -> om.Result:
    location = om.Location(
        physical_location=om.PhysicalLocation(
            artifact_location=om.ArtifactLocation(uri=artifact_uri(prefix + f.location.path), uri_base_id=SRCROOT),
            region=om.Region(start_line=f.location.start_line, end_line=f.location.end_line),
        ),
        logical_locations=[om.LogicalLocation(fully_qualified_name=f.resource)] if f.resource else None,
    )
    out = om.Result(
        rule_id=f.rule_id, rule_index=index.get(f.rule_id, -1), level=f.severity.sarif_level,
        message=om.Message(text=_sentence(f.message)), locations=[location],
        partial_fingerprints={FINGERPRINT_KEY: f.fingerprint},
        properties={"severity": f.severity.value, **({"resource": f.resource} if f.resource else {})},
        baseline_state=f.baseline_state or None,
        taxa=taxa or None,
    )
    if f.suppression:
        out.suppressions = [om.Suppression(
            kind=f.suppression.kind, state="accepted", justification=f.suppression.justification,
            properties={"source": f.suppression.source, **f.suppression.properties()},
        )]
    return out


def _notification(problem: Problem, prefix: str, rules: Mapping[str, Rule]) -> om.Notification:
    """A problem as an error notification; a check that raised is its `associatedRule`, and the message says
    what covers its ground and how to accept the gap (`gap_hint`)."""
    locations = None
    if problem.path:
        region = om.Region(start_line=problem.line) if problem.line else None
        locations = [om.Location(physical_location=om.PhysicalLocation(
            artifact_location=om.ArtifactLocation(uri=artifact_uri(prefix + problem.path), uri_base_id=SRCROOT),
            region=region))]
    hint, example = gap_hint(problem, rules)
    text = f"{_sentence(str(problem))} {hint} `{example}`" if hint else str(problem)
    return om.Notification(level="error", message=om.Message(text=_sentence(text)), locations=locations,
                           associated_rule=om.ReportingDescriptorReference(id=problem.rule) if problem.rule else None)


def _provenance(result: ScanResult) -> list[om.VersionControlDetails] | None:
    """SARIF's place for the commit needs a repository URI; without one the commit is in the run
    properties (`change`) only."""
    change = result.change
    if not change.commit or not change.repository:
        return None
    return [om.VersionControlDetails(
        repository_uri=change.repository, revision_id=change.commit, branch=change.branch or None,
        mapped_to=om.ArtifactLocation(uri_base_id=SRCROOT),
    )]


def repo_prefix(result: ScanResult) -> str:
    """Result URIs are relative to the repository root (what code scanning resolves against)."""
    top = result.change.toplevel
    if not top:
        return ""
    rel = Path(result.root).resolve().relative_to(Path(top).resolve()).as_posix()
    return "" if rel == "." else rel + "/"


def artifact_uri(path: str) -> str:
    """A POSIX path relative to %SRCROOT% as a relative URI reference (RFC 3986): every character
    but unreserved ones and `/` percent-encoded from UTF-8 (a name that is not UTF-8 from its bytes).

    `:` is encoded too, so a first segment like `a:b.yaml` is never read as a URI scheme.
    """
    return urllib.parse.quote(path, safe="/", errors="surrogateescape")


def _file_uri(result: ScanResult) -> str:
    """The scan's base as a file URI ending in `/` (pathlib percent-encodes it from its bytes)."""
    uri = Path(result.change.toplevel or result.root).resolve().as_uri()
    return uri if uri.endswith("/") else uri + "/"


def _root_name(result: ScanResult) -> str:
    return repo_prefix(result).rstrip("/") or Path(result.root).name or "root"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _pascal(title: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.findall(r"[A-Za-z0-9]+", title)) or "Rule"


def serialize(log: om.SarifLog) -> str:
    """Readable UTF-8 JSON, except that characters which could disturb a terminal or an editor
    (DEL, C1 controls, bidi and line-separator characters, lone surrogates) stay \\u escapes:
    the same data, and a file that can always be written as UTF-8 (json already escapes C0)."""
    return _INVISIBLE.sub(_json_escape, json.dumps(_sarif_data(log), indent=2, ensure_ascii=False)) + "\n"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _sarif_data(value: Any) -> Any:
    """sarif-om objects -> JSON data: unset fields dropped, schema names used.

    sarif-om 1.0.4 names Suppression's `status` "state"; SARIF 2.1.0 says `status`.
    """
    if attr.has(type(value)):
        out = {}
        for field in attr.fields(type(value)):
            item = getattr(value, field.name)
            if item is None or (field.default is not attr.NOTHING and item == field.default
                                and not isinstance(item, (list, dict))):
                continue
            name = field.metadata["schema_property_name"]
            if isinstance(value, om.Suppression) and name == "state":
                name = "status"
            out[name] = _sarif_data(item)
        return out
    if isinstance(value, dict):
        return {k: _sarif_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (isinstance(value, Iterable) and not isinstance(value, str)):
        return [_sarif_data(v) for v in value]
    return value
