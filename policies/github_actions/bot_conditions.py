"""ORG-GHA-011: conditions that trust `github.actor` to be a bot."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .workflow import jobs, steps

# `github.actor`, `github.triggering_actor` or their ids, in dot or index form, compared with a bot's name
# (`...[bot]`) or with any number (an account id): the comparisons that grant a bot's trust.
_ACTOR = r"github\s*(?:\.\s*(?:triggering_)?actor(?:_id)?\b|\[\s*'(?:triggering_)?actor(?:_id)?'\s*\])"
_BOT = r"(?:'[^']*\[bot\]'|'?\d+'?)"
SPOOFABLE = re.compile(rf"{_ACTOR}\s*==\s*{_BOT}|{_BOT}\s*==\s*{_ACTOR}", re.IGNORECASE)


@policy(
    id="ORG-GHA-011",
    title="Conditions do not trust github.actor to identify a bot",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "`github.actor` is whoever caused the latest event, not who wrote the code: an attacker can get "
        "Dependabot to update their pull request so that the actor is `dependabot[bot]`, and the job that "
        "auto-merges or skips review for Dependabot runs for them."
    ),
    remediation="""
        Check who opened the pull request, which a later push cannot change:

            if: github.event.pull_request.user.login == 'dependabot[bot]'
    """,
    tags=["ci-security"],
)
def no_spoofable_bot_condition(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No job or step `if:` compares `github.actor`, `github.triggering_actor` or their `_id` (dot or index
    form, any case) with a bot account (`name[bot]`) or an account id.

    The pull request's author (`github.event.pull_request.user.login`) is what identifies a bot's pull
    request. The finding points at the `if:` line.
    """
    for job_id, job, _ in jobs(doc.data):
        conditions: list[tuple[YamlMap, str]] = [(job, f"jobs.{job_id}")]
        conditions += [(step, f"jobs.{job_id}.steps[{i}]") for i, step in steps(job)]
        for node, resource in conditions:
            condition = node.get("if")
            found = SPOOFABLE.search(condition) if isinstance(condition, str) else None
            if found:
                yield Violation(f"`{' '.join(found.group(0).split())}` can be spoofed: github.actor is whoever "
                                "caused the latest event; compare github.event.pull_request.user.login",
                                node.line_of("if"), f"{resource}.if")
