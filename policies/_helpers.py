"""Small helpers shared by the bundled policies (no rules here)."""
from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from checker.documents import YamlMap, YamlSeq

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# A `${{ }}` expression, as GitHub Actions and Azure Pipelines write them (their bodies differ, not the fences).
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
# Commands that create a throwaway local cluster: a job that runs one tests against it, and a `kubectl apply`
# there deploys nothing.
EPHEMERAL_CLUSTER_COMMANDS = re.compile(
    r"\b(?:kind\s+create\s+cluster|minikube\s+start|k3d\s+cluster\s+create|k3s\s+server)\b"
)


def image_registry(image: str) -> str:
    """The registry host of an image reference (docker.io when none is written)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def is_approved(image: str, registries: Sequence[str]) -> bool:
    """An image is approved if it starts with an approved registry (optionally with a path prefix)."""
    return any(image == r or image.startswith(r.rstrip("/") + "/") for r in registries)


def image_tag(image: str) -> str | None:
    """The tag of an image reference; None when it has no tag (which means latest)."""
    if _DIGEST.search(image):
        return image.rsplit("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def is_pinned_by_digest(image: str) -> bool:
    return bool(_DIGEST.search(image))


def is_variable(value: str) -> bool:
    """A value that is only known at run time ($VAR, ${{ }}, {{ }}): checks do not guess it."""
    return "$" in value or "{{" in value


def mappings(node: Any) -> Iterator[YamlMap]:
    """Items of a YAML sequence that are mappings."""
    if isinstance(node, YamlSeq):
        yield from (item for item in node if isinstance(item, YamlMap))


def list_at(node: Mapping[Any, Any], key: Any) -> list[Any]:
    """`node[key]` when it is a list, else [] (absent, or any other value)."""
    value = node.get(key)
    return value if isinstance(value, list) else []


def as_list(node: Any) -> list[Any]:
    """A YAML value that may be one item or a list of items, as a list (None -> [])."""
    if node is None:
        return []
    return list(node) if isinstance(node, list) else [node]


def line_of(node: Any, key: Any, default: int = 1) -> int:
    """The line of `key` in a YamlMap, else the map's own line, else `default`."""
    if isinstance(node, YamlMap):
        return node.line_of(key)
    return default


def item_line(seq: Any, index: int, default: int = 1) -> int:
    """The line of item `index` of a YamlSeq, else `default`."""
    if isinstance(seq, YamlSeq) and 0 <= index < len(seq.lines):
        return seq.lines[index]
    return default


# How far past the last line found a script line is looked for: a folded (`>`) or escaped quoted line is on
# no single source line, and the bound stops each such miss from scanning to the end of the step.
_LOOKAHEAD = 200


def script_lines(value: str, source: Sequence[str], start: int, end: int) -> list[int]:
    """The source line of each line (`value.split("\\n")`) of a YAML string whose key is on line `start`
    and whose node ends on `end`; `source` is the file's lines, split once by the caller.

    Each non-blank line is looked up in order after the last one found (so a repeated line, `fi` or
    `make`, gets its own line), so the lines are right for literal (`|`), folded (`>`) and plain scalars
    alike; a blank line, or one no source line holds (folded or escaped), gets the line of the one before.
    """
    numbers: list[int] = []
    cursor, stop = max(start, 1), min(end, len(source))
    after = cursor  # where the next line is looked for: the key's line at first, then past the last found
    for piece in value.split("\n"):
        stripped = piece.strip()
        if stripped:
            found = next((n for n in range(after, min(stop, after + _LOOKAHEAD) + 1) if stripped in source[n - 1]),
                         None)
            if found is not None:
                cursor, after = found, found + 1
        numbers.append(cursor)
    return numbers


def get_path(node: Any, *keys: Any) -> Any:
    """node[k1][k2]... through mappings only; None when any step is missing or not a mapping."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def expression_matches(text: str) -> Iterator[re.Match[str]]:
    """The matches of `EXPRESSION` in a text, as `finditer` finds them, in time linear in the text: a `${{`
    with no `}}` after it ends the search, where the regex would start again from every later `${{` and
    read on to the end each time (a line of `${{ ${{ ${{ ...` would cost its length squared)."""
    start = text.find("${{")
    while start >= 0 and text.find("}}", start + 3) >= 0:
        match = EXPRESSION.match(text, start)
        if match is None:
            return
        yield match
        start = text.find("${{", match.end())


def readers_of(definitions: Iterable[tuple[int, tuple[str, Sequence[str]]]]) -> dict[str, list[int]]:
    """The positions of the variable definitions (position, (name, variables its value reads)) that read
    each variable."""
    found: dict[str, list[int]] = {}
    for index, (_, reads) in definitions:
        for read in dict.fromkeys(reads):
            found.setdefault(read, []).append(index)
    return found


def spread_taint(untrusted: Iterable[str], definition: Callable[[int], tuple[str, Sequence[str]]],
                 readers: Callable[[str], Iterable[int]]) -> dict[str, str]:
    """The variables tainted from `untrusted` through definitions (`definition(i)`: the name and the variables
    its value reads, in order; `readers(name)`: the positions of those that read a variable), each mapped to
    the untrusted variable of the first tainted one it reads. GitLab's `variables:` and Azure's share it.

    The result is that of rounds over every definition in order until none changes (a definition sees what
    the ones before it in the same round tainted), but each definition is looked at only when a variable it
    reads is tainted: in order of (round, position), the round being the one in which the rounds would first
    see it reading a tainted variable. Rounds over every definition would cost the square of a chain's length.
    """
    tainted = {name: name for name in untrusted}
    waiting = [(0, index) for name in tainted for index in readers(name)]
    heapq.heapify(waiting)
    while waiting:
        round_, index = heapq.heappop(waiting)
        name, reads = definition(index)
        if name in tainted:
            continue
        tainted[name] = tainted[next(read for read in reads if read in tainted)]
        for reader in readers(name):
            heapq.heappush(waiting, (round_ if reader > index else round_ + 1, reader))
    return tainted
