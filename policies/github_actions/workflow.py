"""The shared workflow model: how a GitHub Actions workflow is read, for every audit of this package.

Rule-free: the jobs and steps of a workflow, its triggers, its `uses:` references, the text of its
scripts, and how to tell which parts of a `${{ }}` expression can become its value and which of
them an outsider controls. An audit imports what it needs from here and adds only its own logic.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence

from checker.documents import YamlMap, YamlSeq

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


# Expressions as GitHub evaluates them: which contexts can become the text of a `${{ }}`, which of those an
# outsider writes, and where a value written once through a YAML anchor is used again (ORG-GHA-003 reads them).


@dataclasses.dataclass(frozen=True)
class Flow:
    """A context whose text can become the value of an expression.

    `path` is the context normalised: lower case (GitHub ignores case in context names), index syntax as
    segments (`github.event['issue'].title` is `github.event.issue.title`) and any array index, `*` filter
    or computed key as `*`. `text` is the context as written and `offset` where it starts in the
    expression. `whole` marks an object serialised whole (`toJSON(github.event)`): every field below it
    reaches the value.
    """

    path: tuple[str, ...]
    text: str
    offset: int = 0
    whole: bool = False


@dataclasses.dataclass(frozen=True)
class _Node:
    """A parsed expression. `kind` is lit, ctx (a context), member (a field of a computed value, `parts` the
    fields), call (`parts` the function's name), test (a comparison or `!`: only true or false) or either
    (`||` and `&&`, which yield one of their operands)."""

    kind: str
    parts: tuple[str, ...] = ()
    args: tuple[_Node, ...] = ()
    offset: int = 0
    end: int = 0


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?(?:0x[0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+))"
    r"|(?P<name>[A-Za-z_][\w-]*)|(?P<op>\|\||&&|==|!=|<=|>=|[<>!()\[\].,*]))"
)
_LEVELS = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="))
# Functions whose result carries none of their arguments' text: true or false, or a hash.
_NO_TEXT = frozenset({"contains", "startswith", "endswith", "success", "failure", "always", "cancelled", "hashfiles"})


class _Parser:
    """GitHub's expression grammar, parsed by recursive descent just deep enough to follow where text flows."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        text, position = text.rstrip(), 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if not match:
                raise ValueError(f"cannot read {text[position:position + 20]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        self.index = 0

    def parse(self) -> _Node:
        node = self._binary(0)
        if self.index != len(self.tokens):
            raise ValueError(f"unexpected {self._peek()!r}")
        return node

    def _peek(self, ahead: int = 0) -> str:
        index = self.index + ahead
        return self.tokens[index][1] if index < len(self.tokens) else ""

    def _take(self) -> tuple[str, str, int]:
        if self.index >= len(self.tokens):
            raise ValueError("the expression ends too early")
        self.index += 1
        return self.tokens[self.index - 1]

    def _binary(self, level: int) -> _Node:
        if level == len(_LEVELS):
            return self._unary()
        node = self._binary(level + 1)
        while self._peek() in _LEVELS[level]:
            self._take()
            node = _Node("either" if level < 2 else "test", args=(node, self._binary(level + 1)))
        return node

    def _unary(self) -> _Node:
        if self._peek() == "!":
            self._take()
            return _Node("test", args=(self._unary(),))
        return self._postfix(self._primary())

    def _primary(self) -> _Node:
        kind, value, offset = self._take()
        if kind in ("string", "number") or (kind == "name" and value.lower() in ("true", "false", "null")):
            return _Node("lit")
        if kind == "name" and self._peek() == "(":
            self._take()
            args: list[_Node] = []
            while self._peek() != ")":
                args.append(self._binary(0))
                if self._peek() == ",":
                    self._take()
                elif self._peek() != ")":
                    raise ValueError(f"unexpected {self._peek()!r} in the arguments of {value}()")
            self._take()
            return _Node("call", (value.lower(),), tuple(args), offset)
        if kind == "name":
            return _Node("ctx", (value.lower(),), offset=offset, end=offset + len(value))
        if value == "(":
            node = self._binary(0)
            if self._take()[1] != ")":
                raise ValueError("a parenthesis is not closed")
            return node
        raise ValueError(f"unexpected {value!r}")

    def _postfix(self, node: _Node) -> _Node:
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                kind, value, position = self._take()
                if kind != "name" and value != "*":
                    raise ValueError(f"unexpected {value!r} after '.'")
                key, end = value.lower(), position + len(value)
            else:
                if self._peek(1) == "]" and (self.tokens[self.index][0] == "string" or self._peek() == "*"):
                    value = self._take()[1]
                    key = "*" if value == "*" else value[1:-1].replace("''", "'").lower()
                else:  # an array index or a computed key: any element
                    self._binary(0)
                    key = "*"
                _, value, position = self._take()
                if value != "]":
                    raise ValueError("a bracket is not closed")
                end = position + 1
            if node.kind == "ctx":
                node = _Node("ctx", (*node.parts, key), offset=node.offset, end=end)
            elif node.kind == "member":
                node = _Node("member", (*node.parts, key), node.args)
            else:
                node = _Node("member", (key,), (node,))
        return node


def _flows(node: _Node, text: str) -> list[Flow]:
    if node.kind == "ctx":
        return [Flow(node.parts, text[node.offset:node.end], node.offset)]
    if node.kind == "either":
        return [flow for arg in node.args for flow in _flows(arg, text)]
    if node.kind == "member":
        return [dataclasses.replace(flow, path=flow.path + node.parts, whole=False)
                for flow in _flows(node.args[0], text)]
    if node.kind == "call" and node.parts[0] not in _NO_TEXT:
        flows = [flow for arg in node.args for flow in _flows(arg, text)]
        return [dataclasses.replace(flow, whole=True) for flow in flows] if node.parts[0] == "tojson" else flows
    return []


def value_flows(expression: str) -> list[Flow] | None:
    """The contexts whose text can become the value of an expression (the inside of a `${{ }}`), in the
    order they are written; None when it is not a valid expression.

    `a || b` and `a && b` yield one of their operands; `format()`, `join()`, `fromJSON()` and any other
    function pass their arguments' text on, and `toJSON()` a whole object; comparisons, `!`, `contains()`,
    `startsWith()`, `endsWith()`, the status functions and `hashFiles()` yield only true, false or a hash;
    a field of a computed value (`fromJSON(x).title`, `(a || b).number`) is that field of each context it
    comes from.
    """
    try:
        return _flows(_Parser(expression).parse(), expression)
    except (ValueError, RecursionError):
        return None


# The text an outsider writes: anyone who can open an issue or a pull request, comment, review, edit the
# wiki or push to a fork. A pattern's `*` is one segment (an array index), `**` any number, `a|b` either.
_OUTSIDER_FIELDS: tuple[tuple[str, str], ...] = (
    ("github.head_ref", "the pull request's source branch name, which its author chooses"),
    ("github.event.issue.title", "an issue title, which whoever opens the issue writes"),
    ("github.event.issue.body", "an issue body, which whoever opens the issue writes"),
    ("github.event.pull_request.title", "a pull request title, which its author writes"),
    ("github.event.pull_request.body", "a pull request description, which its author writes"),
    ("github.event.comment.body", "a comment, which anyone who can comment writes"),
    ("github.event.review|review_comment.body", "a review, which anyone who can comment writes"),
    ("github.event.discussion.title|body", "a discussion's title or body, which whoever starts it writes"),
    ("github.event.pages.*.page_name", "a wiki page name, which any wiki editor chooses"),
    ("github.event.**.head.ref|label", "a pull request's source branch name, which its author chooses"),
    ("github.event.**.head.repo.default_branch", "the default branch name of the pull request's fork"),
    ("github.event.**.head_branch", "the branch a run started from, a fork's branch name for a pull request"),
    ("github.event.workflow_run.display_title", "a run's title: a pull request title or a commit message"),
    ("github.event.**.labels.*.name", "a label name, which anyone with triage access writes"),
    ("github.event.label.name", "a label name, which anyone with triage access writes"),
    ("github.event.commits.*.message", "a commit message, which the commit's author writes"),
    ("github.event.**.head_commit.message", "a commit message, which the commit's author writes"),
    ("github.event.commits.*.author|committer.name|email",
     "a commit's author name or email, which git lets anyone set"),
    ("github.event.**.head_commit.author|committer.name|email",
     "a commit's author name or email, which git lets anyone set"),
    ("github.event.client_payload", "free-form JSON, which whoever sends the repository_dispatch event chooses"),
)
_OUTSIDER_PATTERNS = tuple((tuple(pattern.split(".")), why) for pattern, why in _OUTSIDER_FIELDS)
# `github.event.changes` holds the previous value of an edited field: text when the field is text.
_CHANGED_TEXT = frozenset({"title", "body", "name", "ref", "message", "description", "page_name", "label"})
_FIXED_LEAF = re.compile(r"^(?:id|number|node_id|sha|login|url|.*_(?:id|url|at|count))$")


def _covers(pattern: tuple[str, ...], path: tuple[str, ...], whole: bool) -> bool:
    """Whether the text at `path` carries the field `pattern` names: it is that field, or a member of it
    (its JSON parsed), or, serialised whole, an object that holds it."""
    if not pattern:
        return True
    if not path:
        return whole and pattern[0] != "**"
    if pattern[0] == "**":
        return _covers(pattern[1:], path, whole) or _covers(pattern, path[1:], whole)
    if pattern[0] == "*" or path[0] in pattern[0].split("|"):
        return _covers(pattern[1:], path[1:], whole)
    return False


def outsider_field(path: Sequence[str], whole: bool = False) -> str:
    """Who writes the text of a `github` context path (normalised as in `Flow`), '' when no outsider does.

    Fields GitHub sets (numbers, SHAs, URLs, logins, `github.ref` of a run) and fields only people with
    write access set (release names, milestones) are not an outsider's.
    """
    parts = tuple(path)
    for pattern, why in _OUTSIDER_PATTERNS:
        if _covers(pattern, parts, whole):
            return why
    if parts[:3] == ("github", "event", "changes") and (
            whole or (any(part in _CHANGED_TEXT for part in parts[3:]) and not _FIXED_LEAF.match(parts[-1]))):
        return "the previous text of an edited title, body, branch or label, which its editor wrote"
    return ""


# A whole line that writes a value as a YAML alias: `run: *script`, `steps: *steps`, `- *step`.
_ALIAS = re.compile(r"^\s*(?:-\s+)?(?:[^\s#'\":][^#'\":]*:\s+)?\*[^\s,\[\]{}#'\"]+\s*(?:#.*)?$")


def alias_line(source: Sequence[str], node: object, key: object) -> int | None:
    """The line that writes `node[key]` (a key of a mapping, an index of a sequence) as a YAML alias
    (`run: *script`, `- *step`) or merges it in (`<<: *defaults`); None when it is written in place.

    An alias loads as the very node its anchor holds, with the anchor's lines, so what is found inside
    it would point at the anchor; the alias is where the value is used again. `source` is the file's lines.
    """
    if isinstance(node, YamlMap):
        line = node.lines.get(key)
        if line is None:
            return None
        if not node.line <= line <= node.end_line:  # a key merged in from the anchor of a `<<:`
            last = min(node.end_line, len(source))
            return next((n for n in range(node.line, last + 1) if "<<" in source[n - 1]), node.line)
        return line if line <= len(source) and _ALIAS.match(source[line - 1]) else None
    if not isinstance(node, YamlSeq) or not isinstance(key, int) or not 0 <= key < len(node.lines):
        return None
    # An aliased item has its anchor's line, before the items written in place around it: it is the next
    # `- *name` line at the indentation of the sequence's first dash.
    first = next((text for text in source[max(node.line - 1, 0):node.end_line] if text.lstrip().startswith("-")), "")
    item = re.compile(rf"^{re.escape(first[:len(first) - len(first.lstrip())])}-\s+\*[^\s,\[\]{{}}#'\"]+\s*(?:#.*)?$")
    cursor = node.line - 1
    for index, line in enumerate(node.lines):
        if cursor < line <= node.end_line:  # written in place
            if index == key:
                return None
            cursor = line
            continue
        found = next((n for n in range(cursor + 1, min(node.end_line, len(source)) + 1) if item.match(source[n - 1])),
                     None)
        if found is None or index == key:
            return found
        cursor = found
    return None
