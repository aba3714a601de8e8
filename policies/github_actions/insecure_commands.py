"""ORG-GHA-012: the deprecated `set-env` and `add-path` workflow commands switched back on."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import script_lines
from .workflow import (
    MATRIX_REFERENCE,
    alias_line,
    env_file_writes,
    jobs,
    matrix_values,
    placed_steps,
    run_text,
)

SWITCH = "ACTIONS_ALLOW_UNSECURE_COMMANDS"
# The value as YAML 1.2 reads a boolean true (any case, in block or flow style: `{SWITCH: true}`).
_WRITTEN_TRUE = re.compile(rf"""{SWITCH}['"]?\s*:\s*true\s*(?:[,}}#]|$)""", re.IGNORECASE)
# An expression whose value is true: `${{ true }}`, `${{ 'true' }}`.
_EXPRESSION_TRUE = re.compile(r"^\s*\$\{\{\s*(?:true|'\s*true\s*')\s*\}\}\s*$", re.IGNORECASE)
# A line of the environment file that sets it: `ACTIONS_ALLOW_UNSECURE_COMMANDS=true`.
_FILE_TRUE = re.compile(rf"\b{SWITCH}=[ \t]*true[ \t]*(?:[\"'\s;|)]|$)", re.IGNORECASE)
_FIX = "remove it and write to $GITHUB_ENV or $GITHUB_PATH instead"


def _switched_on(value: object, line: str) -> bool:
    """The runner's test, .NET's bool.TryParse: the variable's text, trimmed, is `true` in any case.

    GitHub reads YAML 1.2, where `yes` and `on` are text, while PyYAML's 1.1 loader makes them true: a
    boolean is trusted only when the source line spells it `true`. An expression that is only `true`
    (`${{ 'true' }}`) gives the same text.
    """
    if value is True:
        return bool(_WRITTEN_TRUE.search(line))
    return isinstance(value, str) and (value.strip().lower() == "true" or bool(_EXPRESSION_TRUE.match(value)))


@policy(
    id="ORG-GHA-012",
    title="Insecure workflow commands are not re-enabled",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "With ACTIONS_ALLOW_UNSECURE_COMMANDS the runner obeys `::set-env::` and `::add-path::` in anything a "
        "step prints, so a log line from a dependency, a test or an issue title can set LD_PRELOAD or PATH "
        "for every later step: code execution with the job's token and secrets."
    ),
    remediation="""
        Remove ACTIONS_ALLOW_UNSECURE_COMMANDS and write to the environment files instead:

            - run: echo "$HOME/.local/bin" >> "$GITHUB_PATH"
    """,
    tags=["ci-security", "injection"],
)
def insecure_commands(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No `env:` of the workflow, a job or a step sets `ACTIONS_ALLOW_UNSECURE_COMMANDS` to true (block or
    flow style, `true` in any case, or an expression that is only true such as `${{ 'true' }}`), no job or
    step takes its whole `env:` from a matrix entry that does (`env: ${{ matrix.env }}`), and no `run:`
    writes `ACTIONS_ALLOW_UNSECURE_COMMANDS=true` to `$GITHUB_ENV`, which the runner honours for the
    job's later steps.

    GitHub disabled the `set-env` and `add-path` workflow commands in 2020 because any text a step prints
    could use them; this variable turns them back on. The runner reads it with .NET's bool.TryParse, so
    ` TRUE` counts and `1` or `yes` do not. The finding points at the variable's line (the matrix entry's,
    the writing command's), or at the alias or `<<:` merge that reuses it in another job or step.
    """
    source = doc.text.splitlines()
    if not isinstance(doc.data, YamlMap):
        return

    def switched_on(env: object) -> bool:
        if not isinstance(env, YamlMap) or SWITCH not in env:
            return False
        line = env.line_of(SWITCH)
        return _switched_on(env[SWITCH], source[line - 1] if 0 < line <= len(source) else "")

    def env_line(owner: YamlMap, used_at: int | None) -> int:
        """Where the variable is set for this owner: the alias that reuses its `env:` (or its step or job),
        the `<<:` that merges the variable in, else the variable's own line."""
        env = owner["env"]
        return used_at or alias_line(source, owner, "env") or alias_line(source, env, SWITCH) or env.line_of(SWITCH)

    message = f"{SWITCH} re-enables the set-env and add-path workflow commands; {_FIX}"
    if switched_on(doc.data.get("env")):
        yield Violation(message, env_line(doc.data, None), f"env.{SWITCH}")
    for job_id, job, _ in jobs(doc.data):
        job_at = alias_line(source, doc.data.get("jobs"), job_id)
        if switched_on(job.get("env")):
            yield Violation(message, env_line(job, job_at), f"jobs.{job_id}.env.{SWITCH}")
        yield from _from_matrix(source, job, job_at, f"job {job_id}", f"jobs.{job_id}.env")
    for job_id, job, i, step, used_at in placed_steps(source, doc.data):
        where = f"step {i} of job {job_id}"
        if switched_on(step.get("env")):
            yield Violation(message, env_line(step, used_at), f"jobs.{job_id}.steps[{i}].env.{SWITCH}")
        yield from _from_matrix(source, job, used_at, where, f"jobs.{job_id}.steps[{i}].env", step)
        run = run_text(step)
        lines = script_lines(run, source, step.line_of("run"), step.end_line) if run else []
        for write in env_file_writes(run):
            if write.target == "GITHUB_ENV" and _FILE_TRUE.search(f"{write.expanded}\n{write.verbatim}"):
                yield Violation(f"{SWITCH}=true written to GITHUB_ENV re-enables the set-env and add-path "
                                f"workflow commands for the rest of job {job_id}; {_FIX}",
                                used_at or alias_line(source, step, "run") or lines[write.index],
                                f"jobs.{job_id}.steps[{i}].run")


def _from_matrix(source: list[str], job: YamlMap, used_at: int | None, where: str, resource: str,
                 owner: YamlMap | None = None) -> Iterator[Violation]:
    """The matrix entries that switch the commands on for a job or step whose whole `env:` is one
    (`env: ${{ matrix.env }}`), each at its line (or at the alias that reuses the job or step)."""
    env = (owner if owner is not None else job).get("env")
    reference = MATRIX_REFERENCE.match(env) if isinstance(env, str) else None
    for entry in (matrix_values(job, reference.group(1)) if reference else None) or []:
        line = entry.line_of(SWITCH) if isinstance(entry, YamlMap) else 0
        if isinstance(entry, YamlMap) and SWITCH in entry and _switched_on(
                entry[SWITCH], source[line - 1] if 0 < line <= len(source) else ""):
            yield Violation(f"{SWITCH} from the matrix re-enables the set-env and add-path workflow commands in "
                            f"{where}; {_FIX}", used_at or line, resource)
