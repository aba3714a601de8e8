"""ORG-GHA-004 and ORG-GHA-005: the token's permissions."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .workflow import jobs, triggers


@policy(
    id="ORG-GHA-004",
    title="Workflows declare least-privilege token permissions",
    kinds=["github-actions"],
    severity="medium",
    rationale=(
        "Without `permissions:` the GITHUB_TOKEN gets the repository's default, which is read-write on "
        "older organisations; a compromised step can then push code or create releases."
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
    controls=["PCI-DSS-4.0:7.2.1", "PCI-DSS-4.0:7.2.2", "PCI-DSS-4.0:7.2.5"],
    tags=["ci-security", "least-privilege"],
)


def explicit_permissions(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The workflow declares a top-level `permissions:` block, or else every job declares its own.

    Reusable workflows (triggered only by `workflow_call`) are exempt: they run with the permissions
    their caller declares, which this rule checks in the caller. Each job without permissions (when the
    workflow has none) is reported at its job id.
    """
    if not isinstance(doc.data, YamlMap) or "permissions" in doc.data:
        return
    events, _ = triggers(doc.data)
    if events == {"workflow_call"}:
        return  # a reusable workflow runs with (at most) the permissions its caller declares
    for job_id, job, line in jobs(doc.data):
        if "permissions" not in job:
            yield Violation(f"job {job_id} runs with the default token permissions; declare `permissions:` "
                            "for the workflow or the job", line, f"jobs.{job_id}")


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
    controls=["PCI-DSS-4.0:7.2.1", "PCI-DSS-4.0:7.2.5"],
    tags=["ci-security", "least-privilege"],
    covers=["CKV2_GHA_1"],  # top-level write-all, and each job's too
)


def no_write_all(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Neither the workflow's nor any job's `permissions:` is `write-all`."""
    if not isinstance(doc.data, YamlMap):
        return
    scopes: list[tuple[str, YamlMap]] = [("workflow", doc.data)]
    scopes += [(f"jobs.{job_id}", job) for job_id, job, _ in jobs(doc.data)]
    for resource, scope in scopes:
        value = scope.get("permissions")
        if isinstance(value, str) and value.strip().lower() == "write-all":
            yield Violation(f"{resource} grants permissions: write-all", scope.line_of("permissions"),
                            f"{resource}.permissions")
