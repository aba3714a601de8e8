"""ORG-GHA-013: the checkout's token left on disk, where later steps and artifacts can take it."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .workflow import action_name, action_version, placed_steps, steps

# `persist-credentials: ${{ false }}` (or `'false'`): an expression that is only false gives the input "false".
_EXPRESSION_FALSE = re.compile(r"^\s*\$\{\{\s*(?:false|'\s*false\s*')\s*\}\}\s*$", re.IGNORECASE)
# actions/checkout from v6 keeps the credential in a file under $RUNNER_TEMP that .git/config includes, so
# an artifact of the workspace no longer carries it (later steps still can read it).
_TEMP_CREDENTIALS = (6, 0)


def _carries_git_folder(step: YamlMap, source: list[str]) -> bool:
    """An `actions/upload-artifact` step that can upload `.git/config`: it asks for hidden files, or it is
    older than v4.4.0, which started leaving them out (an unreadable version counts as older)."""
    if action_name(step.get("uses")).lower() != "actions/upload-artifact":
        return False
    with_ = step.get("with")
    hidden = with_.get("include-hidden-files") if isinstance(with_, YamlMap) else None
    if hidden is True or (isinstance(hidden, str) and hidden.strip().lower() == "true"):
        return True
    version = action_version(step, source)
    return version is None or version < (4, 4)


def _persist(step: YamlMap) -> object:
    """The step's `persist-credentials` input as written (None when absent, which means true)."""
    with_ = step.get("with")
    return with_.get("persist-credentials") if isinstance(with_, YamlMap) else None


def _is_false(value: object) -> bool:
    return value is False or (isinstance(value, str) and (
        value.strip().lower() == "false" or bool(_EXPRESSION_FALSE.match(value))))


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
    """Every `actions/checkout` step sets `persist-credentials: false` (or an expression that is only
    false, `${{ false }}`).

    Leaving it out keeps the token on disk (the action's default): in `.git/config`, and from v6 in a file
    under `$RUNNER_TEMP` that `.git/config` includes; either way every later step can read it. Writing
    `persist-credentials: true` is a deliberate choice for a job that pushes, and passes, unless the same
    job also uploads an artifact that can carry `.git/config` out with the workspace: `actions/upload-artifact`
    before v4.4.0 (which began leaving hidden files out), or any version with `include-hidden-files: true`,
    and a checkout before v6 (or of a version the check cannot read), which still writes the token there.
    The finding points at the checkout's `uses:`, or at the alias (`- *checkout`, `steps: *steps`) that
    uses an anchored checkout step again.
    """
    source = doc.text.splitlines()
    uploads: dict[str, list[YamlMap]] = {}
    for job_id, job, i, step, used_at in placed_steps(source, doc.data):
        if action_name(step.get("uses")).lower() != "actions/checkout":
            continue
        if job_id not in uploads:
            uploads[job_id] = [other for _, other in steps(job) if _carries_git_folder(other, source)]
        persist = _persist(step)
        version = action_version(step, source)
        exposed = uploads[job_id] if version is None or version < _TEMP_CREDENTIALS else []
        if _is_false(persist) or (persist is not None and not exposed):
            continue
        upload = f"; the job uploads an artifact that can carry it ({action_name(exposed[0]['uses'])})" \
            if exposed else ""
        yield Violation(f"checkout in job {job_id} persists the token on disk (.git/config; $RUNNER_TEMP from "
                        f"v6), where every later step can read it; set persist-credentials: false{upload}",
                        used_at or step.line_of("uses"), f"jobs.{job_id}.steps[{i}]")
