"""ORG-GHA-013: the checkout's token left on disk, where later steps and artifacts can take it."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .workflow import action_name, alias_line, jobs, steps

# A version in a tag (`@v4.3.1`, `@v3`) or in the comment beside a SHA (`# v4.6.2`).
_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?")
_VERSION_COMMENT = re.compile(r"#\s*v?(\d+)(?:\.(\d+))?")


def _carries_git_folder(step: YamlMap, text: str) -> bool:
    """An `actions/upload-artifact` step that can upload `.git/config`: it asks for hidden files, or it is
    older than v4.4.0, which started leaving them out (an unreadable version counts as older)."""
    if action_name(step.get("uses")).lower() != "actions/upload-artifact":
        return False
    with_ = step.get("with")
    hidden = with_.get("include-hidden-files") if isinstance(with_, YamlMap) else None
    if hidden is True or (isinstance(hidden, str) and hidden.strip().lower() == "true"):
        return True
    lines = text.splitlines()
    line = step.line_of("uses")
    found = _VERSION.match(str(step["uses"]).partition("@")[2].strip()) or _VERSION_COMMENT.search(
        lines[line - 1] if 0 < line <= len(lines) else "")
    return not found or (int(found.group(1)), int(found.group(2) or 0)) < (4, 4)


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
    artifact that can carry `.git/config` out with the workspace: `actions/upload-artifact` before
    v4.4.0 (which began leaving hidden files out), or any version with `include-hidden-files: true`.
    The finding points at the checkout's `uses:`, or at the `- *alias` line that uses an anchored checkout
    step again.
    """
    source = doc.text.splitlines()
    for job_id, job, _ in jobs(doc.data):
        uploads = [step for _, step in steps(job) if _carries_git_folder(step, doc.text)]
        sequence = job.get("steps")
        for i, step in enumerate(sequence if isinstance(sequence, list) else []):
            if not isinstance(step, YamlMap) or action_name(step.get("uses")).lower() != "actions/checkout":
                continue
            persist = _persist(step)
            if _is_false(persist) or (persist is not None and not uploads):
                continue
            upload = f"; the job uploads an artifact that can carry it ({action_name(uploads[0]['uses'])})" \
                if uploads else ""
            yield Violation(f"checkout in job {job_id} leaves the token in .git/config (set persist-credentials: "
                            f"false){upload}", alias_line(source, sequence, i) or step.line_of("uses"),
                            f"jobs.{job_id}.steps[{i}]")
