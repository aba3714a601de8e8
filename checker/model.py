"""The data model shared by every engine, stage and reporter: frozen dataclasses and enums."""
from __future__ import annotations

import dataclasses
import datetime
import enum
import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, NamedTuple, get_args

from checker.change import Change

if TYPE_CHECKING:
    from checker.discover import Source
    from checker.gate import Decision
    from checker.ruleset import Ruleset

FailOn = Literal["critical", "high", "medium", "low", "info", "never"]
"""The gate's threshold: a severity, or never (report only)."""
FAIL_ON_CHOICES: tuple[FailOn, ...] = get_args(FailOn)
SuppressionKind = Literal["inSource", "external"]
"""SARIF's suppression kinds: an inline comment in the file, or a waiver in the ruleset."""
BaselineState = Literal["", "new", "unchanged"]
"""SARIF's baselineState of a finding, or "" when the scan had no baseline."""


def timestamp() -> str:
    """Now, as scans and their evidence record times: RFC 3339 UTC to the second (2026-11-30T01:02:03Z)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Severity(str, enum.Enum):
    """Severity of a rule; ordered from most to least severe."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """4 for critical down to 0 for info."""
        return _RANK[self]

    @property
    def sarif_level(self) -> str:
        return "error" if self.rank >= 3 else "warning" if self.rank == 2 else "note"

    @property
    def security_severity(self) -> str:
        """GitHub's `security-severity` score (a string of a number, as GitHub documents)."""
        return _SECURITY_SEVERITY[self]


_RANK = {Severity.CRITICAL: 4, Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1, Severity.INFO: 0}
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "2.0", Severity.INFO: "0.0",
}


class Kind(str, enum.Enum):
    """What a discovered file is."""

    TERRAFORM = "terraform"
    CLOUDFORMATION = "cloudformation"
    KUBERNETES = "kubernetes"
    HELM = "helm"
    KUSTOMIZE = "kustomize"
    DOCKERFILE = "dockerfile"
    DOCKER_COMPOSE = "docker-compose"
    GITHUB_ACTIONS = "github-actions"
    GITLAB_CI = "gitlab-ci"
    AZURE_PIPELINES = "azure-pipelines"
    REPO = "repo"


@dataclasses.dataclass(frozen=True, order=True)
class Location:
    """Where a finding is: a path relative to the scan root (POSIX), lines from 1."""

    path: str
    start_line: int = 1
    end_line: int = 1
    start_column: int | None = None
    end_column: int | None = None


@dataclasses.dataclass(frozen=True)
class Example:
    """A whole corrected file that passes a rule, written for one kind of file (our Checkov fixes,
    checker/fixes): `rules explain` and SARIF help show it, the text report points at it."""

    name: str  # the kind of file it is written as, in its engine's words (Checkov's framework: terraform)
    label: str  # what it is, for people: "Terraform configuration"
    language: str  # the Markdown code fence's language: hcl, yaml, dockerfile or text
    text: str  # the whole file
    kinds: tuple[str, ...]  # the rule's kinds whose findings it fixes (a Terraform file fixes terraform_json's too)

    def heading(self) -> str:
        """How reports introduce it: `A corrected Terraform configuration (for terraform and terraform_json files):`."""
        kinds = self.kinds
        fits = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}" if kinds else ""
        return f"A corrected {self.label}" + (f" (for {fits} files):" if fits else ":")


class FixHint(NamedTuple):
    """How a report says in brief what to do about a finding (`Rule.fix_hint`)."""

    text: str  # what to do, on one line
    example: str = ""  # a one-line example the text introduces, for the line under it
    link: str = ""  # the rule's page for the finding's kind of file, where the text does not name it


@dataclasses.dataclass(frozen=True)
class Rule:
    """A rule as the ruleset selects it, whatever engine checks it."""

    id: str
    title: str
    severity: Severity
    engine: str
    description: str = ""
    remediation: str = ""
    help_uri: str = ""  # the rule's page; for a finding, `help_uri_for` its kind
    tags: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    inactive_reason: str = ""
    help: str = ""  # the full help text (a Python check's docstring); description is its first paragraph
    rationale: str = ""
    covers: tuple[str, ...] = ()  # other engines' rules whose class of issue this one finds too (Policy.covers)
    examples: tuple[Example, ...] = ()  # corrected files, one per kind of file they are written as
    # (kind, page) where the page depends on the kind of file the finding is in (Checkov's policy index has a
    # page per framework); empty when help_uri is the one page
    help_uris: tuple[tuple[str, str], ...] = ()

    def help_uri_for(self, kind: str) -> str:
        """The rule's page for a finding of that kind (help_uri when the kind has none of its own, or is '')."""
        return next((uri for of, uri in self.help_uris if of == kind), self.help_uri)

    def pages(self) -> list[tuple[tuple[str, ...], str]]:
        """Each page of `help_uris` with the kinds it is the page of, in the order of the rule's kinds."""
        kinds: dict[str, list[str]] = {}
        for kind, uri in self.help_uris:
            kinds.setdefault(uri, []).append(kind)
        return [(tuple(of), uri) for uri, of in kinds.items()]

    def example_for(self, kind: str) -> Example | None:
        """The corrected file that fits a finding of that kind, if there is one."""
        return next((e for e in self.examples if kind in e.kinds), None)

    def fix_hint(self, kind: str = "") -> FixHint:
        """What to do about a finding of that kind (`Finding.kind`), in brief: the first paragraph of the
        remediation on one line, with the one-line example it introduces.

        A paragraph that introduces a longer example ends by pointing at `checker rules explain`,
        which shows it, rather than at a colon with nothing after it. For a rule whose page depends on
        the kind (`help_uris`), the page for this kind is the link; a remediation that is one paragraph
        ending in a colon introduces it ("See the Checkov policy index for X: <page>"), and a corrected
        file that fits the kind is pointed at too.
        """
        paragraphs = re.split(r"\n\s*\n", self.remediation.strip())
        hint = " ".join(paragraphs[0].split())
        link = self.help_uri_for(kind) if self.help_uris else ""
        if hint.endswith(":"):
            if len(paragraphs) > 1 and len(paragraphs[1].strip().splitlines()) == 1:
                return FixHint(hint, paragraphs[1].strip(), link)
            if link and len(paragraphs) == 1:
                return FixHint(f"{hint} {link}")
            hint = f"{hint[:-1]} (`checker rules explain {self.id}` shows how)."
        example = self.example_for(kind)
        if example is not None:
            hint += f" `checker rules explain {self.id}` shows a corrected {example.label}."
        return FixHint(hint, "", link)


@dataclasses.dataclass(frozen=True)
class Suppression:
    """Why a finding does not count: an inline comment ('inSource') or a ruleset waiver ('external')."""

    kind: SuppressionKind
    justification: str
    source: str = ""  # where: `FILE:LINE` of the comment or the waiver, or `checkov:skip`
    approved_by: str = ""  # the rest is a waiver's record: who approved it,
    expires: str = ""  # the last day it suppresses (YYYY-MM-DD),
    paths: tuple[str, ...] = ()  # the paths it is limited to, and
    ticket: str = ""  # the ticket that granted it

    def properties(self) -> dict[str, str | list[str]]:
        """A waiver's record as every report writes it (SARIF suppression properties); {} inline."""
        if self.kind != "external":
            return {}
        out: dict[str, str | list[str]] = {"approvedBy": self.approved_by, "expires": self.expires,
                                           "paths": list(self.paths)}
        if self.ticket:
            out["ticket"] = self.ticket
        return out


@dataclasses.dataclass(frozen=True)
class Finding:
    """One rule that fired at one place."""

    rule_id: str
    severity: Severity
    message: str
    location: Location
    resource: str = ""
    suppression: Suppression | None = None
    fingerprint: str = ""
    baseline_state: BaselineState = ""
    # The kind of file it was found in, one of its rule's `kinds` and in the same words (reports pick the rule's
    # page and corrected file for it): Checkov's framework for a Checkov finding (terraform_json, helm, ...;
    # many have no `Kind`, so a str), the document's `Kind` value for ours. Not part of its identity or
    # fingerprint, which stay what they were. "" when not known (findings read back from SARIF).
    kind: str = ""

    @property
    def is_open(self) -> bool:
        """Counts against the gate: not suppressed and not already in the baseline."""
        return self.suppression is None and self.baseline_state != "unchanged"

    def identity(self) -> str:
        """What stays the same when lines move: rule, file and resource (not the line)."""
        return f"{self.rule_id}|{self.location.path}|{self.resource}"


FINGERPRINT_KEY = "checker/v1"
"""The SARIF partialFingerprints key of the fingerprints `with_fingerprints` makes (bumped if they change)."""


def with_fingerprints(findings: list[Finding]) -> list[Finding]:
    """Give each finding a stable fingerprint from its identity and its rank among equals.

    Findings that share rule, file and resource are told apart by their order in the file,
    so they never merge, and inserting lines above them changes nothing.
    """
    seen: dict[str, int] = {}
    out = []
    for f in sorted(findings, key=lambda f: (f.location, f.rule_id, f.resource, f.message)):
        identity = f.identity()
        nth = seen.get(identity, 0)
        seen[identity] = nth + 1
        digest = hashlib.sha256(f"{identity}|{nth}".encode("utf-8", "surrogateescape")).hexdigest()[:32]
        out.append(dataclasses.replace(f, fingerprint=digest))
    return out


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something the scan could not check: it fails the scan closed (exit 3)."""

    message: str
    path: str = ""
    line: int = 0
    source: str = ""
    rule: str = ""  # the rule whose check raised, when that is what could not be checked (reporters say what covers it)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        prefix = f"{where}: " if where else ""
        by = f" [{self.source}]" if self.source else ""
        return f"{prefix}{self.message}{by}"


@dataclasses.dataclass(frozen=True)
class ScanResult:
    """Everything a scan produced: what reporters render and the gate decides on."""

    root: str
    ruleset: Ruleset
    rules: Mapping[str, Rule]
    findings: tuple[Finding, ...]
    problems: tuple[Problem, ...]
    targets: tuple[Source, ...]
    started: str
    finished: str
    versions: Mapping[str, str]
    fail_on: FailOn
    decision: Decision  # checker.gate.decide(findings, problems, fail_on), made once by checker.scan.run
    notes: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()  # baseline results no longer found ("RULE path")
    baseline_digest: str = ""  # sha256 hex of the baseline file the scan was gated against
    change: Change = dataclasses.field(default_factory=Change)  # the commit, branch, tickets and CI (checker.change)
    scope: tuple[str, ...] = ()  # what was scanned, relative to the repository's top ("." for all of it)
