"""Small helpers shared by the bundled policies (no rules here)."""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from checker.documents import YamlMap, YamlSeq

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


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


def text_lines(value: str, text: str, start: int, end: int | None = None) -> Iterator[tuple[int, str]]:
    """(source line, line of `value`) for each line of a YAML string scalar that starts on `start`.

    Each non-blank line of the value is looked up in the source in order, from `start` on, so the
    lines are right for literal (`|`), folded (`>`) and plain scalars alike; a value line that cannot
    be found (an escaped quoted string) gets the line of the last one found.
    """
    source = text.splitlines()
    stop = len(source) if end is None else min(end, len(source))
    cursor = max(start, 1)
    for piece in value.splitlines():
        stripped = piece.strip()
        if not stripped:
            continue
        for number in range(cursor, stop + 1):
            if stripped in source[number - 1]:
                cursor = number
                break
        yield cursor, piece


def get_path(node: Any, *keys: Any) -> Any:
    """node[k1][k2]... through mappings only; None when any step is missing or not a mapping."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
