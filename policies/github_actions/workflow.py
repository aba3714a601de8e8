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

from .._helpers import expression_matches, is_pinned_by_digest, mappings

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")

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
        return is_pinned_by_digest(uses)
    return bool(_FULL_SHA.match(uses.partition("@")[2]))


def run_text(step: YamlMap) -> str:
    run = step.get("run")
    return run if isinstance(run, str) else ""


def references_secret(value: object) -> bool:
    """A value with a `${{ }}` expression that reads the `secrets` context (or `github.token`)."""
    return isinstance(value, str) and any(SECRET_CONTEXT.search(m.group(1)) for m in expression_matches(value))


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
    """A parsed expression. `kind` is lit (`parts` its token as written), ctx (a context), member (a field of
    a computed value, `parts` the fields), call (`parts` the function's name), test (a comparison or `!`: only
    true or false) or either (`||` and `&&`, which yield one of their operands); a test's or an either's
    `parts` is its operator."""

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
# GitHub's own bound (its parser refuses an expression nested deeper), which also bounds the stack a hostile
# file takes here: the parser recurses a few frames per level. No event field is nested as deep either, so a
# longer context path is refused too (and no path costs its length squared to build or match).
_MAX_DEPTH = 50
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
        self.index = self.depth = 0

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

    def _deeper(self, step: int) -> None:
        """Enter (1) or leave (-1) a parenthesis, a call's arguments, a computed key or a `!`."""
        self.depth += step
        if self.depth > _MAX_DEPTH:
            raise ValueError(f"nested more than {_MAX_DEPTH} deep")

    def _binary(self, level: int) -> _Node:
        if level == len(_LEVELS):
            return self._unary()
        node = self._binary(level + 1)
        while self._peek() in _LEVELS[level]:
            operator = self._take()[1]
            node = _Node("either" if level < 2 else "test", (operator,), (node, self._binary(level + 1)))
        return node

    def _unary(self) -> _Node:
        if self._peek() == "!":
            self._take()
            self._deeper(1)
            node = _Node("test", ("!",), (self._unary(),))
            self._deeper(-1)
            return node
        return self._postfix(self._primary())

    def _primary(self) -> _Node:
        kind, value, offset = self._take()
        if kind in ("string", "number") or (kind == "name" and value.lower() in ("true", "false", "null")):
            return _Node("lit", (value,), offset=offset, end=offset + len(value))
        if kind == "name" and self._peek() == "(":
            self._take()
            self._deeper(1)
            args: list[_Node] = []
            while self._peek() != ")":
                args.append(self._binary(0))
                if self._peek() == ",":
                    self._take()
                elif self._peek() != ")":
                    raise ValueError(f"unexpected {self._peek()!r} in the arguments of {value}()")
            self._take()
            self._deeper(-1)
            return _Node("call", (value.lower(),), tuple(args), offset)
        if kind == "name":
            return _Node("ctx", (value.lower(),), offset=offset, end=offset + len(value))
        if value == "(":
            self._deeper(1)
            node = self._binary(0)
            if self._take()[1] != ")":
                raise ValueError("a parenthesis is not closed")
            self._deeper(-1)
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
                    self._deeper(1)
                    self._binary(0)
                    self._deeper(-1)
                    key = "*"
                _, value, position = self._take()
                if value != "]":
                    raise ValueError("a bracket is not closed")
                end = position + 1
            if len(node.parts) >= _MAX_DEPTH and node.kind in ("ctx", "member"):
                raise ValueError(f"a path of more than {_MAX_DEPTH} fields")
            if node.kind == "ctx":
                node = _Node("ctx", (*node.parts, key), offset=node.offset, end=end)
            elif node.kind == "member":
                node = _Node("member", (*node.parts, key), node.args)
            else:
                node = _Node("member", (key,), (node,))
        return node


def _flows(node: _Node, text: str) -> list[Flow]:
    """The flows of a parsed expression, in the order written. The parser builds `a || b || c ...` as deep as
    it is long, so operands are taken from a stack; calls and fields recurse only as deep as the parser allows."""
    found: list[Flow] = []
    todo = [node]
    while todo:
        node = todo.pop()
        if node.kind == "either":
            todo += reversed(node.args)
        elif node.kind == "ctx":
            found.append(Flow(node.parts, text[node.offset:node.end], node.offset))
        elif node.kind == "member":
            found += [dataclasses.replace(flow, path=flow.path + node.parts, whole=False)
                      for flow in _flows(node.args[0], text)]
        elif node.kind == "call" and node.parts[0] not in _NO_TEXT:
            flows = [flow for arg in node.args for flow in _flows(arg, text)]
            found += [dataclasses.replace(flow, whole=True) for flow in flows] if node.parts[0] == "tojson" else flows
    return found


def value_flows(expression: str) -> list[Flow] | None:
    """The contexts whose text can become the value of an expression (the inside of a `${{ }}`), in the
    order they are written; None when it is not a valid expression, or is nested deeper than GitHub accepts
    (50 parentheses, calls, computed keys and `!`), or names a context path more than 50 fields long.

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


# A line that merges a mapping in, `<<: *defaults` (as a block key, a list item's first key or in a flow
# mapping): not a `<<` in a script (`cat <<EOF`).
_MERGE = re.compile(r"(?:^\s*(?:-\s+)?|[{,]\s*)<<\s*:")
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
            return _merge_line(source, node)
        return line if line <= len(source) and _ALIAS.match(source[line - 1]) else None
    if not isinstance(node, YamlSeq) or not isinstance(key, int) or not 0 <= key < len(node.lines):
        return None
    # An aliased item has its anchor's line, before the items written in place around it: it is the next
    # `- *name` line at the indentation of the sequence's first dash (a loop over the items should call
    # item_alias_lines once instead).
    return item_alias_lines(source, node)[key]


# The `<<` line of each mapping of the file last read that merges keys in: alias_line is asked once per merged
# key (a `jobs:` mapping that merges in a thousand jobs), and looking for the line each time would read the
# mapping once per key.
_merges: tuple[Sequence[str], dict[int, tuple[YamlMap, int]]] = ((), {})


def _merge_line(source: Sequence[str], node: YamlMap) -> int:
    """The first line of a mapping that merges another in (its own line when none does)."""
    global _merges
    if _merges[0] is not source:
        _merges = (source, {})
    known = _merges[1].get(id(node))
    if known is None:
        last = min(node.end_line, len(source))
        known = (node, next((n for n in range(node.line, last + 1) if _MERGE.search(source[n - 1])), node.line))
        _merges[1][id(node)] = known  # the mapping is kept with its line, so its id is not reused
    return known[1]


# Expressions worked out to a value (ORG-GHA-014 reads them): the same parser, its nodes keeping their operator
# and literal token, and the job graph, version comments and artifact actions that more than one audit reads.

ExpressionNode = _Node
# Deeper than any workflow needs: the parser recurses a few frames per parenthesis, bracket and `!`, and a
# gate reads hostile files.
_MAX_NESTING = 32
_KEYWORDS: dict[str, str | float | bool | None] = {"true": True, "false": False, "null": None}


def parse_expression(expression: str) -> ExpressionNode | None:
    """The parsed form of an expression (the inside of a `${{ }}`); None when it is not valid, nests
    parentheses and brackets more than 32 deep or holds more than 32 `!`.

    A node's `kind` and `parts` are as `_Node` tells: `parts` holds a test's or an either's operator
    (`==`, `!`, `||` ...), a literal's token as written (`literal()` reads it), a context's path normalised
    as in `Flow`, a call's function name in lower case.
    """
    try:
        parser = _Parser(expression)
        depth = bangs = 0
        for _, token, _ in parser.tokens:
            depth += (token in ("(", "[")) - (token in (")", "]"))
            bangs += token == "!"
            if depth > _MAX_NESTING or bangs > _MAX_NESTING:
                return None
        return parser.parse()
    except (ValueError, RecursionError):
        return None


def literal(node: ExpressionNode) -> str | float | bool | None:
    """The value of a `lit` node: a string (its quotes and doubled quotes undone), a number, true, false or
    null. A hexadecimal number too large for a float is infinite, as a decimal one is."""
    token = node.parts[0]
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    if token.lower() in _KEYWORDS:
        return _KEYWORDS[token.lower()]
    try:
        return float.fromhex(token) if "x" in token.lower() else float(token)
    except OverflowError:
        return float("-inf") if token.startswith("-") else float("inf")


def needed_by(workflow: object) -> dict[str, list[str]]:
    """Each job's dependents: the jobs whose `needs:` names it, in the file's order (names of no job are left
    out). Built once, so that a walk over the job graph is linear in its size."""
    ids = {job_id for job_id, _, _ in jobs(workflow)}
    found: dict[str, list[str]] = {}
    for job_id, job, _ in jobs(workflow):
        needs = job.get("needs")
        for name in dict.fromkeys(n for n in (needs if isinstance(needs, list) else [needs]) if isinstance(n, str)):
            if name in ids:
                found.setdefault(name, []).append(job_id)
    return found


def needs_order(workflow: object) -> list[str]:
    """The job ids in an order where each job comes after every job it needs, as GitHub runs them; the jobs
    of a `needs:` cycle (a workflow GitHub refuses) and those after them are left out."""
    graph = needed_by(workflow)
    waiting = {job_id: 0 for job_id, _, _ in jobs(workflow)}
    for dependents in graph.values():
        for job_id in dependents:
            waiting[job_id] += 1
    order = [job_id for job_id, count in waiting.items() if not count]
    for job_id in order:  # grows while it is walked
        for dependent in graph.get(job_id, ()):
            waiting[dependent] -= 1
            if not waiting[dependent]:
                order.append(dependent)
    return order


# The actions that upload a workflow artifact, which later jobs of the run (or anyone who can read the run) take.
ARTIFACT_UPLOADS = frozenset({"actions/upload-artifact", "actions/upload-pages-artifact"})
# At most nine digits a number: int() refuses a string of thousands (and no version has them).
_VERSION_TAG = re.compile(r"^v?(\d{1,9})(?:\.(\d{1,9}))?(?:\.\d+)*(?:[-+][\w.-]*)?$")
_VERSION_NOTE = re.compile(r"#\s*v?(\d{1,9})(?:\.(\d{1,9}))?(?!\d)")


# The minor version of a bare major tag: `@v4` moves with v4's releases, so it is the newest of them.
_NEWEST_MINOR = 10**9


def action_version(step: YamlMap, source: Sequence[str]) -> tuple[int, int] | None:
    """The (major, minor) version of a step's `uses:`: its tag (`@v4.3.1`; a bare `@v4` is v4's newest
    release), else the comment beside a SHA on its line in `source`, the file's lines (`# v4.6.2`,
    Dependabot's and Renovate's form; a bare `# v4` names some v4 release, taken as v4.0); None when
    neither tells."""
    uses = str(step.get("uses", ""))
    tag = _VERSION_TAG.match(uses.partition("@")[2].strip())
    if tag:
        return int(tag.group(1)), int(tag.group(2)) if tag.group(2) else _NEWEST_MINOR
    line = step.line_of("uses")
    note = _VERSION_NOTE.search(source[line - 1]) if 0 < line <= len(source) else None
    return (int(note.group(1)), int(note.group(2) or 0)) if note else None


# Shared by ORG-GHA-004, 010, 012 and 017: a declared `permissions:`, the steps of a job with the line that
# reuses them through an alias, the lines of a script in the file, and the commands of a script that write
# the files the runner reads between steps.

def declares_permissions(node: object) -> bool:
    """The workflow or job writes `permissions:` with a value: a level for every scope (`read-all`) or a
    mapping of scopes (`{}` included). A bare `permissions:` is null, which grants nothing explicitly: the
    token keeps the repository's default, so it does not count as declared."""
    return isinstance(node, YamlMap) and isinstance(node.get("permissions"), (str, dict))


def item_alias_lines(source: Sequence[str], node: YamlSeq) -> list[int | None]:
    """`alias_line(source, node, index)` for every index of a sequence at once, in one pass over its lines
    (asking for each index in turn would walk the sequence again each time)."""
    first = next((text for text in source[max(node.line - 1, 0):node.end_line] if text.lstrip().startswith("-")), "")
    item = re.compile(rf"^{re.escape(first[:len(first) - len(first.lstrip())])}-\s+\*[^\s,\[\]{{}}#'\"]+\s*(?:#.*)?$")
    found: list[int | None] = [None] * len(node.lines)
    cursor, last = node.line - 1, min(node.end_line, len(source))
    for index, line in enumerate(node.lines):
        if cursor < line <= node.end_line:  # written in place
            cursor = line
            continue
        hit = next((n for n in range(cursor + 1, last + 1) if item.match(source[n - 1])), None)
        if hit is None:
            break
        found[index] = cursor = hit
    return found


def placed_steps(source: Sequence[str], workflow: object
                 ) -> Iterator[tuple[str, YamlMap, int, YamlMap, int | None]]:
    """(job id, job, index, step, alias line) of every step of every job. The alias line is where the job,
    its `steps:` or the step itself is used through a YAML alias (`b: *job`, `steps: *steps`, `- *step`),
    None when written in place: what is found in such a step belongs there, not at the anchor's lines."""
    if not isinstance(workflow, YamlMap):
        return
    for job_id, job, _ in jobs(workflow):
        job_at = alias_line(source, workflow.get("jobs"), job_id) or alias_line(source, job, "steps")
        sequence = job.get("steps")
        if not isinstance(sequence, YamlSeq):
            continue
        aliases = item_alias_lines(source, sequence)
        for index, step in enumerate(sequence):
            if isinstance(step, YamlMap):
                yield job_id, job, index, step, job_at or (aliases[index] if index < len(aliases) else None)


@dataclasses.dataclass(frozen=True)
class EnvFileWrite:
    """A command of a `run:` script that writes to GITHUB_ENV or GITHUB_PATH (`target`).

    `index` is the script line of the command. `expanded` is what it writes as the shell reads it: the
    command without the file's name, with the lines of the `{ }`, `( )` or loop it closes
    (`} >> "$GITHUB_ENV"`) and the body of the here-document it opens (`cat <<EOF >> "$GITHUB_ENV"`).
    `verbatim` is the body of a here-document with a quoted delimiter (`<<'EOF'`), which the shell writes
    unexpanded; a `${{ }}` in it is still replaced by GitHub before the script runs.
    """

    target: str
    index: int
    expanded: str
    verbatim: str = ""


_ENV_FILE = re.compile(r"\$(?:\{(?:env:)?(GITHUB_(?:ENV|PATH))\}|(?:env:)?(GITHUB_(?:ENV|PATH))\b)", re.IGNORECASE)
# What stands just before the file's name when a command writes to it: a redirection (`>>`, `>`, `&>>`),
# `tee` and its options, or a PowerShell cmdlet that writes files, with the file as its first argument or
# as -Path, -FilePath or -LiteralPath. Only a short window before the name is read, so a line costs its length.
_REDIRECT = re.compile(r"[0-9&]?>>?\|?\s*$")
_TEE = re.compile(r"\btee(?:\s+-{1,2}[\w-]+)*\s+$", re.IGNORECASE)
_CMDLET = re.compile(r"\b(?:Out-File|Add-Content|Set-Content)\b", re.IGNORECASE)
_FILE_ARGUMENT = re.compile(r"(?:\b(?:Out-File|Add-Content|Set-Content)\s+|\s-(?:File|Literal)?Path(?::\s*|\s+))$",
                            re.IGNORECASE)
_WINDOW = 80
_HEREDOC = re.compile(r"(?<!<)<<(-?)\s*(\\?[\"']?)([A-Za-z_][\w-]*)[\"']?")
# A group's lines are taken back to its opener for at most this many lines: the bound keeps nested groups
# that each write from copying the script once per level.
_GROUP_LINES = 50


def _writes_on(line: str) -> list[tuple[str, str]]:
    """(target, text before the writing command) of each write the line makes."""
    found: list[tuple[str, str]] = []
    cmdlet = _CMDLET.search(line)
    for match in _ENV_FILE.finditer(line):
        target = (match.group(1) or match.group(2)).upper()
        end = match.start() - (match.start() > 0 and line[match.start() - 1] in "'\"")
        begin = max(0, end - _WINDOW)
        window = line[begin:end]
        redirect = _REDIRECT.search(window) or _TEE.search(window)
        if redirect:
            head = line[:begin + redirect.start()]
        elif cmdlet and cmdlet.start() < match.start() and _FILE_ARGUMENT.search(window):
            head = line[:cmdlet.start()]
        else:
            continue
        if target not in (t for t, _ in found):
            found.append((target, head.rstrip(" \t|")))
    return found


def _heredoc(line: str) -> tuple[str, bool] | None:
    """(delimiter, quoted) of the here-document a shell line opens outside quotes, None when it opens none."""
    doubles = singles = position = 0
    for match in _HEREDOC.finditer(line):
        between = line[position:match.start()]
        doubles, singles, position = doubles + between.count('"'), singles + between.count("'"), match.start()
        if doubles % 2 == 0 and singles % 2 == 0:
            return match.group(3), bool(match.group(2))
    return None


def _closer(stripped: str) -> str:
    """The kind of group a script line closes (`}`, `)` or `done`), '' when none."""
    if stripped.startswith(("}", ")")):
        return stripped[0]
    return "done" if re.match(r"done\b", stripped) else ""


def _opener(stripped: str) -> str:
    """The kind of group a script line opens and leaves open, '' when none."""
    if stripped == "{" or stripped.endswith((" {", "\t{")) or (stripped.startswith("{ ") and "}" not in stripped):
        return "}"
    if stripped.startswith("(") and ")" not in stripped:
        return ")"
    return "done" if re.match(r"(?:for|while|until|select)\b", stripped) and not re.search(r"\bdone\b", stripped) \
        else ""


def env_file_writes(script: str) -> Iterator[EnvFileWrite]:
    """Every command of a shell or PowerShell script that writes to `$GITHUB_ENV` or `$GITHUB_PATH`:
    `>>`/`>` redirections, `tee` (`-a`, `--append`), `Out-File`, `Add-Content` and `Set-Content`, with what
    each writes, read in one pass (a here-document's body is data, not commands)."""
    lines = script.split("\n")
    open_groups: dict[str, list[int]] = {"}": [], ")": [], "done": []}
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        heredoc = _heredoc(line)
        after = index + 1
        body: list[str] = []
        if heredoc:
            after = next((n for n in range(index + 1, len(lines)) if lines[n].strip() == heredoc[0]), len(lines))
            body, after = lines[index + 1:after], after + 1
        closer = _closer(stripped)
        opened_at = open_groups[closer].pop() if closer and open_groups[closer] else None
        opener = _opener(stripped)
        if opener:
            open_groups[opener].append(index)
        writes = _writes_on(line)
        text = _ENV_FILE.sub("", line) if writes else ""
        for target, head in writes:
            expanded, verbatim = text, ""
            if closer and head.strip() == closer and opened_at is not None:
                expanded = "\n".join([*lines[max(opened_at, index - _GROUP_LINES):index], text])
            if heredoc and heredoc[1]:
                verbatim = "\n".join(body)
            elif heredoc:
                expanded = "\n".join([expanded, *body])
            yield EnvFileWrite(target, index, expanded, verbatim)
        index = after
