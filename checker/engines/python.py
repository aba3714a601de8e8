"""The Python checks engine: runs the organisation's policies over parsed documents.

Policies are found in three places, loaded, then checked for clashes (flake8's order):
the bundled `checker.policies` package, plugins registered under the entry-point group
`checker.policies`, and directories a ruleset names in `checks.policy_paths`.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import io
import pkgutil
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from checker.cache import Cache
from checker.discover import Discovery, Source, discover
from checker.documents import Document, Instruction
from checker.engines.base import Outcome
from checker.errors import ConfigError
from checker.model import Finding, Kind, Location, Problem, Rule
from checker.policy import Context, Policy
from checker.progress import Progress, Step
from checker.ruleset import Ruleset

ENTRY_POINT_GROUP = "checker.policies"


class PythonEngine:
    """The organisation's checks: bundled, plugin and ruleset-named Python policies."""

    name = "python"
    distribution = None
    lists_every_rule = True

    def catalogue(self, ruleset: Ruleset) -> dict[str, Rule]:
        return {p.id: _rule(p, ruleset.organisation) for p in load_policies(ruleset.policy_paths).values()}

    def run(self, discovery: Discovery, rules: Mapping[str, Rule], ruleset: Ruleset, cache: Cache,
            progress: Progress) -> Outcome:
        """Every selected check on every document of its kinds. Not cached: the checks cost milliseconds,
        and a check may read any document of the repository (ctx.documents), so its inputs are all of them.
        Progress is told of each rule, and ticks with each file parsed and each document checked."""
        policies = load_policies(ruleset.policy_paths)
        outcome = Outcome()
        documents = _Documents(lambda: discovery, outcome.problems, progress.tick)
        # Named files (pre-commit) are checked with the whole repository as context, read on first use
        context = documents if not discovery.explicit_files else _Documents(
            lambda: discover(discovery.root, [discovery.root], ruleset.ignore, ruleset.base, ruleset.limits), [],
            progress.tick)
        runnable = [(rule, policies[rule.id]) for rule in rules.values()
                    if rule.id in policies and not rule.inactive_reason]
        for done, (rule, policy) in enumerate(runnable):
            progress.show(Step("our checks", done, len(runnable), "rules", (rule.id,)))
            ctx = Context(
                organisation=ruleset.organisation, params={**policy.params, **ruleset.params.get(rule.id, {})},
                files=discovery.files, documents=context.of_kind, root=str(discovery.root), change=discovery.change,
            )
            for kind in policy.kinds:
                for doc in documents.of_kind(kind):
                    progress.tick()
                    outcome.findings.extend(_check(policy, rule, doc, ctx, outcome.problems))
        return outcome


def _check(policy: Policy, rule: Rule, doc: Document, ctx: Context, problems: list[Problem]) -> list[Finding]:
    """Run one check on one document; a check that raises is a problem, never a pass."""
    try:
        return [
            Finding(
                rule_id=rule.id, severity=rule.severity, message=v.message, resource=v.resource,
                location=Location(v.path or doc.path, max(v.line, 1), max(v.end_line or v.line, v.line, 1)),
                kind=doc.kind,  # the kind of document checked, even when the violation names another file
            )
            for v in policy.run(doc, ctx)
        ]
    except Exception as error:  # noqa: BLE001 - any failure of a check fails the scan closed
        frame = traceback.extract_tb(error.__traceback__)[-1]
        problems.append(Problem(
            f"check {policy.id} crashed: {type(error).__name__}: {error} "
            f"(at {Path(frame.filename).name}:{frame.lineno})", doc.path, 0, "python"))
        return []


class _Documents:
    """Parses each source once, on first use, into the Documents checks receive; `tick` after each."""

    def __init__(self, load: Callable[[], Discovery], problems: list[Problem], tick: Callable[[], None]) -> None:
        self._load = load
        self.problems = problems
        self._tick = tick

    @functools.cached_property
    def discovery(self) -> Discovery:
        return self._load()

    @functools.cache  # noqa: B019 - one instance per scan
    def of_kind(self, kind: str) -> tuple[Document, ...]:
        kind = Kind(kind)
        if kind is Kind.REPO:  # whole-repository rules do not run on a few named files (pre-commit)
            return () if self.discovery.explicit_files else (Document(".", kind.value, self.discovery.files),)
        docs: list[Document] = []
        for source in self.discovery.of_kind(kind):
            docs.extend(self._parse(source))
            self._tick()
        return tuple(docs)

    def _parse(self, source: Source) -> Iterator[Document]:
        if source.kind is Kind.TERRAFORM:
            tree = _parse_terraform(source, self.problems)
            if tree is not None:
                yield Document(source.path, source.kind.value, tree, source.text)
        elif source.kind is Kind.DOCKERFILE:
            yield Document(source.path, source.kind.value, parse_dockerfile(source.text), source.text)
        else:
            for i, data in enumerate(source.documents):
                if data is not None:
                    yield Document(source.path, source.kind.value, data, source.text, i)


def _parse_terraform(source: Source, problems: list[Problem]) -> Any:
    if source.path.endswith(".json"):
        return None
    from hcl2.api import loads  # python-hcl2 as Checkov ships it: blocks carry __start_line__/__end_line__

    try:
        return loads(source.text)
    except Exception as error:  # noqa: BLE001 - the parser raises many types
        line = getattr(error, "line", 0) or 0
        problems.append(Problem(f"is not valid HCL ({str(error).splitlines()[0][:200]}), so it could not be checked",
                                source.path, line, "python"))
        return None


def parse_dockerfile(text: str) -> list[Instruction]:
    """Dockerfile instructions with their lines (continuations joined, comments skipped)."""
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.StringIO(text))
    return [
        Instruction(i["instruction"], i["value"], i["startline"] + 1, i["endline"] + 1)
        for i in parser.structure
        if i["instruction"] != "COMMENT"
    ]


def _rule(p: Policy, organisation: Mapping[str, Any]) -> Rule:
    return Rule(
        id=p.id, title=p.title, severity=p.severity, engine=PythonEngine.name, description=p.description,
        remediation=p.remediation, help_uri=p.help_uri, tags=("security", *p.tags),
        kinds=tuple(k.value for k in p.kinds), inactive_reason=p.inactive_reason(organisation),
        help=p.help, rationale=p.rationale, covers=p.covers,
    )


@functools.lru_cache(maxsize=8)
def load_policies(policy_paths: tuple[str, ...] = ()) -> dict[str, Policy]:
    """Find, load and check for clashes every policy: bundled, plugins, then ruleset directories."""
    found: dict[str, tuple[Policy, str]] = {}
    for origin, module in _modules(policy_paths):
        for policy in _policies_in(module):
            if policy.id in found and found[policy.id][0] is not policy:
                raise ConfigError(f"{origin}: policy {policy.id} is already defined by {found[policy.id][1]}")
            found[policy.id] = (policy, origin)
    return {pid: p for pid, (p, _) in sorted(found.items())}


def _modules(policy_paths: Iterable[str]) -> Iterator[tuple[str, Any]]:
    import checker.policies as bundled

    for info in pkgutil.walk_packages(bundled.__path__, "checker.policies."):
        yield info.name, importlib.import_module(info.name)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            yield f"entry point {ep.name} ({ep.value})", ep.load()
        except Exception as error:  # noqa: BLE001 - a broken plugin is a configuration error
            raise ConfigError(f"entry point {ep.name} ({ep.value}) in group {ENTRY_POINT_GROUP} failed to load: "
                              f"{type(error).__name__}: {error}") from None
    for directory in policy_paths:
        folder = Path(directory)
        if not folder.is_dir():
            raise ConfigError(f"{directory}: checks.policy_paths names a folder that does not exist")
        for file in sorted(folder.glob("*.py")):
            yield str(file), _import_file(file)


def _import_file(file: Path) -> ModuleType:
    name = f"checker_local_policies.{file.parent.name}.{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001
        raise ConfigError(f"{file}: policy module failed to import: {type(error).__name__}: {error}") from None
    return module


def _policies_in(obj: Any) -> Iterator[Policy]:
    if isinstance(obj, Policy):
        yield obj
    elif isinstance(obj, ModuleType):
        yield from (v for v in vars(obj).values() if isinstance(v, Policy))
    elif isinstance(obj, Iterable):
        for item in obj:
            yield from _policies_in(item)


ENGINE = PythonEngine()
