"""ORG-GHA-014: jobs that release do not restore build state from the GitHub Actions cache.

A cache entry is written by whatever ran before under the same key, and every workflow run on the
default branch can write one; a release job that restores it runs or ships those files. The audit
reads, for each cache-aware step, whether it restores in a run that releases, using three small
models of our own: which actions restore and which input turns that off (`CACHE_SWITCHES`), what
makes a job release (its triggers, `PUBLISHERS`, `publish_command`), and what a `${{ }}` guard is
worth in a release run (`_value`, over the expressions workflow.py parses, knowing only the event,
`github.ref` and `github.ref_type`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import as_list
from .deployments import DEPLOY_ACTIONS, DEPLOY_COMMANDS, deploys
from .workflow import (
    ARTIFACT_UPLOADS,
    ExpressionNode,
    action_name,
    action_version,
    jobs,
    literal,
    needed_by,
    needs_order,
    parse_expression,
    run_text,
    steps,
    triggers,
)


@dataclasses.dataclass(frozen=True)
class CacheSwitch:
    """One input of a cache-aware action that decides whether the step restores from the Actions cache.

    An action whose cache nothing turns off has `input=""`. `default` is the input's value when it is not
    written, from major version `since` on (before it the default restored nothing). An input that
    `disables` turns the cache off when true (`lookup-only`); otherwise any value but "" and "false" turns
    it on, or, with `needs`, a value that contains that text. `auto_from` is the major version from which
    the value `auto` leaves the cache off in release, pull_request_target and workflow_run runs. A switch
    that is `detected` restores only when the repository's package.json names a package manager the action
    knows (setup-node's automatic cache, `_detects`).
    """

    action: str
    input: str = ""
    default: str = ""
    disables: bool = False
    since: int = 0
    needs: str = ""
    auto_from: int = 0
    detected: bool = False

    @property
    def advice(self) -> str:
        """What to write so that the step restores nothing."""
        if not self.input:
            return "leave the step out"
        if self.disables:
            return f"set {self.input}: true"
        if self.needs:
            return f"leave {self.needs} out of {self.input}"
        return f"leave {self.input} out" if not self.default else f"set {self.input}: false"


# The cache-aware actions the audit knows, read from each action's action.yml and README (lower case).
CACHE_SWITCHES = (
    CacheSwitch("actions/cache", "lookup-only", "false", disables=True),
    CacheSwitch("actions/cache/restore", "lookup-only", "false", disables=True),
    CacheSwitch("actions/setup-go", "cache", "true", since=4),
    CacheSwitch("actions/setup-node", "cache"),
    CacheSwitch("actions/setup-node", "package-manager-cache", "true", since=5, detected=True),
    CacheSwitch("actions/setup-python", "cache"),
    CacheSwitch("actions/setup-java", "cache"),
    CacheSwitch("actions/setup-dotnet", "cache", "false"),
    CacheSwitch("astral-sh/setup-uv", "enable-cache", "auto", auto_from=10),
    CacheSwitch("ruby/setup-ruby", "bundler-cache", "false"),
    CacheSwitch("swatinem/rust-cache", "lookup-only", "false", disables=True),
    CacheSwitch("actions-rust-lang/setup-rust-toolchain", "cache", "true"),
    CacheSwitch("mozilla-actions/sccache-action"),
    CacheSwitch("pyo3/maturin-action", "sccache", "false"),
    CacheSwitch("gradle/actions/setup-gradle", "cache-disabled", "false", disables=True),
    CacheSwitch("gradle/gradle-build-action", "cache-disabled", "false", disables=True),
    CacheSwitch("ramsey/composer-install", "ignore-cache", "", disables=True),
    CacheSwitch("docker/build-push-action", "cache-from", needs="type=gha"),
)
_AUTO_OFF_EVENTS = frozenset({"release", "pull_request_target", "workflow_run"})

# Actions that publish what the job built (a package, a release, an image), with the input that must be
# true for them to do it ("" when they always do); deployments are recognised as ORG-GHA-006 does.
PUBLISHERS = {
    "pypa/gh-action-pypi-publish": "", "softprops/action-gh-release": "", "ncipollo/release-action": "",
    "goreleaser/goreleaser-action": "", "rubygems/release-gem": "", "js-devtools/npm-publish": "",
    "svenstaro/upload-release-action": "", "redhat-actions/push-to-registry": "", "jreleaser/release-action": "",
    "docker/build-push-action": "push", "changesets/action": "publish",
}
# Commands that publish by their first words (`npm publish`, `docker push`) ...
PUBLISH_COMMAND = re.compile(
    r"\b(?:(?:npm|pnpm|yarn(?:\s+npm)?)\s+publish|cargo\s+publish|twine\s+upload|(?:uv|poetry|flit|hatch)\s+publish"
    r"|gem\s+push|nuget\s+push|(?:docker|podman|buildah)\s+(?:(?:image|manifest)\s+)?push"
    r"|gh\s+release\s+(?:create|upload))"
)
# ... and tools that publish when a later word of the same command asks them to: the tool, then that word. Each
# is looked for as two searches, never as one pattern with `.*` between them, which retries the rest of the
# line from every occurrence of the tool (quadratic on a line of `mvn mvn mvn ...`).
_PUBLISH_TASKS = (
    (re.compile(r"(?<![\w.-])(?:\./)?mvnw?\b"), re.compile(r"\sdeploy\b")),
    (re.compile(r"(?<![\w.-])(?:\./)?gradlew?\b"), re.compile(r"\spublish(?!ToMavenLocal)\w*")),
    (re.compile(r"\bdocker\s+(?:buildx\s+)?(?:build|bake)\b"), re.compile(r"\s--push\b")),
)
# The end of a command: a line break that no `\` (shell) or backtick (PowerShell) continues.
_COMMAND_END = re.compile(r"(?<![\\`])\n")
# Actions that take an artifact of the run (deploy-pages takes the one upload-pages-artifact made).
DOWNLOADS = frozenset({"actions/download-artifact", "actions/deploy-pages"})


@dataclasses.dataclass(frozen=True)
class _Unknown:
    """A value only known at run time; `truth` tells whether it counts as true when that is known anyway
    (`inputs.x || 'pip'` is some true value)."""

    truth: bool | None = None


UNKNOWN = _Unknown()
UNKNOWN_TRUTHY = _Unknown(True)
UNKNOWN_FALSY = _Unknown(False)


@dataclasses.dataclass(frozen=True)
class _Prefixed:
    """A string known only by how it starts (in lower case): `github.ref` is `refs/tags/...` in a tag run."""

    prefix: str


@dataclasses.dataclass(frozen=True)
class _Run:
    """One kind of run of the workflow: what is known of its `github` context, and why it releases
    ('' when only a publishing step would make it)."""

    known: Mapping[str, object]
    release: str = ""

    @property
    def event(self) -> object:
        return self.known.get("github.event_name", UNKNOWN)


def _ref_run(event: str, ref_type: str, release: str, prefix: str = "") -> _Run:
    ref = _Prefixed(prefix or ("refs/tags/" if ref_type == "tag" else "refs/heads/"))
    return _Run({"github.event_name": event, "github.ref_type": ref_type, "github.ref": ref}, release)


# What a branch filter's pattern says of the branch before its first wildcard; GitHub's filter syntax.
_GLOB = re.compile(r"[*?+\[\]!]")
# More kinds of run than any workflow makes: the events GitHub has, a handful of release branch patterns.
# Past them the rest are one kind of run known less well, so that the work stays linear in the file.
_MOST_EVENTS = 48
_MOST_BRANCH_RUNS = 16


def _branch_runs(branches: list[str], ignored: bool) -> Iterator[_Run]:
    """The kinds of push to a branch: one for each branch pattern that names a release (its ref known up to
    the pattern's first wildcard), and one for the other branches when the filter lets others in."""
    wanted = [b for b in branches if b and not b.startswith("!")]
    named: dict[str, str] = {}  # ref prefix -> the first pattern that gives it
    for pattern in wanted:
        if "release" in pattern.lower():
            named.setdefault(("refs/heads/" + _GLOB.split(pattern, maxsplit=1)[0]).lower(), pattern)
    if len(named) > _MOST_BRANCH_RUNS:  # one run for them all: the start they share
        low, high = min(named), max(named)
        size = next((n for n, (x, y) in enumerate(zip(low, high, strict=False)) if x != y), min(len(low), len(high)))
        named = {low[:size]: next(iter(named.values()))}
    for prefix, pattern in named.items():
        yield _ref_run("push", "branch", f"runs on pushes to the branch {pattern}", prefix)
    if any("release" not in b.lower() for b in wanted) or ignored:
        yield _ref_run("push", "branch", "")


def _runs(workflow: object) -> Iterator[_Run]:
    """The kinds of run the workflow's triggers make.

    A `release` event and a push of tags (`tags:`/`tags-ignore:`) release; so does a push to a branch whose
    name says release (one kind of run per such pattern, with `github.ref` known up to its first wildcard).
    A push filtered on tags only never runs for branches, and one filtered on branches only never runs for
    tags (GitHub's rule); any other event is a run whose ref is not known.
    """
    events, _ = triggers(workflow)
    on = workflow.get("on" if "on" in workflow else True) if isinstance(workflow, YamlMap) else None
    others = sorted(events - {"release", "push"})
    if len(others) > _MOST_EVENTS:
        others = [*others[:_MOST_EVENTS - 1], ""]  # "": the event is not known
    for event in sorted({"release", "push"} & events) + others:
        body = on.get(event) if isinstance(on, YamlMap) else None
        if event == "release":
            yield _ref_run("release", "tag", "runs on release events")
        elif event != "push" or not isinstance(body, YamlMap):
            yield _Run({"github.event_name": event} if event else {})
        else:
            tags = "tags" in body or "tags-ignore" in body
            if tags:
                yield _ref_run("push", "tag", "runs on tag pushes")
            branches = [str(b) for b in as_list(body.get("branches"))]
            if branches or "branches-ignore" in body:
                yield from _branch_runs(branches, not branches)
            elif not tags:
                yield _Run({"github.event_name": "push"})


def _truth(value: object) -> bool | None:
    """Whether a value counts as true (None when not known)."""
    if isinstance(value, _Unknown):
        return value.truth
    return True if isinstance(value, _Prefixed) else bool(value)


def _either(operator: str, left: object, right: object) -> object:
    """`left || right` and `left && right`, which yield one of their operands."""
    truth = _truth(left)
    if operator == "||":
        if truth is not None:
            return left if truth else right
        return UNKNOWN_TRUTHY if _truth(right) else UNKNOWN
    if truth is not None:
        return right if truth else left
    return UNKNOWN_FALSY if _truth(right) is False else UNKNOWN


def _equal(left: object, right: object) -> object:
    """`==` as GitHub compares (strings without regard to case); UNKNOWN when it cannot be told."""
    if isinstance(left, _Prefixed):
        left, right = right, left
    if isinstance(right, _Prefixed):
        return False if isinstance(left, str) and not left.lower().startswith(right.prefix) else UNKNOWN
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    if type(left) is type(right) and not isinstance(left, _Unknown):
        return left == right
    return UNKNOWN


def _binary(operator: str, left: object, right: object) -> object:
    if operator in ("||", "&&"):
        return _either(operator, left, right)
    equal = _equal(left, right) if operator in ("==", "!=") else UNKNOWN
    return (not equal) if operator == "!=" and isinstance(equal, bool) else equal


def _call(name: str, arguments: list[object]) -> object:
    """startsWith/endsWith/contains on what is known of a string, and success()/always(); other calls are
    not known."""
    if name in ("success", "always") and not arguments:
        return True
    if name not in ("startswith", "endswith", "contains") or len(arguments) != 2:
        return UNKNOWN
    subject, needle = arguments
    if not isinstance(needle, str):
        return UNKNOWN
    needle = needle.lower()
    if isinstance(subject, str):
        text = subject.lower()
        return {"startswith": text.startswith, "endswith": text.endswith, "contains": text.__contains__}[name](needle)
    if isinstance(subject, _Prefixed) and name == "startswith":
        return True if subject.prefix.startswith(needle) else UNKNOWN if needle.startswith(subject.prefix) else False
    if isinstance(subject, _Prefixed) and name == "contains" and needle in subject.prefix:
        return True
    return UNKNOWN


def _value(node: ExpressionNode, known: Mapping[str, object]) -> object:
    """The value of a parsed expression with part of its context known: a value, a `_Prefixed` string, or
    an `_Unknown` where it depends on anything else (a field of a computed value, an unknown function)."""
    if node.kind == "lit":
        return literal(node)
    if node.kind == "ctx":
        return known.get(".".join(node.parts), UNKNOWN)
    if node.kind == "call":
        return _call(node.parts[0], [_value(arg, known) for arg in node.args])
    if node.kind == "test" and len(node.args) == 1:  # `!`
        truth = _truth(_value(node.args[0], known))
        return UNKNOWN if truth is None else not truth
    if node.kind in ("test", "either"):
        chain = []  # `a || b || c` is parsed as ((a || b) || c): its left spine is walked as a loop
        while node.kind in ("test", "either") and len(node.args) == 2:
            chain.append(node)
            node = node.args[0]
        result = _value(node, known)
        for link in reversed(chain):
            result = _binary(link.parts[0], result, _value(link.args[1], known))
        return result
    return UNKNOWN


_FENCED = re.compile(r"\s*\$\{\{(.*)\}\}\s*", re.DOTALL)
_NPM = re.compile(r"\^?npm(?:@.*)?")
_MANAGER_V5 = re.compile(r"\^?(npm|yarn|pnpm)@")
_MANIFEST_LIMIT = 10_000_000


def _detects(manifest: object, major: int | None) -> str | None:
    """The package manager that setup-node's automatic cache finds in the repository's package.json ('' when
    it finds none, None when the file could not be read): v5 reads a top-level `packageManager` of npm, yarn
    or pnpm with a version; v6 on, npm only, in `devEngines.packageManager` (one entry or a list) too."""
    if isinstance(manifest, _Unknown):
        return None
    if not isinstance(manifest, dict):
        return ""
    top = manifest.get("packageManager")
    engines = manifest.get("devEngines")
    entries = engines.get("packageManager") if isinstance(engines, dict) else None
    names = [e["name"] for e in (entries if isinstance(entries, list) else [entries])
             if isinstance(e, dict) and isinstance(e.get("name"), str)]
    if (major is None or major >= 6) and any(_NPM.fullmatch(n) for n in [*names, top] if isinstance(n, str)):
        return "npm"
    found = _MANAGER_V5.match(top) if isinstance(top, str) and (major is None or major < 6) else None
    return found.group(1) if found else ""


def _manifest(doc: Document, ctx: Context) -> object:
    """The package.json at the root of the workflow's repository (the folder that holds `.github/workflows`),
    parsed: {} when it is not a JSON object (setup-node then finds nothing in it either), None when the
    repository, a checkout (it has `.git`), has none, UNKNOWN when that cannot be told: the scanned tree
    is not a checkout, or the file is not a plain readable file."""
    base, found, _ = doc.path.replace("\\", "/").rpartition(".github/workflows/")
    if not found:
        return UNKNOWN
    folder = os.path.join(ctx.root, base)
    path = os.path.join(folder, "package.json")
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MANIFEST_LIMIT:
            return UNKNOWN
        with open(path, "rb") as handle:
            data = json.loads(handle.read(_MANIFEST_LIMIT))
    except FileNotFoundError:
        return None if os.path.lexists(os.path.join(folder, ".git")) else UNKNOWN
    except (OSError, RecursionError):
        return UNKNOWN
    except ValueError:  # not JSON, not UTF-8
        return {}
    return data if isinstance(data, dict) else {}


def publish_command(script: str) -> str:
    """The first command of a script that publishes, its spaces folded ('' when none does)."""
    found = PUBLISH_COMMAND.search(script)
    first = (found.start(), found.group(0)) if found else None
    for tool, task in _PUBLISH_TASKS:
        position = 0
        while (start := tool.search(script, position)) and (first is None or start.start() < first[0]):
            end = _COMMAND_END.search(script, start.end())
            position = end.end() if end else len(script)
            word = task.search(script, start.end(), position)
            if word:
                text = script[start.start():word.end()]
                first = (start.start(), text if len(text) <= 80 else f"{start.group(0)} ... {word.group(0).strip()}")
                break
    return " ".join(first[1].replace("\\\n", " ").replace("`\n", " ").split()) if first else ""


class _Workflow:
    """One workflow as the check reads it: its kinds of run, each `${{ }}` parsed once however many runs it
    is evaluated in, and what each job publishes in each run, worked out once for all its steps (so the
    work stays linear in the file however many steps and jobs it has)."""

    def __init__(self, doc: Document, ctx: Context) -> None:
        self.doc, self.ctx = doc, ctx
        self.runs = sorted(_runs(doc.data), key=lambda run: not run.release)  # a release trigger is given first
        self.jobs = {job_id: job for job_id, job, _ in jobs(doc.data)}
        self.lines = doc.text.splitlines()
        self._parsed: dict[str, ExpressionNode | None] = {}
        self._later: dict[tuple[str, int], list[tuple[str, bool]]] = {}
        self._taken: dict[int, dict[str, str]] = {}
        self._graph: tuple[dict[str, list[str]], list[str]] | None = None
        self._deploying: dict[str, bool] = {}
        self._manifest: object = None
        self._manifest_read = False

    def value(self, expression: str, run: _Run) -> object:
        """The value of an expression (the inside of a `${{ }}`) in this kind of run."""
        if expression not in self._parsed:
            self._parsed[expression] = parse_expression(expression)
        node = self._parsed[expression]
        try:
            return UNKNOWN if node is None else _value(node, run.known)
        except RecursionError:  # parse_expression bounds nesting and chains are walked as loops: a last guard
            return UNKNOWN

    def input(self, written: object, run: _Run) -> object:
        """An input's value in a run: its text, the value of its one `${{ }}` expression, or an `_Unknown`."""
        if isinstance(written, bool):
            return "true" if written else "false"
        if not isinstance(written, str):
            return "" if written is None else str(written)
        fenced = _FENCED.fullmatch(written)
        if fenced and "${{" not in fenced.group(1) and "}}" not in fenced.group(1):
            value = self.value(fenced.group(1), run)
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, float):
                return str(int(value)) if value.is_integer() else str(value)
            return "" if value is None else value if isinstance(value, str | _Unknown) else UNKNOWN
        return UNKNOWN if "${{" in written else written

    def runs_in(self, condition: object, run: _Run) -> bool | None:
        """Whether an `if:` lets its job or step run in this kind of run (None when it cannot be told)."""
        if condition is None or isinstance(condition, bool):
            return condition is not False
        text = str(condition)
        fenced = _FENCED.fullmatch(text)
        if fenced and "${{" not in fenced.group(1):
            text = fenced.group(1)
        elif "${{" in text:
            return None
        return _truth(self.value(text, run))

    def manifest(self) -> object:
        if not self._manifest_read:
            self._manifest, self._manifest_read = _manifest(self.doc, self.ctx), True
        return self._manifest

    def switch(self, switch: CacheSwitch, step: YamlMap, major: int | None, run: _Run) -> tuple[bool | None, str]:
        """Whether one switch makes the step restore in this run (None: only known at run time), and how."""
        if not switch.input:
            return True, "always restores"
        manager: str | None = ""
        if switch.detected:
            manager = _detects(self.manifest(), major)
            if manager == "":
                return False, ""
        with_ = step.get("with")
        if not isinstance(with_, YamlMap) and with_ is not None:
            on, how = None, "may restore (its inputs are an expression)"
        elif not isinstance(with_, YamlMap) or with_.get(switch.input) is None:
            on, how = _default(switch, major, run)
        else:
            value = self.input(with_[switch.input], run)
            if isinstance(value, _Unknown):
                on, how = None, f"may restore ({switch.input} is only known at run time)"
            else:
                on = _on(switch, str(value).strip().lower(), major, run)
                how = f"restores ({switch.input}: {_written(with_[switch.input])})"
        if manager is None and on is not False:
            names = "npm" if major is not None and major >= 6 else "npm, yarn or pnpm" if major == 5 else "one"
            return None, f"{how.replace('restores', 'may restore', 1)}, if package.json names {names} as its manager"
        return on, f"{how[:-1]}, and package.json names {manager})" if manager else how

    def restores(self, step: YamlMap, major: int | None, run: _Run) -> tuple[bool | None, str, str]:
        """Whether the step restores from the cache in this run (True, None: may, False), how, and what
        turns that off."""
        name = action_name(step.get("uses")).lower()
        results = [(*self.switch(s, step, major, run), s.advice) for s in CACHE_SWITCHES if s.action == name]
        for wanted in (True, None):
            for on, how, advice in results:
                if on is wanted:
                    return on, how, advice
        return False, "", ""

    def step_publishes(self, step: YamlMap, run: _Run, deploying: bool) -> str:
        """How a step publishes in this run ('' when it does not, or its `if:` keeps it from running)."""
        if self.runs_in(step.get("if"), run) is False:
            return ""
        uses = step.get("uses")
        name = action_name(uses).lower()
        if name in PUBLISHERS:
            toggle = PUBLISHERS[name]
            with_ = step.get("with")
            value = self.input(with_.get(toggle) if isinstance(with_, YamlMap) else None, run) if toggle else "true"
            if isinstance(value, _Unknown) or str(value).strip().lower() not in ("", "false"):
                return f"publishes with {action_name(uses)} (line {step.line_of('uses')})"
        if deploying and isinstance(uses, str) and DEPLOY_ACTIONS.match(uses):
            return f"deploys with {action_name(uses)} (line {step.line_of('uses')})"
        command = publish_command(run_text(step))
        if not command and deploying and (deployed := DEPLOY_COMMANDS.search(run_text(step))):
            command = " ".join(deployed.group(0).split())
        return f"runs `{command}` (line {step.line_of('run')})" if command else ""

    def later(self, job_id: str, index: int) -> list[tuple[str, bool]]:
        """For each step of the job, in the run `self.runs[index]`: how it or a later step publishes ('' when
        none does), and whether it or a later step uploads an artifact."""
        key = (job_id, index)
        if key not in self._later:
            job, run = self.jobs[job_id], self.runs[index]
            if job_id not in self._deploying:
                self._deploying[job_id] = bool(deploys(job))
            found: list[tuple[str, bool]] = []
            why, uploads = "", False
            for _, step in reversed(list(steps(job))):
                why = self.step_publishes(step, run, self._deploying[job_id]) or why
                uploads = uploads or (action_name(step.get("uses")).lower() in ARTIFACT_UPLOADS
                                      and self.runs_in(step.get("if"), run) is not False)
                found.append((why, uploads))
            self._later[key] = found[::-1]
        return self._later[key]

    def taken(self, job_id: str, index: int) -> str:
        """How a job that needs this one, directly or through others, takes an artifact (download-artifact,
        deploy-pages) and publishes, in the run `self.runs[index]` ('' when none does)."""
        if index not in self._taken:
            if self._graph is None:
                self._graph = needed_by(self.doc.data), needs_order(self.doc.data)
            graph, order = self._graph
            reach: dict[str, str] = {}
            for other in reversed(order):  # the jobs that need one come before it
                other_steps = [step for _, step in steps(self.jobs[other])]
                takes = next((n for n, step in enumerate(other_steps)
                              if action_name(step.get("uses")).lower() in DOWNLOADS), None)
                why = self.later(other, index)[takes][0] if takes is not None and \
                    self.runs_in(self.jobs[other].get("if"), self.runs[index]) is not False else ""
                reach[other] = f"builds an artifact that job {other} takes and {why}" if why else \
                    next((reach[d] for d in graph.get(other, ()) if reach.get(d)), "")
            self._taken[index] = {job: next((reach[d] for d in graph.get(job, ()) if reach.get(d)), "")
                                  for job in reach}
        return self._taken[index].get(job_id, "")


def _written(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _default(switch: CacheSwitch, major: int | None, run: _Run) -> tuple[bool | None, str]:
    if major is not None and major < switch.since:
        return False, ""
    return _on(switch, switch.default, major, run), f"restores by default ({switch.input} not set)"


def _on(switch: CacheSwitch, value: str, major: int | None, run: _Run) -> bool:
    if switch.needs:
        return switch.needs in value
    if switch.disables:
        return value not in ("true", "yes", "1")
    if value == "auto" and switch.auto_from:
        return not (major is not None and major >= switch.auto_from and run.event in _AUTO_OFF_EVENTS)
    return value not in ("", "false")


@policy(
    id="ORG-GHA-014",
    title="Jobs that release do not restore the Actions cache",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "Any code that runs in a workflow of the repository (a test dependency, an injected command) can "
        "write Actions cache entries that later runs restore, and can evict the real ones to take their keys. "
        "A release job that restores a cache builds, signs and publishes whatever that entry holds "
        "(Cacheract, 2024): the published artifact is no longer what the reviewed source builds."
    ),
    remediation="""
        Build what you release from a clean state: turn the action's cache off in release runs (or skip
        the cache step there), and keep caching in the other workflows:

            - uses: actions/setup-node@a0853c24544627f65ddf259abe73b1d18a591444  # v5.0.0
              with:
                node-version: 22
                package-manager-cache: false   # from v5 on when package.json names its manager
            - uses: actions/setup-go@3041bf56c941b39c61721a86cd11f3bb1338122a  # v5.2.0
              with:
                cache: ${{ !startsWith(github.ref, 'refs/tags/') }}
            - uses: Swatinem/rust-cache@82a92a6e8fbeee089604da2575dc567ae9ddeaab  # v2.7.5
              if: ${{ !startsWith(github.ref, 'refs/tags/') }}

        For `actions/cache` set `lookup-only: true` or remove the step; for `docker/build-push-action`
        leave out `cache-from: type=gha` in the build that pushes.
    """,
    tags=["ci-security", "supply-chain"],
)
def release_jobs_do_not_restore_caches(doc: Document, ctx: Context) -> Iterator[Violation]:
    """A job that releases does not restore files from the GitHub Actions cache before it publishes.

    A job releases in a run started by a `release` event, a tag push (`push:` with `tags:` or
    `tags-ignore:`) or a push to a branch whose pattern contains "release" (for `branches: [main,
    "release/**"]` a job whose `if:` keeps it to `refs/heads/main` does not). In any other run it releases
    when the cache step or a later one publishes: a publishing action (`pypa/gh-action-pypi-publish`,
    `softprops/action-gh-release`, `ncipollo/release-action`, `goreleaser/goreleaser-action`,
    `rubygems/release-gem`, `JS-DevTools/npm-publish`, `svenstaro/upload-release-action`,
    `redhat-actions/push-to-registry`, `jreleaser/release-action`, `changesets/action` given a `publish`
    command, `docker/build-push-action` whose `push` is true), a `run:` that publishes (`npm publish`,
    `cargo publish`, `twine upload`, `uv publish`, `gem push`, `nuget push`, `docker`/`podman`/`buildah
    push`, `docker buildx build --push`, `gh release create`, `mvn`/`./mvnw ... deploy`, `gradle`/`./gradlew
    ... publish`), a deployment as ORG-GHA-006 recognises it; or when it uploads an artifact that a job
    needing it, directly or through others, takes (`download-artifact`, `deploy-pages`) and publishes. A
    job that runs in a release run but publishes and uploads nothing is reported as running there, with
    the job's token and secrets, not as releasing the entry.

    Cache-aware steps, and what turns their cache off: `actions/cache` and `actions/cache/restore`
    (`lookup-only: true`; `actions/cache/save` only writes), `Swatinem/rust-cache` (`lookup-only:
    true`), `gradle/actions/setup-gradle` and `gradle/gradle-build-action` (`cache-disabled: true`),
    `ramsey/composer-install` (`ignore-cache: true`); on by default: `actions/setup-go` (v4+),
    `actions-rust-lang/setup-rust-toolchain`, `astral-sh/setup-uv` (`enable-cache: auto`, which from v10
    is off in `release`, `pull_request_target` and `workflow_run` runs), `actions/setup-node` from v5
    (`package-manager-cache`) when the package.json at the repository's root names its package manager
    (v5: `packageManager` npm, yarn or pnpm; v6 on: npm only, or `devEngines.packageManager` npm); when
    that file cannot be read (the scanned folder is not a checkout with `.git`) it may restore; on when
    asked: `actions/setup-node`, `-python`, `-java` (`cache:` not empty), `actions/setup-dotnet`
    (`cache: true`), `ruby/setup-ruby` (`bundler-cache`), `PyO3/maturin-action` (`sccache`),
    `docker/build-push-action` (`cache-from: type=gha`); always: `Mozilla-Actions/sccache-action`. The
    version comes from the tag or a `# vX.Y.Z` comment beside a SHA; when it cannot be read, the version
    that caches is assumed.

    `${{ }}` inputs and `if:` conditions (the job's and the step's) are evaluated for each kind of run
    with what is known of it: `github.event_name`, `github.ref_type`, and how `github.ref` starts
    (`refs/tags/`, `refs/heads/`, `refs/heads/release/` for a `release/**` pattern). So `cache: ${{
    !startsWith(github.ref, 'refs/tags/') }}` passes in a workflow that releases on tags and `release`
    events only, and `if: github.event_name != 'release'` still restores on a tag push. A value that
    depends on anything else (a matrix, an input, a step output) may restore, and is reported as such:
    `${{ inputs.cache || 'type=gha' }}` may hold `type=gha`. The finding points at the step's `uses:` and
    says what turns the cache off.
    """
    workflow = _Workflow(doc, ctx)
    for job_id, job in workflow.jobs.items():
        job_runs = [workflow.runs_in(job.get("if"), run) is not False for run in workflow.runs]
        for position, (i, step) in enumerate(steps(job)):
            uses = step.get("uses")
            if not isinstance(uses, str) or not any(s.action == action_name(uses).lower() for s in CACHE_SWITCHES):
                continue
            version = action_version(step, workflow.lines)
            found: tuple[bool | None, str, str, str, bool] | None = None
            for index, run in enumerate(workflow.runs):
                if not job_runs[index] or workflow.runs_in(step.get("if"), run) is False:
                    continue
                on, how, advice = workflow.restores(step, version[0] if version else None, run)
                if on is False or (found is not None and (found[0] or not on)):
                    continue
                publishes, uploads = workflow.later(job_id, index)[position]  # the step itself may publish
                why = run.release or publishes or (workflow.taken(job_id, index) if uploads else "")
                if why:
                    found = (on, how, advice, why, bool(publishes or uploads))
            if found:
                _, how, advice, why, delivers = found
                consequence = "goes into what it releases" if delivers else \
                    "runs in a release run, with the job's token and secrets"
                yield Violation(f"job {job_id} {why}, and {action_name(uses)} {how}: a poisoned cache entry "
                                f"{consequence} ({advice} in the runs that release)", step.line_of("uses"),
                                f"jobs.{job_id}.steps[{i}]")
