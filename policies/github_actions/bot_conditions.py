"""ORG-GHA-011: conditions that trust `github.actor` to be a bot."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import expression_matches
from .workflow import ExpressionNode, jobs, literal, parse_expression, steps, triggers

# Who caused the latest event: `github.actor`, `github.triggering_actor`, their ids and the event's sender
# (paths as the parser normalises them, so `github['actor']` and `GITHUB.ACTOR` are these too).
_ACTOR = frozenset({
    ("github", "actor"), ("github", "triggering_actor"), ("github", "actor_id"), ("github", "triggering_actor_id"),
    ("github", "event", "sender", "login"), ("github", "event", "sender", "id"),
})
# The events an outsider can cause while a bot is the actor: a pull request's (Dependabot rebases or
# recreates a pull request when asked), a comment's, a run that follows one, and a reusable workflow's,
# whose caller's trigger is not known here. On `push`, `schedule` or `workflow_dispatch` the actor is
# someone with write access or GitHub itself.
_EXPOSED = frozenset({"pull_request_target", "issue_comment", "workflow_run", "workflow_call"})
_IDS = re.compile(r"[\d\s,\[\]'\"]*\d[\d\s,\[\]'\"]*")


def _is_actor(node: ExpressionNode) -> bool:
    return node.kind == "ctx" and node.parts in _ACTOR


def _bot_name(node: ExpressionNode) -> bool:
    """A string literal that names a bot account (`name[bot]`, any case)."""
    value = literal(node) if node.kind == "lit" else None
    return isinstance(value, str) and "[bot]" in value.lower()


def _bot_account(node: ExpressionNode) -> bool:
    """A literal, or `fromJSON()` of one, that names a bot account or holds only account ids (numbers)."""
    if node.kind == "call" and node.parts[0] == "fromjson" and len(node.args) == 1:
        node = node.args[0]
    value = literal(node) if node.kind == "lit" else None
    return _bot_name(node) or isinstance(value, float) or (isinstance(value, str) and bool(_IDS.fullmatch(value)))


def _trusting(root: ExpressionNode) -> Iterator[tuple[ExpressionNode, ExpressionNode, bool]]:
    """(test or call, actor context, whether it is under `!`) of each part of a condition that makes it true
    because the actor is a bot: `actor == 'name[bot]'` (or an id), `endsWith(actor, '[bot]')`,
    `contains(actor, '[bot]')`, `contains(fromJSON('["name[bot]"]'), actor)`. A part under `!` counts the
    other way round: `!(actor == 'dependabot[bot]')` keeps the bot out, `!(actor != 'dependabot[bot]')` lets
    it in. Walked with a stack, not recursion: a condition of thousands of `||` is as deep as it is long."""
    todo: list[tuple[ExpressionNode, bool]] = [(root, True)]
    while todo:
        node, granting = todo.pop()
        if node.kind == "test" and node.parts == ("!",):
            todo.append((node.args[0], not granting))
        elif node.kind == "test" and node.parts[0] in ("==", "!=") and (node.parts[0] == "==") == granting:
            left, right = node.args
            if _is_actor(left) and _bot_account(right):
                yield node, left, not granting
            elif _is_actor(right) and _bot_account(left):
                yield node, right, not granting
        elif node.kind == "either":
            todo.extend((arg, granting) for arg in reversed(node.args))
        elif node.kind == "call" and granting and len(node.args) == 2:
            first, second = node.args
            if node.parts[0] in ("endswith", "startswith", "contains") and _is_actor(first) and _bot_name(second):
                yield node, first, False
            elif node.parts[0] == "contains" and _is_actor(second) and _bot_account(first):
                yield node, second, False


def _bounds(root: ExpressionNode, text: str) -> tuple[int, int]:
    """Where a node is written in its expression (a call up to its closing parenthesis), from the offsets of
    the contexts and literals under it (walked with a stack, as `_trusting` walks)."""
    starts, ends, todo = [], [], [root]
    while todo:
        node = todo.pop()
        if node.kind in ("ctx", "lit"):
            starts.append(node.offset)
            ends.append(node.end)
            continue
        if node.kind == "call":
            starts.append(node.offset)
        todo.extend(node.args)
    start = min(starts, default=0)
    end = max(ends, default=start)
    return start, (text.find(")", end) + 1 or end) if root.kind == "call" else end


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
    """No job or step `if:` lets a run through because `github.actor`, `github.triggering_actor`, their
    `_id` or `github.event.sender` is a bot, in a workflow an outsider can trigger while a bot is the actor
    (`pull_request*`, `issue_comment`, `workflow_run`, and `workflow_call`, whose caller is unknown).

    The condition is parsed as GitHub reads it (index form, any case, `||`, `&&`, `!`): reported are a
    comparison with a bot account (`name[bot]`) or an account id, `endsWith`/`contains(github.actor,
    '[bot]')`, and `contains()` of a list of bots (`fromJSON('["dependabot[bot]", ...]')`); a comparison
    under `!` that keeps the bot out is not. The pull request's author (`github.event.pull_request.user.login`)
    is what identifies a bot's pull request. The finding points at the `if:` line.
    """
    events, _ = triggers(doc.data)
    if not (events & _EXPOSED or any(event.startswith("pull_request") for event in events)):
        return
    for job_id, job, _ in jobs(doc.data):
        conditions: list[tuple[YamlMap, str]] = [(job, f"jobs.{job_id}")]
        conditions += [(step, f"jobs.{job_id}.steps[{i}]") for i, step in steps(job)]
        for node, resource in conditions:
            condition = node.get("if")
            if not isinstance(condition, str):
                continue
            for text in [m.group(1) for m in expression_matches(condition)] or [condition]:
                tree = parse_expression(text)
                for part, actor, negated in _trusting(tree) if tree else ():
                    start, end = _bounds(part, text)
                    yield Violation(f"`{' '.join(text[start:end].split())}`{' under `!`' if negated else ''} can be "
                                    "spoofed: "
                                    f"{' '.join(text[actor.offset:actor.end].split())} is whoever caused the "
                                    "latest event; compare github.event.pull_request.user.login",
                                    node.line_of("if"), f"{resource}.if")
