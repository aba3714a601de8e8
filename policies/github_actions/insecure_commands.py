"""ORG-GHA-012: the deprecated `set-env` and `add-path` workflow commands switched back on."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .workflow import MATRIX_REFERENCE, env_blocks, jobs, matrix_values, steps

SWITCH = "ACTIONS_ALLOW_UNSECURE_COMMANDS"


_WRITTEN_TRUE = re.compile(r":\s*true\s*(?:#.*)?$", re.IGNORECASE)


def _switched_on(value: object, line: str) -> bool:
    """The runner's test: the variable's text, trimmed, is `true` in any case.

    GitHub reads YAML 1.2, where `yes` and `on` are text, while PyYAML's 1.1 loader makes them true: a
    boolean is trusted only when the source line spells it `true`.
    """
    if value is True:
        return bool(_WRITTEN_TRUE.search(line))
    return isinstance(value, str) and value.strip().lower() == "true"


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
    """No `env:` of the workflow, a job or a step sets `ACTIONS_ALLOW_UNSECURE_COMMANDS` to true, and no
    step takes its whole `env:` from a matrix entry that does (`env: ${{ matrix.env }}`).

    GitHub disabled the `set-env` and `add-path` workflow commands in 2020 because any text a step prints
    could use them; this variable turns them back on. The finding points at the variable's line.
    """
    source = doc.text.splitlines()

    def switched_on(env: YamlMap) -> bool:
        line = env.line_of(SWITCH)
        return SWITCH in env and _switched_on(env[SWITCH], source[line - 1] if 0 < line <= len(source) else "")

    for resource, env in env_blocks(doc.data):
        if switched_on(env):
            yield Violation(f"{SWITCH} re-enables the set-env and add-path workflow commands",
                            env.line_of(SWITCH), f"{resource}.{SWITCH}")
    for job_id, job, _ in jobs(doc.data):
        for i, step in steps(job):
            reference = MATRIX_REFERENCE.match(step["env"]) if isinstance(step.get("env"), str) else None
            entries = (matrix_values(job, reference.group(1)) if reference else None) or []
            for entry in entries:
                if isinstance(entry, YamlMap) and switched_on(entry):
                    yield Violation(f"{SWITCH} from the matrix re-enables the set-env and add-path workflow "
                                    f"commands in step {i} of job {job_id}", entry.line_of(SWITCH),
                                    f"jobs.{job_id}.steps[{i}].env")
