"""ORG-GHA-009: self-hosted runners on workflows outsiders can trigger."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .workflow import PUBLIC_TRIGGERS, jobs, triggers


def _self_hosted(runs_on: object) -> bool:
    if isinstance(runs_on, str):
        return runs_on.strip().lower() == "self-hosted"
    if isinstance(runs_on, list):
        return any(_self_hosted(label) for label in runs_on)
    if isinstance(runs_on, YamlMap):
        return _self_hosted(runs_on.get("labels"))
    return False


@policy(
    id="ORG-GHA-009",
    title="Self-hosted runners are not used by workflows outsiders can trigger",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "A fork's pull request or an issue comment can run code on a self-hosted runner, which keeps state "
        "between jobs and sits inside the organisation's network."
    ),
    remediation="""
        Run untrusted events on GitHub-hosted (ephemeral) runners, and keep self-hosted runners for
        `push`, `workflow_dispatch` and other trusted triggers:

            on: pull_request
            jobs:
              test:
                runs-on: ubuntu-latest
    """,
    tags=["ci-security"],
)
def no_self_hosted_on_public_triggers(doc: Document, ctx: Context) -> Iterator[Violation]:
    """A workflow triggered by `pull_request`, `pull_request_target`, `issue_comment`, `issues`,
    `discussion` or other events outsiders can cause does not run any job on a `self-hosted` runner.

    The finding points at the job's `runs-on:`.
    """
    events, _ = triggers(doc.data)
    public = sorted(events & PUBLIC_TRIGGERS)
    if not public:
        return
    for job_id, job, _ in jobs(doc.data):
        if _self_hosted(job.get("runs-on")):
            yield Violation(f"job {job_id} runs on a self-hosted runner but the workflow runs on "
                            f"{', '.join(public)}", job.line_of("runs-on"), f"jobs.{job_id}.runs-on")
