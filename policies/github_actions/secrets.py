"""ORG-GHA-008: secrets printed to the log or handed to unpinned actions."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import script_lines
from .workflow import action_name, alias_line, is_pinned, placed_steps, references_secret, run_text

PRINTS = re.compile(r"^\s*(?:echo|printf|print|Write-Host|Write-Output|cat\s+<<<|puts)\b", re.IGNORECASE)
# A variable a shell line reads, `$NAME` or `${NAME`: the whole word, looked up among the secret ones.
_READ = re.compile(r"\$\{?(\w+)")


def _secret_env_names(scope: object) -> frozenset[str]:
    env = scope.get("env") if isinstance(scope, YamlMap) else None
    if not isinstance(env, YamlMap):
        return frozenset()
    return frozenset(str(k) for k, v in env.items() if references_secret(v))


# Commands that print what they read: piping a secret into them shows it, encoded, in the log.
ENCODERS = frozenset({"base64", "base32", "xxd", "od", "hexdump", "rev", "tr", "sed", "awk", "cut", "cat", "tee",
                      "openssl", "jq", "fold"})


def _prints(piece: str, secret_envs: frozenset[str]) -> bool:
    """A script line that writes a secret to the log: echo/printf of it, unless it is redirected to a
    file or piped into a command that consumes it (`docker login --password-stdin`); piping it through
    an encoder that prints (`base64`, `xxd`, `rev`...) still shows it."""
    if not PRINTS.search(piece):
        return False
    command = re.split(r"\|\||&&|;", piece, maxsplit=1)[0]
    stages = re.split(r"(?<![|])\|(?![|])", command)
    if ">" in command:
        return False  # written to a file ($GITHUB_ENV, a key file)
    if len(stages) > 1 and not all((stage.split() or [""])[0] in ENCODERS for stage in stages[1:]):
        return False  # consumed by the command it is piped into
    if references_secret(stages[0]):
        return True
    return any(match.group(1) in secret_envs for match in _READ.finditer(stages[0]))


@policy(
    id="ORG-GHA-008",
    title="Secrets are not echoed or handed to unpinned third-party actions",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "GitHub masks only exact secret values: an encoded or split secret printed to the log is readable "
        "by anyone with read access. An unpinned third-party action receiving a secret can be retagged to "
        "exfiltrate it."
    ),
    remediation="""
        Never print secrets; pipe them to the command that needs them. Pin any third-party action that
        receives a secret to a full commit SHA:

            - run: echo "$REGISTRY_TOKEN" | docker login registry.example.com -u ci --password-stdin
              env:
                REGISTRY_TOKEN: ${{ secrets.REGISTRY_TOKEN }}
            - uses: docker/login-action@74a5d142397b4f367a81961eba4e8cd7edddf772  # v3.4.0
              with:
                password: ${{ secrets.REGISTRY_TOKEN }}
    """,
    tags=["ci-security", "secrets"],
    params={"trusted_owners": ["actions", "github"]},
)
def secrets_not_exposed(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No `run:` line prints a secret (`echo`/`printf`/`Write-Host` of `${{ secrets.* }}` or of an env
    variable set from one, unless piped to another command or redirected to a file), and no step passes
    a secret in `with:` or `env:` to a third-party action that is not pinned to a full commit SHA.

    Actions of the owners in the `trusted_owners` parameter (default `actions`, `github`) and local
    actions are exempt from the pinning part. Findings point at the printing line or at the input that
    carries the secret; a script used through a YAML alias (`run: *script`, `- *step`) is reported where
    the alias is.
    """
    trusted = {str(o).lower() for o in ctx.params.get("trusted_owners") or []}
    source = doc.text.splitlines()
    workflow_envs = _secret_env_names(doc.data)
    job: YamlMap | None = None
    job_envs = workflow_envs
    printing: dict[tuple[str, frozenset[str]], list[tuple[int, str]]] = {}  # an aliased script is read once
    for job_id, step_job, i, step, used_at in placed_steps(source, doc.data):
        if step_job is not job:
            job, job_envs = step_job, workflow_envs | _secret_env_names(step_job)
        resource = f"jobs.{job_id}.steps[{i}]"
        run = run_text(step)
        if run:
            step_envs = _secret_env_names(step)
            envs = job_envs | step_envs if step_envs else job_envs
            if (run, envs) not in printing:
                printing[run, envs] = [(n, piece) for n, piece in enumerate(run.split("\n"))
                                       if piece.strip() and _prints(piece, envs)]
            printed = printing[run, envs]
            used_at = used_at or alias_line(source, step, "run")
            lines = [] if used_at or not printed else script_lines(run, source, step.line_of("run"), step.end_line)
            for n, piece in printed:
                yield Violation(f"run prints a secret to the log: {piece.strip()[:120]}", used_at or lines[n],
                                f"{resource}.run")
        uses = step.get("uses")
        if not isinstance(uses, str) or is_pinned(uses) or action_name(uses).split("/")[0].lower() in trusted:
            continue
        for key in ("with", "env"):
            inputs = step.get(key)
            if not isinstance(inputs, YamlMap):
                continue
            for name, value in inputs.items():
                if references_secret(value):
                    yield Violation(f"secret passed to {uses}, which is not pinned to a commit SHA",
                                    inputs.line_of(name), f"{resource}.{key}.{name}")

