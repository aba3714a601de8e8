"""Parsed documents that know the source line of every node.

YAML mappings load as `YamlMap` (a dict with `.line`, `.end_line` and `.lines[key]`, the line
of each key) and sequences as `YamlSeq` (a list with `.line` and `.lines[i]`); scalars stay
plain Python values. Custom tags (CloudFormation `!Ref`, GitLab `!reference`, ...) load as
the plain node they tag, so a document is never refused for its tags alone.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import yaml

try:
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml is part of every PyYAML wheel we support
    _BaseLoader = yaml.SafeLoader


class YamlMap(dict):  # type: ignore[type-arg]
    """A mapping that remembers where it and each of its keys stand (1-based lines)."""

    line = 1
    end_line = 1
    lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        """The line of `key`, or of the mapping itself when the key is absent."""
        return self.lines.get(key, self.line)


class YamlSeq(list):  # type: ignore[type-arg]
    """A sequence that remembers where it and each of its items stand (1-based lines)."""

    line = 1
    end_line = 1
    lines: list[int]


class TaggedStr(str):
    """A scalar written with a custom tag (`!Ref name`): its text, and the tag in `.tag`."""

    tag = ""


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping names the same key twice (rulesets refuse this)."""


class _LineLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    strict = False


class _StrictLineLoader(_LineLoader):
    strict = True


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> YamlMap:
    loader.flatten_mapping(node)
    result = YamlMap()
    result.line, result.end_line = node.start_mark.line + 1, _end_line(node)
    result.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found an unhashable key", key_node.start_mark
            ) from None
        if loader.strict and key in result:
            raise DuplicateKeyError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> YamlSeq:
    result = YamlSeq(loader.construct_object(child, deep=True) for child in node.value)
    result.line, result.end_line = node.start_mark.line + 1, _end_line(node)
    result.lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _end_line(node: yaml.Node) -> int:
    """The last line a node's content is on (libyaml's end mark can sit at column 0 after it)."""
    end = node.end_mark
    return end.line + (1 if end.column else 0) or 1


def _construct_tagged(loader: _LineLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return _construct_map(loader, node)
    if isinstance(node, yaml.SequenceNode):
        return _construct_seq(loader, node)
    scalar = TaggedStr(loader.construct_scalar(node))
    scalar.tag = node.tag
    return scalar


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
_LineLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))
_LineLoader.add_multi_constructor("!", _construct_tagged)
_LineLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_tagged)


def load_yaml(text: str, *, strict: bool = False) -> list[Any]:
    """Every document of a YAML stream, with line numbers; raises yaml.YAMLError."""
    loader = (_StrictLineLoader if strict else _LineLoader)(text)
    try:
        return list(_documents(loader))
    finally:
        loader.dispose()


def _documents(loader: _LineLoader) -> Iterator[Any]:
    while loader.check_data():
        yield loader.get_data()


def yaml_error_line(error: yaml.YAMLError) -> int:
    """The 1-based line a YAML error points at (0 when it names none)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return mark.line + 1 if mark else 0


def yaml_error_text(error: yaml.YAMLError) -> str:
    """A one-line description of a YAML error without PyYAML's position block."""
    parts = [getattr(error, "context", None), getattr(error, "problem", None)]
    return "; ".join(p for p in parts if p) or str(error).splitlines()[0]


@dataclasses.dataclass(frozen=True)
class Document:
    """One parsed document of a target, as Python checks see it.

    `data` is a YamlMap/YamlSeq tree for YAML kinds, the python-hcl2 tree for Terraform
    (blocks carry `__start_line__`/`__end_line__`), a list of `Instruction` for Dockerfiles,
    and the tuple of every file path in the repository for the `repo` kind.
    `text` is the source, so checks can find the line of anything the parser does not mark.
    """

    path: str
    kind: str
    data: Any
    text: str = ""
    index: int = 0


@dataclasses.dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: `FROM`, `RUN`, ... with its value and lines."""

    name: str
    value: str
    line: int
    end_line: int
