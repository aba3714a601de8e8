"""ORG-GHA-013: the checkout's token left on disk, where later steps and artifacts can take it."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .workflow import action_name, jobs, steps

UPLOADS = frozenset({"actions/upload-artifact", "actions/upload-pages-artifact"})


def _persist(step: YamlMap) -> object:
    """The step's `persist-credentials` input as written (None when absent, which means true)."""
    with_ = step.get("with")
    return with_.get("persist-credentials") if isinstance(with_, YamlMap) else None


def _is_false(value: object) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


@policy(
    id="ORG-GHA-013",
    title="Checkout does not leave the token on disk",
    kinds=["github-actions"],
    severity="medium",
    rationale=(
        "actions/checkout keeps the job's token in the git configuration unless told not to; every later "
        "step, dependency install and build script can read it, and an artifact of the workspace publishes "
        "it (ArtiPACKED, 2024)."
    ),
    remediation="""
        Turn persistence off, and pass the token explicitly to the one step that pushes:

            - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2
              with:
                persist-credentials: false
    """,
    tags=["ci-security", "secrets"],
)
def checkout_credentials_not_persisted(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every `actions/checkout` step sets `persist-credentials: false`.

    Leaving it out keeps the token on disk (the action's default). Writing `persist-credentials: true`
    is a deliberate choice for a job that pushes, and passes, unless the same job also uploads an
    artifact (`actions/upload-artifact`, `actions/upload-pages-artifact`), which can carry the token
    out with the workspace. The finding points at the checkout's `uses:`.
    """
    for job_id, job, _ in jobs(doc.data):
        uploads = [step for _, step in steps(job) if action_name(step.get("uses")).lower() in UPLOADS]
        for i, step in steps(job):
            if action_name(step.get("uses")).lower() != "actions/checkout":
                continue
            persist = _persist(step)
            if _is_false(persist) or (persist is not None and not uploads):
                continue
            upload = f"; the job uploads an artifact that can carry it ({action_name(uploads[0]['uses'])})" \
                if uploads else ""
            yield Violation(f"checkout in job {job_id} leaves the token in .git/config (set persist-credentials: "
                            f"false){upload}", step.line_of("uses"), f"jobs.{job_id}.steps[{i}]")
