"""The shared workflow model: how a GitHub Actions workflow is read, for every audit of this package.

Rule-free: the jobs and steps of a workflow, its triggers, its `uses:` references, the text of its
scripts, and how to tell which parts of a `${{ }}` expression can become its value and which of
them an outsider controls. An audit imports what it needs from here and adds only its own logic.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import YamlMap

from .._helpers import mappings

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")

PUBLIC_TRIGGERS = frozenset({
    "pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment",
    "issue_comment", "issues", "discussion", "discussion_comment", "fork", "watch",
})
# Events that run with the base repository's secrets and token although an outsider can cause them.
PRIVILEGED_TRIGGERS = frozenset({"pull_request_target", "workflow_run", "issue_comment"})
# Expressions an outside contributor controls (GitHub Security Lab's list of untrusted input).
UNTRUSTED = re.compile(
    r"github\.event\.(?:"
    r"issue\.(?:title|body)|pull_request\.(?:title|body|head\.(?:ref|label|repo\.default_branch))|"
    r"comment\.body|review\.body|review_comment\.body|discussion\.(?:title|body)|"
    r"pages\.[^.\s]+\.page_name|(?:commits\.[^.\s]+|head_commit)\.(?:message|author\.(?:email|name))|"
    r"workflow_run\.(?:head_branch|head_commit\.(?:message|author\.(?:email|name))|display_title|"
    r"pull_requests\.[^.\s]+\.head\.ref)"
    r")|github\.head_ref",
    re.IGNORECASE,
)
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_QUOTED = re.compile(r"'(?:[^']|'')*'")
_BOOLEAN_CALL = re.compile(
    r"^!?\s*(?:contains|startsWith|endsWith|success|failure|always|cancelled)\s*\(", re.IGNORECASE
)
SECRET_CONTEXT = re.compile(r"\bsecrets\b|\bgithub\.token\b")


def action_refs(workflow: object) -> Iterator[tuple[str, str, int]]:
    """(uses value, resource path, line) of every job-level and step-level `uses:`."""
    if not isinstance(workflow, YamlMap) or not isinstance(workflow.get("jobs"), YamlMap):
        return
    for job_id, job in workflow["jobs"].items():
        if not isinstance(job, YamlMap):
            continue
        if isinstance(job.get("uses"), str):
            yield job["uses"], f"jobs.{job_id}.uses", job.lines["uses"]
        for i, step in enumerate(mappings(job.get("steps"))):
            if isinstance(step.get("uses"), str):
                yield step["uses"], f"jobs.{job_id}.steps[{i}].uses", step.lines["uses"]


def _top_level(expression: str) -> str:
    """The expression with quoted strings and parenthesised parts blanked (same length)."""
    bare = _QUOTED.sub(lambda m: "'" + " " * (len(m.group(0)) - 2) + "'", expression)
    depth, out = 0, []
    for char in bare:
        depth += char == "("
        out.append(char if depth == 0 else " ")
        depth -= char == ")" and depth > 0
    return "".join(out)


def text_operands(expression: str, depth: int = 0) -> list[str]:
    """The parts of an expression whose text can become its value.

    `a || b` and `a && b` evaluate to one of their operands, so each operand is looked at; an operand
    that is a comparison, a negation or a call of contains()/startsWith()/endsWith() only yields
    true/false and carries no text.
    """
    expression = expression.strip()
    top = _top_level(expression)
    cuts = [m.start() for m in re.finditer(r"\|\||&&", top)]
    if cuts and depth < 20:
        bounds = [0, *[c for cut in cuts for c in (cut, cut + 2)], len(expression)]
        return [part for a, b in zip(bounds[::2], bounds[1::2], strict=True)
                for part in text_operands(expression[a:b], depth + 1)]
    if expression.startswith("(") and expression.endswith(")") and not top.strip() and depth < 20:
        return text_operands(expression[1:-1], depth + 1)
    if re.search(r"==|!=|<=|>=|<|>", top) or re.match(r"!(?!=)", expression) or _BOOLEAN_CALL.match(expression):
        return []
    return [expression]


def triggers(workflow: object) -> tuple[set[str], int]:
    """The event names a workflow runs on and the line of its `on:` key.

    PyYAML reads the bare key `on` as the boolean True (YAML 1.1), so both spellings are looked up.
    """
    if not isinstance(workflow, YamlMap):
        return set(), 1
    key = "on" if "on" in workflow else True
    node = workflow.get(key)
    line = workflow.line_of(key)
    if isinstance(node, str):
        return {node}, line
    if isinstance(node, list):
        return {str(item) for item in node if isinstance(item, str)}, line
    if isinstance(node, dict):
        return {str(name) for name in node}, line
    return set(), line


def jobs(workflow: object) -> Iterator[tuple[str, YamlMap, int]]:
    """(job id, job, line of the job id) of every job of a workflow."""
    if not isinstance(workflow, YamlMap) or not isinstance(workflow.get("jobs"), YamlMap):
        return
    for job_id, job in workflow["jobs"].items():
        if isinstance(job, YamlMap):
            yield str(job_id), job, workflow["jobs"].line_of(job_id)


def steps(job: YamlMap) -> Iterator[tuple[int, YamlMap]]:
    yield from enumerate(mappings(job.get("steps")))


def action_name(uses: object) -> str:
    """`owner/repo[/path]` of a `uses:` value, without its ref."""
    return uses.partition("@")[0].strip() if isinstance(uses, str) else ""


def is_pinned(uses: str) -> bool:
    """Local actions, SHA-pinned actions and digest-pinned docker actions are immutable."""
    if uses.startswith("./"):
        return True
    if uses.startswith("docker://"):
        return "@sha256:" in uses
    return bool(FULL_SHA.match(uses.partition("@")[2]))


def run_text(step: YamlMap) -> str:
    run = step.get("run")
    return run if isinstance(run, str) else ""


def references_secret(value: object) -> bool:
    """A value with a `${{ }}` expression that reads the `secrets` context (or `github.token`)."""
    return isinstance(value, str) and any(SECRET_CONTEXT.search(e) for e in EXPRESSION.findall(value))


def env_blocks(workflow: object) -> Iterator[tuple[str, YamlMap]]:
    """(resource, `env:` mapping) of the workflow, of each job and of each step: every place a variable is set."""
    if isinstance(workflow, YamlMap) and isinstance(workflow.get("env"), YamlMap):
        yield "env", workflow["env"]
    for job_id, job, _ in jobs(workflow):
        if isinstance(job.get("env"), YamlMap):
            yield f"jobs.{job_id}.env", job["env"]
        for i, step in steps(job):
            if isinstance(step.get("env"), YamlMap):
                yield f"jobs.{job_id}.steps[{i}].env", step["env"]


MATRIX_REFERENCE = re.compile(r"^\s*\$\{\{\s*matrix\.([A-Za-z_][\w-]*)\s*\}\}\s*$")


def matrix_values(job: YamlMap, name: str) -> list[object] | None:
    """Every value `matrix.<name>` takes in the job: the axis's items and the `include:` entries' values.

    None when they cannot be known from the file (the matrix, the axis or an entry is an expression such as
    `${{ fromJSON(...) }}`): a check does not guess what it cannot read.
    """
    strategy = job.get("strategy")
    matrix = strategy.get("matrix") if isinstance(strategy, YamlMap) else None
    if not isinstance(matrix, YamlMap):
        return None
    values: list[object] = []
    axis = matrix.get(name)
    if isinstance(axis, list):
        values.extend(axis)
    elif axis is not None:
        return None
    include = matrix.get("include")
    if include is not None and not isinstance(include, list):
        return None
    for entry in include or []:
        if not isinstance(entry, YamlMap):
            return None
        if name in entry:
            values.append(entry[name])
    return values


def trigger_lines(workflow: object) -> dict[str, int]:
    """Each event the workflow runs on, with the line that names it (its key, or the `on:` line for the
    one-line forms `on: push` and `on: [push, pull_request]`)."""
    events, line = triggers(workflow)
    node = workflow.get("on" if "on" in workflow else True) if isinstance(workflow, YamlMap) else None
    return {event: node.line_of(event) if isinstance(node, YamlMap) else line for event in sorted(events)}


def write_scopes(permissions: object) -> list[str]:
    """The scopes a `permissions:` value grants write on (`write-all` grants all; absent grants the default)."""
    if isinstance(permissions, str):
        return ["all"] if permissions.strip().lower() == "write-all" else []
    if isinstance(permissions, YamlMap):
        return [str(scope) for scope, level in permissions.items()
                if isinstance(level, str) and level.strip().lower() == "write"]
    return []
