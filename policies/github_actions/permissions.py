"""ORG-GHA-004, ORG-GHA-005 and ORG-GHA-018: the job token's permissions.

Three controls, one severity each: every job's token is declared and scoped (004, medium), no token can
write everything (005, high), and write scopes go to the jobs that use them, not to every job of the
workflow (018, medium). A job that widens the workflow's read-only permissions to the one write it needs
is the pattern all three ask for, and passes.
"""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .workflow import declares_permissions, jobs, triggers, write_scopes


def _inheriting(workflow: YamlMap) -> list[str]:
    """The jobs that run with the workflow-level `permissions:` (those without a block of their own)."""
    return [job_id for job_id, job, _ in jobs(workflow) if not declares_permissions(job)]


def _jobs_phrase(job_ids: list[str]) -> str:
    """`job build` or `jobs build, test`, for a message."""
    return f"job{'s' if len(job_ids) > 1 else ''} {', '.join(job_ids)}"


def _is_read_all(permissions: object) -> bool:
    return isinstance(permissions, str) and permissions.strip().lower() == "read-all"


@policy(
    id="ORG-GHA-004",
    title="Workflows declare least-privilege token permissions",
    kinds=["github-actions"],
    severity="medium",
    rationale=(
        "Without `permissions:` the GITHUB_TOKEN gets the repository's default, which is read-write on "
        "older organisations; a compromised step can then push code or create releases. `read-all` is "
        "declared but not scoped: it reads every scope, from private packages and workflow artifacts to the "
        "code-scanning alerts that list unfixed vulnerabilities, where a job needs one or two."
    ),
    remediation="""
        Declare read-only permissions for the workflow and widen them only in the job that needs more:

            permissions:
              contents: read
            jobs:
              release:
                permissions:
                  contents: write
    """,
    tags=["ci-security", "least-privilege"],
)
def explicit_permissions(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every job runs with token permissions that are declared and scoped: the workflow declares a top-level
    `permissions:` block, or else every job declares its own, and no block is `read-all`.

    A job without permissions in a workflow without them is reported at its job id. Reusable workflows
    (triggered only by `workflow_call`) run with at most what their caller grants, which this rule checks
    in the caller, so their own jobs are exempt, except a job that itself calls a reusable workflow
    (`uses:` at job level): that hands the token on to a workflow maintained elsewhere, and the call is
    where to say which scopes cross. `read-all` is reported at its `permissions:` line, in a job, or at
    the workflow level when a job inherits it (when every job declares its own, the workflow's block
    reaches none). Granting writes is ORG-GHA-005's and ORG-GHA-018's concern; a job that widens the
    workflow's `contents: read` to the one write it needs passes all three. A bare `permissions:` (null)
    declares nothing: the token keeps the repository's default.
    """
    if not isinstance(doc.data, YamlMap):
        return
    workflow = doc.data
    if declares_permissions(workflow):
        heirs = _inheriting(workflow)
        if _is_read_all(workflow["permissions"]) and heirs:
            yield Violation(f"the workflow grants permissions: read-all (read on every scope) to "
                            f"{_jobs_phrase(heirs)}; grant only the scopes used", workflow.line_of("permissions"),
                            "permissions")
    else:
        events, _ = triggers(workflow)
        reusable = events == {"workflow_call"}
        for job_id, job, line in jobs(workflow):
            if declares_permissions(job):
                continue
            if not reusable:
                yield Violation(f"job {job_id} runs with the default token permissions; declare `permissions:` "
                                "for the workflow or the job", line, f"jobs.{job_id}")
            elif isinstance(job.get("uses"), str):
                yield Violation(f"job {job_id} passes the token its caller granted on to {job['uses'].strip()}; "
                                "declare the `permissions:` that workflow needs", line, f"jobs.{job_id}")
    for job_id, job, _ in jobs(workflow):
        if _is_read_all(job.get("permissions")):
            yield Violation(f"job {job_id} grants permissions: read-all (read on every scope); grant only the "
                            "scopes it reads", job.line_of("permissions"), f"jobs.{job_id}.permissions")


@policy(
    id="ORG-GHA-005",
    title="No workflow or job grants write-all permissions",
    kinds=["github-actions"],
    severity="high",
    rationale="`write-all` hands every step a token that can push code, publish packages and change settings.",
    remediation="""
        Grant only the scopes the job needs:

            permissions:
              contents: read
              packages: write
    """,
    tags=["ci-security", "least-privilege"],
    covers=["CKV2_GHA_1"],  # top-level write-all, and each job's too
)
def no_write_all(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Neither the workflow's nor any job's `permissions:` is `write-all`.

    Each `write-all` is reported at its `permissions:` line. The workflow's is reported even when every job
    declares its own block (as Checkov's CKV2_GHA_1 does): the next job added without one inherits it.
    `read-all` cannot write and is ORG-GHA-004's (medium), not this rule's.
    """
    if not isinstance(doc.data, YamlMap):
        return
    scopes: list[tuple[str, str, YamlMap]] = [("the workflow", "permissions", doc.data)]
    scopes += [(f"job {job_id}", f"jobs.{job_id}.permissions", job) for job_id, job, _ in jobs(doc.data)]
    for who, resource, scope in scopes:
        value = scope.get("permissions")
        if isinstance(value, str) and value.strip().lower() == "write-all":
            yield Violation(f"{who} grants permissions: write-all (write on every scope); grant only the scopes "
                            "it writes, each in the job that writes it", scope.line_of("permissions"), resource)


@policy(
    id="ORG-GHA-018",
    title="Write scopes are granted to the jobs that use them, not to the whole workflow",
    kinds=["github-actions"],
    severity="medium",
    rationale=(
        "A write scope in the workflow's `permissions:` reaches every job without a block of its own: the "
        "test and lint jobs that run third-party tools get a token that can push code (`contents`), mint "
        "cloud credentials (`id-token`) or publish packages, although only the release job uses it, and so "
        "does every job added later."
    ),
    remediation="""
        Keep the workflow read-only and grant each write in the job that uses it:

            permissions:
              contents: read
            jobs:
              test:
                runs-on: ubuntu-latest
                steps:
                  - run: make test
              release:
                runs-on: ubuntu-latest
                permissions:
                  contents: write
                  id-token: write
                steps:
                  - run: make release
    """,
    tags=["ci-security", "least-privilege"],
)
def writes_scoped_to_jobs(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The workflow-level `permissions:` grants no `write` scope when the workflow has more than one job.

    Each write scope is reported at its line, with the jobs that inherit it. Not reported: a workflow with
    a single job (the workflow's block is that job's, and moving it changes nothing), a workflow whose jobs
    all declare their own `permissions:` (the workflow's block reaches none of them), and writes granted
    in a job, which is what the rule asks for. `write-all` is ORG-GHA-005's (high).

    A rule of its own rather than part of ORG-GHA-004: these permissions are declared and scoped, only
    granted one level too high, so a team can accept that for one workflow (a waiver) without accepting
    undeclared ones. The rule cannot tell which jobs use a scope: when every job that inherits it does
    (two jobs that each upload SARIF), moving it into each job is still the fix, but changes nothing today.
    """
    if not isinstance(doc.data, YamlMap) or not declares_permissions(doc.data):
        return
    permissions = doc.data["permissions"]
    heirs = _inheriting(doc.data)
    if not isinstance(permissions, YamlMap) or len(list(jobs(doc.data))) < 2 or not heirs:
        return
    for scope in write_scopes(permissions):
        yield Violation(f"{scope}: write is granted to the whole workflow and reaches {_jobs_phrase(heirs)}; "
                        "grant it in the job that uses it", permissions.line_of(scope), f"permissions.{scope}")
