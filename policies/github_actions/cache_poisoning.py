"""ORG-GHA-014: jobs that release do not restore build state from the GitHub Actions cache.

A cache entry is written by whatever ran before under the same key, and every workflow run on the
default branch can write one; a release job that restores it runs or ships those files. The audit
reads, for each cache-aware step, whether it restores in a run that releases, using three small
models of our own: which actions restore and which input turns that off (`CACHE_SWITCHES`), what
makes a job release (its triggers, `PUBLISHERS`, `PUBLISH_COMMAND`), and what a `${{ }}` guard is
worth in a release run (`_Evaluator`, which knows only the event, `github.ref` and `github.ref_type`).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import as_list
from .deployments import DEPLOY_ACTIONS, DEPLOY_COMMANDS, deploys
from .workflow import action_name, jobs, run_text, steps, triggers


@dataclasses.dataclass(frozen=True)
class CacheSwitch:
    """One input of a cache-aware action that decides whether the step restores from the Actions cache.

    An action whose cache nothing turns off has `input=""`. `default` is the input's value when it is not
    written, from major version `since` on (before it the default restored nothing). An input that
    `disables` turns the cache off when true (`lookup-only`); otherwise any value but "" and "false" turns
    it on, or, with `needs`, a value that contains that text. `auto_from` is the major version from which
    the value `auto` leaves the cache off in release, pull_request_target and workflow_run runs.
    """

    action: str
    input: str = ""
    default: str = ""
    disables: bool = False
    since: int = 0
    needs: str = ""
    auto_from: int = 0


# The cache-aware actions the audit knows, read from each action's action.yml and README (lower case).
CACHE_SWITCHES = (
    CacheSwitch("actions/cache", "lookup-only", "false", disables=True),
    CacheSwitch("actions/cache/restore", "lookup-only", "false", disables=True),
    CacheSwitch("actions/setup-go", "cache", "true", since=4),
    CacheSwitch("actions/setup-node", "cache"),
    CacheSwitch("actions/setup-node", "package-manager-cache", "true", since=5),
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
    "docker/build-push-action": "push",
}
PUBLISH_COMMAND = re.compile(
    r"\b(?:(?:npm|pnpm|yarn(?:\s+npm)?)\s+publish|cargo\s+publish|twine\s+upload|(?:uv|poetry|flit|hatch)\s+publish"
    r"|gem\s+push|nuget\s+push|docker\s+(?:image\s+)?push|gh\s+release\s+(?:create|upload)"
    r"|mvn\b[^\n]*\sdeploy\b|gradlew?\b[^\n]*\spublish(?!ToMavenLocal)\w*)"
)
UPLOADS = frozenset({"actions/upload-artifact", "actions/upload-pages-artifact"})
DOWNLOADS = frozenset({"actions/download-artifact", "actions/deploy-pages"})


class _Unknown:
    """A value only known at run time."""


UNKNOWN = _Unknown()


@dataclasses.dataclass(frozen=True)
class _Prefixed:
    """A string known only by how it starts: `github.ref` is `refs/tags/...` in a tag run."""

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


def _ref_run(event: str, ref_type: str, release: str) -> _Run:
    ref = _Prefixed("refs/tags/" if ref_type == "tag" else "refs/heads/")
    return _Run({"github.event_name": event, "github.ref_type": ref_type, "github.ref": ref}, release)


def _runs(workflow: object) -> Iterator[_Run]:
    """The kinds of run the workflow's triggers make.

    A `release` event and a push of tags (`tags:`/`tags-ignore:`) release; so does a push to a branch whose
    name says release. A push filtered on tags only never runs for branches, and one filtered on branches
    only never runs for tags (GitHub's rule); any other event is a run whose ref is not known.
    """
    events, _ = triggers(workflow)
    on = workflow.get("on" if "on" in workflow else True) if isinstance(workflow, YamlMap) else None
    for event in sorted(events):
        body = on.get(event) if isinstance(on, YamlMap) else None
        if event == "release":
            yield _ref_run("release", "tag", "runs on release events")
            continue
        if event != "push" or not isinstance(body, YamlMap):
            yield _Run({"github.event_name": event})
            continue
        tags = "tags" in body or "tags-ignore" in body
        branches = [str(b) for b in as_list(body.get("branches"))]
        if tags:
            yield _ref_run("push", "tag", "runs on tag pushes")
        if branches or "branches-ignore" in body:
            named = [b for b in branches if "release" in b.lower()]
            yield _ref_run("push", "branch", f"runs on pushes to the branch {named[0]}" if named else "")
        elif not tags:
            yield _Run({"github.event_name": "push"})


_TOKEN = re.compile(
    r"\s*(?:'(?:[^']|'')*'|\d+(?:\.\d+)?|==|!=|<=|>=|&&|\|\||[!<>(),]|[A-Za-z_][\w-]*(?:\.[\w*-]+|\[[^\]]*\])*)"
)


class _Evaluator:
    """Evaluates a GitHub Actions expression with part of its context known, in three values: a value,
    or UNKNOWN where it depends on something not known. Anything it cannot parse is UNKNOWN."""

    def __init__(self, text: str, known: Mapping[str, object]) -> None:
        self.tokens: list[str] = []
        position, text = 0, text.strip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if not match or not match.group(0).strip():
                raise ValueError(text)
            self.tokens.append(match.group(0).strip())
            position = match.end()
        self.position = 0
        self.known = known

    def value(self) -> object:
        result = self._or()
        if self.position != len(self.tokens):
            raise ValueError(self.tokens[self.position])
        return result

    def _peek(self) -> str:
        return self.tokens[self.position] if self.position < len(self.tokens) else ""

    def _take(self) -> str:
        token = self._peek()
        if not token:
            raise ValueError("unexpected end")
        self.position += 1
        return token

    def _or(self) -> object:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            truth = _truth(left)
            left = left if truth else right if truth is False else True if _truth(right) else UNKNOWN
        return left

    def _and(self) -> object:
        left = self._compare()
        while self._peek() == "&&":
            self._take()
            right = self._compare()
            truth = _truth(left)
            left = right if truth else left if truth is False else False if _truth(right) is False else UNKNOWN
        return left

    def _compare(self) -> object:
        left = self._unary()
        while self._peek() in ("==", "!=", "<", ">", "<=", ">="):
            operator = self._take()
            right = self._unary()
            equal = _equal(left, right) if operator in ("==", "!=") else UNKNOWN
            left = (not equal) if operator == "!=" and isinstance(equal, bool) else equal
        return left

    def _unary(self) -> object:
        if self._peek() == "!":
            self._take()
            truth = _truth(self._unary())
            return UNKNOWN if truth is None else not truth
        return self._primary()

    def _primary(self) -> object:
        token = self._take()
        if token == "(":
            inner = self._or()
            if self._take() != ")":
                raise ValueError("unbalanced")
            return inner
        if token.startswith("'"):
            return token[1:-1].replace("''", "'")
        if token[0].isdigit():
            return float(token)
        if token in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token]
        if not (token[0].isalpha() or token[0] == "_"):
            raise ValueError(token)
        if self._peek() != "(":
            return self.known.get(token.lower(), UNKNOWN)
        self._take()
        arguments: list[object] = []
        while self._peek() != ")":
            arguments.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take()
        return _call(token.lower(), arguments)


def _truth(value: object) -> bool | None:
    """Whether a value counts as true (None when not known)."""
    if isinstance(value, _Unknown):
        return None
    if isinstance(value, _Prefixed):
        return True
    return bool(value)


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


_FENCED = re.compile(r"\s*\$\{\{(.*)\}\}\s*", re.DOTALL)


def _evaluate(text: str, run: _Run) -> object:
    try:
        return _Evaluator(text, run.known).value()
    except (ValueError, IndexError):
        return UNKNOWN


def _input(written: object, run: _Run) -> object:
    """An input's value in a run: its text, the value of its one `${{ }}` expression, or UNKNOWN."""
    if isinstance(written, bool):
        return "true" if written else "false"
    if not isinstance(written, str):
        return "" if written is None else str(written)
    fenced = _FENCED.fullmatch(written)
    if fenced and "${{" not in fenced.group(1) and "}}" not in fenced.group(1):
        value = _evaluate(fenced.group(1), run)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() else str(value)
        return value if isinstance(value, str | _Unknown) else UNKNOWN
    return UNKNOWN if "${{" in written else written


def _runs_in(condition: object, run: _Run) -> bool | None:
    """Whether an `if:` lets its job or step run in this kind of run (None when it cannot be told)."""
    if condition is None or isinstance(condition, bool):
        return condition is not False
    text = str(condition)
    fenced = _FENCED.fullmatch(text)
    if fenced and "${{" not in fenced.group(1):
        text = fenced.group(1)
    elif "${{" in text:
        return None
    return _truth(_evaluate(text, run))


_VERSION = re.compile(r"^v?(\d+)(?:\.\d+)*$")
_VERSION_COMMENT = re.compile(r"#\s*v?(\d+)(?:\.\d+)*\b")


def _major(uses: str, line_text: str) -> int | None:
    """The major version of an action reference: its tag, or the `# vX.Y.Z` comment beside a SHA."""
    ref = uses.partition("@")[2].strip()
    match = _VERSION.match(ref) or _VERSION_COMMENT.search(line_text)
    return int(match.group(1)) if match else None


def _written(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _switch(switch: CacheSwitch, step: YamlMap, major: int | None, run: _Run) -> tuple[bool | None, str]:
    """Whether one switch makes the step restore in this run (None: only known at run time), and how."""
    if not switch.input:
        return True, "always restores"
    with_ = step.get("with")
    if not isinstance(with_, YamlMap):
        return (None, "may restore (its inputs are an expression)") if with_ is not None else \
            _default(switch, major, run)
    if with_.get(switch.input) is None:
        return _default(switch, major, run)
    value = _input(with_[switch.input], run)
    if isinstance(value, _Unknown):
        return None, f"may restore ({switch.input} is only known at run time)"
    on = _on(switch, str(value).strip().lower(), major, run)
    return on, f"restores ({switch.input}: {_written(with_[switch.input])})"


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


def _step_publishes(step: YamlMap, run: _Run, deploying: bool) -> str:
    """How a step publishes in this run ('' when it does not, or its `if:` keeps it from running)."""
    if _runs_in(step.get("if"), run) is False:
        return ""
    uses = step.get("uses")
    name = action_name(uses).lower()
    if name in PUBLISHERS:
        toggle = PUBLISHERS[name]
        with_ = step.get("with")
        value = _input(with_.get(toggle) if isinstance(with_, YamlMap) else None, run) if toggle else "true"
        if isinstance(value, _Unknown) or str(value).strip().lower() not in ("", "false"):
            return f"publishes with {action_name(uses)} (line {step.line_of('uses')})"
    if deploying and isinstance(uses, str) and DEPLOY_ACTIONS.match(uses):
        return f"deploys with {action_name(uses)} (line {step.line_of('uses')})"
    command = PUBLISH_COMMAND.search(run_text(step)) or (DEPLOY_COMMANDS.search(run_text(step)) if deploying else None)
    return f"runs `{' '.join(command.group(0).split())}` (line {step.line_of('run')})" if command else ""


def _publishes(later: list[tuple[int, YamlMap]], deploying: bool, run: _Run) -> str:
    """How one of these steps (the cache step and those after it) publishes in this run ('' when none does)."""
    return next((why for _, step in later if (why := _step_publishes(step, run, deploying))), "")


def _consumers(all_jobs: Mapping[str, YamlMap], job_id: str) -> list[str]:
    """The jobs that need this one, directly or through others."""
    found: list[str] = []
    todo = [job_id]
    while todo:
        current = todo.pop()
        for other, job in all_jobs.items():
            if other not in found and current in as_list(job.get("needs")):
                found.append(other)
                todo.append(other)
    return found


def _publishes_artifact(later: list[tuple[int, YamlMap]], consumers: list[tuple[str, YamlMap]], run: _Run) -> str:
    """How a later job publishes what one of these steps uploads as an artifact, in this run ('' when none
    does): the consumer needs this job, takes an artifact (download-artifact, deploy-pages) and publishes."""
    if not any(action_name(step.get("uses")).lower() in UPLOADS and _runs_in(step.get("if"), run) is not False
               for _, step in later):
        return ""
    for consumer_id, consumer in consumers:
        consumer_steps = list(steps(consumer))
        takes = [n for n, (_, step) in enumerate(consumer_steps) if action_name(step.get("uses")).lower() in DOWNLOADS]
        if takes and _runs_in(consumer.get("if"), run) is not False:
            why = _publishes(consumer_steps[takes[0]:], bool(deploys(consumer)), run)
            if why:
                return f"builds an artifact that job {consumer_id} takes and {why}"
    return ""


def _restores(step: YamlMap, major: int | None, run: _Run) -> tuple[bool | None, str]:
    """Whether the step restores from the cache in this run (True, None: may, False), and how."""
    name = action_name(step.get("uses")).lower()
    results = [_switch(s, step, major, run) for s in CACHE_SWITCHES if s.action == name]
    for wanted in (True, None):
        for on, how in results:
            if on is wanted:
                return on, how
    return False, ""


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
                package-manager-cache: false          # on by default since v5
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
    `tags-ignore:`) or a push to a branch whose name contains "release". In any other run it releases
    when the cache step or a later one publishes: a publishing action (`pypa/gh-action-pypi-publish`,
    `softprops/action-gh-release`, `ncipollo/release-action`, `goreleaser/goreleaser-action`,
    `rubygems/release-gem`, `JS-DevTools/npm-publish`, `docker/build-push-action` whose `push` is not
    false), a `run:` that publishes (`npm publish`, `cargo publish`, `twine upload`, `uv publish`,
    `gem push`, `nuget push`, `docker push`, `gh release create`, `mvn deploy`, `gradle publish`), a
    deployment as ORG-GHA-006 recognises it; or when it uploads an artifact that a job needing it takes
    (`download-artifact`, `deploy-pages`) and publishes.

    Cache-aware steps, and what turns their cache off: `actions/cache` and `actions/cache/restore`
    (`lookup-only: true`; `actions/cache/save` only writes), `Swatinem/rust-cache` (`lookup-only:
    true`), `gradle/actions/setup-gradle` and `gradle/gradle-build-action` (`cache-disabled: true`),
    `ramsey/composer-install` (`ignore-cache: true`); on by default: `actions/setup-go` (v4+),
    `actions/setup-node` (v5+, `package-manager-cache`), `actions-rust-lang/setup-rust-toolchain`,
    `astral-sh/setup-uv` (`enable-cache: auto`, which from v10 is off in `release`,
    `pull_request_target` and `workflow_run` runs); on when asked: `actions/setup-node`, `-python`,
    `-java` (`cache:` not empty), `actions/setup-dotnet` (`cache: true`), `ruby/setup-ruby`
    (`bundler-cache`), `PyO3/maturin-action` (`sccache`), `docker/build-push-action`
    (`cache-from: type=gha`); always: `Mozilla-Actions/sccache-action`. The version comes from the tag
    or a `# vX.Y.Z` comment beside a SHA; when it cannot be read, the version that caches is assumed.

    `${{ }}` inputs and `if:` conditions (the job's and the step's) are evaluated for each kind of run
    with what is known of it: `github.event_name`, `github.ref_type`, and `github.ref` starting with
    `refs/tags/` or `refs/heads/`. So `cache: ${{ !startsWith(github.ref, 'refs/tags/') }}` passes in a
    workflow that releases on tags and `release` events only, and `if: github.event_name != 'release'`
    still restores on a tag push. A value that depends on anything else (a matrix, an input, a step
    output) may restore, and is reported as such. The finding points at the step's `uses:`.
    """
    runs = sorted(_runs(doc.data), key=lambda run: not run.release)  # a release trigger is the first reason given
    lines = doc.text.splitlines()
    all_jobs = {job_id: job for job_id, job, _ in jobs(doc.data)}
    for job_id, job in all_jobs.items():
        job_steps = list(steps(job))
        deploying = bool(deploys(job))
        consumers = [(other, all_jobs[other]) for other in _consumers(all_jobs, job_id)]
        for position, (i, step) in enumerate(job_steps):
            uses = step.get("uses")
            if not isinstance(uses, str) or not any(s.action == action_name(uses).lower() for s in CACHE_SWITCHES):
                continue
            line = step.line_of("uses")
            major = _major(uses, lines[line - 1] if 0 < line <= len(lines) else "")
            later = job_steps[position:]  # the step itself may publish (docker/build-push-action)
            found: tuple[bool | None, str, str] | None = None
            for run in runs:
                if _runs_in(job.get("if"), run) is False or _runs_in(step.get("if"), run) is False:
                    continue
                why = run.release or _publishes(later, deploying, run) or _publishes_artifact(later, consumers, run)
                on, how = _restores(step, major, run) if why else (False, "")
                if on is not False and (found is None or (on and not found[0])):
                    found = (on, how, why)
            if found:
                _, how, why = found
                yield Violation(f"job {job_id} {why}, and {action_name(uses)} {how}: a poisoned cache entry "
                                f"goes into what it releases", line, f"jobs.{job_id}.steps[{i}]")
