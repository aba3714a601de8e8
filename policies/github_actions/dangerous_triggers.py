"""ORG-GHA-010: triggers that run an outsider's event with the repository's secrets and token."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .workflow import PRIVILEGED_TRIGGERS, action_name, declares_permissions, jobs, steps, trigger_lines, write_scopes

# Actions that only call GitHub's API with the event's numbers and the repository's own configuration: a
# workflow made of nothing else runs none of the outsider's text, which is what these triggers exist for.
API_ONLY_ACTIONS = frozenset({"actions/labeler", "actions/first-interaction"})
# The unprivileged way to the same end, where there is one.
_INSTEAD = {
    "pull_request_target": "use pull_request", "workflow_run": "call it with workflow_call", "issue_comment": "",
}
_SECRET = re.compile(r"\$\{\{[^}]*\bsecrets\s*(?:\.\s*(?!GITHUB_TOKEN\b)\w|\[)", re.IGNORECASE)


def _values(node: object) -> Iterator[str]:
    """Every string value under a node (not keys, not comments)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _values(item)


def _api_only(workflow: YamlMap) -> bool:
    """The workflow has jobs, and every one is steps that are all API-only actions."""
    all_jobs = [job for _, job, _ in jobs(workflow)]
    for job in all_jobs:
        job_steps = [step for _, step in steps(job)]
        if "uses" in job or not job_steps:
            return False
        if any("run" in step or action_name(step.get("uses")).lower() not in API_ONLY_ACTIONS for step in job_steps):
            return False
    return bool(all_jobs)


def _exposure(workflow: YamlMap) -> list[str]:
    """What an attacker who gets code or arguments into this workflow would hold."""
    exposed = []
    if any(_SECRET.search(value) for value in _values(workflow.get("jobs"))):
        exposed.append("it reads secrets")
    scopes = [workflow.get("permissions")] + [job.get("permissions") for _, job, _ in jobs(workflow)]
    if not declares_permissions(workflow) and any(not declares_permissions(job) for _, job, _ in jobs(workflow)):
        exposed.append("a job runs with the default token permissions")
    elif any(write_scopes(scope) for scope in scopes):
        exposed.append("its token can write")
    return exposed


@policy(
    id="ORG-GHA-010",
    title="Workflows avoid triggers that give outsiders the repository's secrets",
    kinds=["github-actions"],
    severity="medium",
    rationale=(
        "`pull_request_target`, `workflow_run` and `issue_comment` run the base repository's workflow with "
        "its secrets and a token that can write, for an event anyone with a fork or an account can cause; "
        "argument, environment and file tricks turn that into code execution even without checking out the "
        "pull request (the 'pwn request')."
    ),
    remediation="""
        Use `pull_request` (a read-only token, no secrets) for anything that looks at a pull request, and
        `workflow_call` instead of `workflow_run`. Where a privileged trigger is unavoidable, give it no
        secrets and read-only permissions, and never run the pull request's code:

            on: pull_request
            permissions:
              contents: read
    """,
    tags=["ci-security"],
)
def no_dangerous_triggers(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The workflow is not triggered by `pull_request_target`, `workflow_run` or `issue_comment`.

    Each finding points at the trigger and says what makes it exploitable in this workflow: secrets it
    reads (other than the job's own token), a token that can write, or jobs left with the default
    permissions, and what to do: the unprivileged trigger (`pull_request`, `workflow_call`), or else
    `permissions: {}` and no secrets. ORG-GHA-002 reports the worst case, checking out the pull request's
    code, where it happens.

    A workflow whose every step is `actions/labeler` or `actions/first-interaction` passes: those call
    GitHub's API with the event's numbers and the repository's own configuration, run nothing of the
    pull request's, and are what `pull_request_target` exists for.
    """
    if not isinstance(doc.data, YamlMap) or _api_only(doc.data):
        return
    for event, line in trigger_lines(doc.data).items():
        if event not in PRIVILEGED_TRIGGERS:
            continue
        exposed = _exposure(doc.data)
        why = f": {' and '.join(exposed)}" if exposed else ""
        instead = _INSTEAD[event]
        if exposed:
            fix = f"{instead}, or give it `permissions: {{}}` and no secrets" if instead else \
                "give it `permissions: {}` and no secrets"
        else:
            fix = f"{instead}, and until then keep it without secrets or write scopes" if instead else \
                "keep it without secrets or write scopes"
        yield Violation(f"{event} runs with the repository's secrets and token for an outsider's event{why}; {fix}",
                        line, f"on.{event}")
