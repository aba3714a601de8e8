"""The API for the organisation's own checks: metadata beside a pure check function.

    from checker.policy import Violation, policy

    @policy(id="ORG-K8S-001", title="...", kinds=("kubernetes",), severity="high",
            remediation="...", requires=("approved_registries",))
    def approved_registries(doc, ctx):
        '''What the rule checks and why (the docstring is the rule's help).'''
        yield Violation("image nginx is not from an approved registry", line=12)

A check receives one parsed `Document` and a `Context` and yields `Violation`s; the engine
turns them into Findings. It must not print, write files or keep state between calls.

`covers` names the Checkov checks that look for the same class of issue, which this check finds
too (read both before claiming it: ORG-GHA-003 finds every injection CKV_GHA_2 does, and more).
When one of them crashes on a file, the scan's message names this rule as the ground still
covered, so a developer can accept the gap knowingly (README: "How it runs Checkov").
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from checker.change import Change
from checker.documents import Document
from checker.model import Kind, Severity


@dataclasses.dataclass(frozen=True)
class Violation:
    """What a check yields: a message and the exact line, optionally another file and a resource."""

    message: str
    line: int
    resource: str = ""
    end_line: int | None = None
    path: str | None = None


@dataclasses.dataclass(frozen=True)
class Context:
    """What a check may read besides its document."""

    organisation: Mapping[str, Any]
    params: Mapping[str, Any]
    files: Sequence[str]
    documents: Callable[[str], Sequence[Document]]
    root: str = "."
    change: Change = dataclasses.field(default_factory=Change)  # commit, branch, tickets, CI (checker.change)


CheckFunction = Callable[[Document, Context], Iterable[Violation]]


@dataclasses.dataclass(frozen=True)
class Policy:
    """A custom rule: its metadata and its check function."""

    id: str
    title: str
    kinds: tuple[Kind, ...]
    severity: Severity
    remediation: str
    check: CheckFunction
    rationale: str = ""
    tags: tuple[str, ...] = ()
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    requires: tuple[str, ...] = ()
    help_uri: str = ""
    covers: tuple[str, ...] = ()  # ids of Checkov checks whose class of issue this check finds too

    @property
    def description(self) -> str:
        """The first paragraph of the check's docstring."""
        return self.help.split("\n\n", 1)[0].replace("\n", " ")

    @property
    def help(self) -> str:
        return inspect.cleandoc(self.check.__doc__ or self.title)

    def inactive_reason(self, organisation: Mapping[str, Any]) -> str:
        """Why the check cannot run with these organisation facts ('' when it can)."""
        missing = [fact for fact in self.requires if not organisation.get(fact)]
        return f"needs organisation.{', organisation.'.join(missing)} in the ruleset" if missing else ""

    def run(self, doc: Document, ctx: Context) -> Iterator[Violation]:
        yield from self.check(doc, ctx)


README_URL = "https://github.com/paved-road/checker/blob/main/policies/README.md"


def policy(
    *,
    id: str,
    title: str,
    kinds: Sequence[str],
    severity: str,
    remediation: str,
    rationale: str = "",
    tags: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
    requires: Sequence[str] = (),
    help_uri: str = "",
    covers: Sequence[str] = (),
) -> Callable[[CheckFunction], Policy]:
    """Declare a check function as a Policy (no registration side effects)."""

    def wrap(func: CheckFunction) -> Policy:
        return Policy(
            id=id, title=title, kinds=tuple(Kind(k) for k in kinds), severity=Severity(severity),
            remediation=inspect.cleandoc(remediation), check=func, rationale=rationale,
            tags=tuple(tags), params=dict(params or {}), requires=tuple(requires),
            help_uri=help_uri or f"{README_URL}#{id.lower()}", covers=tuple(covers),
        )

    return wrap
