"""Small helpers shared by the bundled policies (no rules here)."""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
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
