"""ORG-GHA-017: attacker-controlled text written to GITHUB_ENV or GITHUB_PATH."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import expression_matches, script_lines
from .workflow import (
    PRIVILEGED_TRIGGERS,
    UNTRUSTED,
    alias_line,
    env_file_writes,
    outsider_field,
    placed_steps,
    run_text,
    triggers,
    value_flows,
)

_VARIABLE = re.compile(r"\$(?:env:)?\{?([A-Za-z_]\w*)")
# What GitHub and the runner set: the run's numbers, SHAs and names, the workspace and tool folders. Of the
# GITHUB_ variables only GITHUB_HEAD_REF is the pull request's (its branch name, which its author chooses).
_RUNNER_SET = re.compile(r"^(?:PWD|HOME|CI|GITHUB_(?!HEAD_REF$)\w+|RUNNER_\w+|ImageOS|ImageVersion)$")
# A field GitHub fills with a number, a hash, an id, a URL or an account name (letters, digits and dashes),
# which no one can shape into a command.
_FIXED_LEAF = re.compile(r"^(?:id|number|node_id|sha|url|login|run_attempt|.*_(?:id|url|at|count|number|sha))$")
# The environment file's multi-line form, `NAME<<DELIMITER` (not a shell here-document, `cat <<EOF`).
_MULTI_LINE = re.compile(r"\w<<")
_FIX = {
    "GITHUB_ENV": "pass it as a step output or an env var, not through GITHUB_ENV",
    "GITHUB_PATH": "put only fixed folders on GITHUB_PATH",
}


def _outsider_text(expression: str, tainted: dict[str, str]) -> tuple[str, str] | None:
    """(context as written, who writes it) of the first context in an expression whose text an outsider
    writes: a field of the event (or `github.head_ref`), or `env.NAME` of a variable set from one."""
    flows = value_flows(expression)
    if flows is None:  # GitHub refuses to run it; judged by the contexts it names, as written
        found = UNTRUSTED.search(expression)
        return (found.group(0), "text an outsider writes") if found else None
    for flow in flows:
        if flow.path[0] == "github":
            why = outsider_field(flow.path, flow.whole)
            if why:
                return flow.text, why
        elif flow.path[0] == "env" and len(flow.path) == 2 and flow.path[1] in tainted:
            return flow.text, tainted[flow.path[1]]
    return None


def _tainted_env(tainted: dict[str, str], scope: object) -> dict[str, str]:
    """The variables set from an outsider's text once the scope's `env:` is applied (lower-case name -> why):
    a variable the scope sets from one is added, one it sets otherwise is dropped."""
    env = scope.get("env") if isinstance(scope, YamlMap) else None
    if not isinstance(env, YamlMap):
        return tainted
    found = dict(tainted)
    for name, value in env.items():
        key = str(name).lower()
        source = next(filter(None, (_outsider_text(m.group(1), tainted) for m in expression_matches(value))), None) \
            if isinstance(value, str) else None
        if source:
            found[key] = f"set from `{source[0]}`, {source[1]}"
        else:
            found.pop(key, None)
    return found


def _untrusted(expanded: str, verbatim: str, tainted: dict[str, str]) -> tuple[str, str] | None:
    """(what, who writes it) of the outsider's text a write carries: a `${{ }}` (GitHub replaces it even in a
    quoted here-document) or a variable the shell expands."""
    for text in (expanded, verbatim):
        for expression in (m.group(1) for m in expression_matches(text)):
            found = _outsider_text(expression, tainted)
            if found:
                return found
    for match in _VARIABLE.finditer(expanded):
        if match.group(1) == "GITHUB_HEAD_REF":
            return match.group(0), outsider_field(("github", "head_ref"))
        if match.group(1).lower() in tainted:
            return match.group(0), tainted[match.group(1).lower()]
    return None


def _fixed(expression: str) -> bool:
    """An expression whose text GitHub or the maintainers set: literals, the run's numbers and SHAs
    (`github.event.pull_request.head.sha`, `github.run_id`), `vars` and `secrets`."""
    flows = value_flows(expression)
    return flows is not None and all(
        flow.path[0] in ("vars", "secrets") or (flow.path[0] == "github" and (
            flow.path[1:2] != ("event",) or bool(_FIXED_LEAF.match(flow.path[-1])))) for flow in flows)


def _unknown(expanded: str, verbatim: str) -> str:
    """What a write carries whose origin the check cannot follow ('' when nothing): a `${{ }}` other than a
    fixed one, a variable other than the runner's, or a multi-line value (`NAME<<EOF`), which is a
    command's output."""
    for text in (expanded, verbatim):
        for match in expression_matches(text):
            if not _fixed(match.group(1)):
                return f"`{' '.join(match.group(0).split())}`"
    variable = next((m.group(0) for m in _VARIABLE.finditer(expanded) if not _RUNNER_SET.match(m.group(1))), "")
    if variable:
        return f"`{variable}`"
    return "a multi-line value (`NAME<<EOF`, a command's output)" if _MULTI_LINE.search(expanded + verbatim) \
        else ""


@policy(
    id="ORG-GHA-017",
    title="Attacker-controlled text is not written to GITHUB_ENV or GITHUB_PATH",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "Every later step of the job reads GITHUB_ENV and GITHUB_PATH: a pull request title that reaches them "
        "can set LD_PRELOAD, BASH_ENV or NODE_OPTIONS, or put its own folder first on PATH, and run code with "
        "the job's token and secrets."
    ),
    remediation="""
        Pass values between steps as step outputs, and write only literal or trusted values to the files:

            - id: title
              env:
                TITLE: ${{ github.event.pull_request.title }}
              run: echo "title=$TITLE" >> "$GITHUB_OUTPUT"
    """,
    tags=["ci-security", "injection"],
)
def no_untrusted_env_writes(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No `run:` command writes to `$GITHUB_ENV` or `$GITHUB_PATH` text an outsider controls.

    A write is a redirection (`>>`, `>`), `tee` (`-a`, `--append`) or PowerShell's `Out-File`,
    `Add-Content` or `Set-Content`, with what it writes: the command's own line, the lines of the `{ }`,
    `( )` or loop it closes (`} >> "$GITHUB_ENV"`, GitHub's documented multi-line form) and the body of the
    here-document it opens (`cat <<EOF >> "$GITHUB_ENV"`). The text is an outsider's when it expands a field
    they write (`${{ github.event.issue.title }}`, `github.event['issue']['title']`, `github.head_ref`,
    `$GITHUB_HEAD_REF`), or `${{ env.NAME }}` or a shell variable (`$NAME`, `$env:NAME`) that the workflow,
    job or step `env:` sets from one; the expressions are parsed, so `||`, `format()` and the like are read
    as GitHub reads them.

    In a workflow run by `pull_request_target`, `workflow_run` or `issue_comment`, which hold the base
    repository's secrets, a write is reported too when it carries what the check cannot trace: a variable
    (other than the runner's and GitHub's `GITHUB_*`, `RUNNER_*`, `$PWD`, `$HOME`), an expression (other
    than literals, `vars`, `secrets` and the run's fixed values: SHAs, ids, numbers) or a multi-line value
    (`NAME<<EOF`), which is a command's output. Literal writes (`echo "CI=true" >> "$GITHUB_ENV"`) pass.
    The finding points at the writing line, or at the line that reuses the step through a YAML alias.
    """
    events, _ = triggers(doc.data)
    privileged = sorted(events & PRIVILEGED_TRIGGERS)
    source = doc.text.splitlines()
    workflow_tainted = _tainted_env({}, doc.data)
    seen: set[tuple[int, str]] = set()
    for job_id, job, i, step, used_at in placed_steps(source, doc.data):
        run = run_text(step)
        if not run:
            continue
        tainted = _tainted_env(_tainted_env(workflow_tainted, job), step)
        lines = script_lines(run, source, step.line_of("run"), step.end_line)
        at = used_at or alias_line(source, step, "run")
        for write in env_file_writes(run):
            found = _untrusted(write.expanded, write.verbatim, tainted)
            if found:
                message = f"`{found[0]}` ({found[1]}) is written to {write.target}; {_FIX[write.target]}"
            elif privileged and (what := _unknown(write.expanded, write.verbatim)):
                message = (f"{write.target} is written from {what} in a {' / '.join(privileged)} workflow, which "
                           f"an outsider triggers; {_FIX[write.target]}")
            else:
                continue
            line = at or lines[write.index]
            if (line, message) not in seen:
                seen.add((line, message))
                yield Violation(message, line, f"jobs.{job_id}.steps[{i}].run")
