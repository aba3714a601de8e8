"""ORG-GHA-017: attacker-controlled text written to GITHUB_ENV or GITHUB_PATH."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import text_lines
from .workflow import EXPRESSION, PRIVILEGED_TRIGGERS, UNTRUSTED, jobs, run_text, steps, text_operands, triggers

# A shell or PowerShell line that appends to (or overwrites) one of the two files: `>> $GITHUB_ENV`,
# `>> "${GITHUB_PATH}"`, `| tee -a $GITHUB_ENV`, `Out-File -FilePath $env:GITHUB_ENV`, `Add-Content $env:...`.
_TARGET = r"[\"']?\$(?:\{GITHUB_(?:ENV|PATH)\}|GITHUB_(?:ENV|PATH)\b|env:GITHUB_(?:ENV|PATH)\b)[\"']?"
WRITE = re.compile(
    rf"(?:>>?\s*{_TARGET}|\btee\b(?:\s+-\w+)*\s+{_TARGET}|\b(?:Out-File|Add-Content|Set-Content)\b.*{_TARGET})",
    re.IGNORECASE,
)
_VARIABLE = re.compile(r"\$(?:env:)?\{?([A-Za-z_]\w*)")
# What the runner itself sets: the workspace and tool folders are not the pull request's to choose.
_RUNNER_SET = re.compile(r"^(?:PWD|HOME|GITHUB_WORKSPACE|GITHUB_ACTION_PATH|RUNNER_\w+|ImageOS|ImageVersion)$")


def _untrusted_env(*scopes: object) -> set[str]:
    """Names of the variables these `env:` scopes set from an expression an outsider controls."""
    names: set[str] = set()
    for scope in scopes:
        env = scope.get("env") if isinstance(scope, YamlMap) else None
        if isinstance(env, YamlMap):
            names.update(str(name) for name, value in env.items() if isinstance(value, str) and any(
                UNTRUSTED.search(part) for e in EXPRESSION.findall(value) for part in text_operands(e)))
    return names


def _untrusted_in(text: str, names: set[str]) -> str:
    """The untrusted expression or variable the text expands ('' when none)."""
    for expression in EXPRESSION.findall(text):
        found = next(filter(None, (UNTRUSTED.search(part) for part in text_operands(expression))), None)
        if found:
            return found.group(0)
    return next((f"${m.group(1)}" for m in _VARIABLE.finditer(text) if m.group(1) in names), "")


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
    """No `run:` line writes to `$GITHUB_ENV` or `$GITHUB_PATH` (`>>`, `tee`, PowerShell's `Out-File` or
    `Add-Content`) text that expands an expression an outsider controls, directly (`${{ github.head_ref }}`)
    or through a variable the workflow, job or step `env:` sets from one.

    In a workflow run by `pull_request_target`, `workflow_run` or `issue_comment`, which hold the base
    repository's secrets, any write that expands a variable or an expression is reported too: its value
    may come from the pull request by a path the check cannot follow. Literal writes
    (`echo "CI=true" >> "$GITHUB_ENV"`) and the runner's own folders (`$PWD`, `$HOME`, `$RUNNER_TEMP`,
    `$GITHUB_WORKSPACE`) pass. The finding points at the writing line.
    """
    events, _ = triggers(doc.data)
    privileged = sorted(events & PRIVILEGED_TRIGGERS)
    workflow_names = _untrusted_env(doc.data)
    for job_id, job, _ in jobs(doc.data):
        for i, step in steps(job):
            run = run_text(step)
            if not run:
                continue
            names = workflow_names | _untrusted_env(job, step)
            for line, piece in text_lines(run, doc.text, step.line_of("run"), step.end_line):
                write = WRITE.search(piece)
                if not write:
                    continue
                target = "GITHUB_PATH" if "GITHUB_PATH" in write.group(0).upper() else "GITHUB_ENV"
                content = piece[:write.start()] + piece[write.end():]
                source = _untrusted_in(content, names)
                if source:
                    message = f"untrusted `{source}` is written to {target}"
                elif privileged and ("<<" in content or "${{" in content or any(
                        not _RUNNER_SET.match(m.group(1)) for m in _VARIABLE.finditer(content))):
                    message = (f"{target} is written from a variable in a {' / '.join(privileged)} workflow, "
                               "which an outsider triggers")
                else:
                    continue
                yield Violation(message, line, f"jobs.{job_id}.steps[{i}].run")
