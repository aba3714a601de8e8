"""Parsed documents that know the source line of every node.

YAML mappings load as `YamlMap` (a dict with `.line`, `.end_line` and `.lines[key]`, the line
of each key) and sequences as `YamlSeq` (a list with `.line` and `.lines[i]`); scalars stay
plain Python values. Custom tags (CloudFormation `!Ref`, GitLab `!reference`, ...) load as
the plain node they tag, so a document is never refused for its tags alone.

Every stream is loaded in bounded time and memory: each document's node graph is composed
first (aliases are shared nodes there, so a "billion laughs" costs only its text), measured
against `Limits` without recursion, and only then built into Python objects. Whatever a
stream holds, `load_yaml` either returns its documents or raises a `yaml.YAMLError` with a line.
"""
from __future__ import annotations

import dataclasses
from typing import Any, cast

import yaml


@dataclasses.dataclass(frozen=True)
class Limits:
    """How much one file may cost before it is refused (a named problem) instead of read.

    Defaults, measured on ../shared/corpus (2,036 YAML/JSON files from 16 real repositories):
    the largest file is 833 KB, the most nodes in a file 17,116, the deepest nesting 28 levels
    and the most documents in a file 35. Each limit leaves a wide margin above those and stays
    well below what costs too much: a node costs 0.35-0.8 KB and 3.5-9 us in our loader and
    0.65-1.3 KB and 17-37 us in Checkov's (250,000 nodes: about 0.2 GB and 2 s here, 0.33 GB
    and 9 s there), and Checkov's loader silently drops documents nested past about 450
    levels. A ruleset raises them under `limits:`.
    """

    max_file_bytes: int = 5 * 1024 * 1024
    max_yaml_nodes: int = 250_000  # per file, aliases expanded
    max_yaml_depth: int = 200
    max_yaml_documents: int = 5_000
    # in all the YAML and JSON of one scan, estimated from the text (node_marks): the documents of
    # every file are held at once, so many files just under the per-file limit must not add up
    # to gigabytes (the largest corpus folder has about 211,000)
    max_scan_yaml_nodes: int = 1_000_000
    # Dockerfile parsers (dockerfile-parse's and Checkov's) slow down with the square of a file's
    # lines: 10,000 lines take 2.5 s in a whole scan, 380,000 would take minutes
    max_dockerfile_lines: int = 10_000


DEFAULT_LIMITS = Limits()


class YamlLimitError(yaml.MarkedYAMLError):
    """A YAML stream past one of the `Limits`: refused before it is built into objects."""


class YamlValueError(yaml.constructor.ConstructorError):
    """A node the constructor cannot build (an impossible date, an integer too long, ...)."""


def _libyaml_caps_nesting() -> bool:
    """Whether libyaml refuses nesting past its own cap (1,000 levels since libyaml 0.2.6).

    PyYAML's C composer recurses in C without a bound, so it is used only when libyaml
    itself refuses deep nesting; otherwise the pure-Python loader, whose recursion is bounded
    by Python's limit (and becomes a YAMLError below), is the safe choice.
    """
    try:
        yaml.CSafeLoader("[" * 1_001).get_single_node()
    except yaml.YAMLError as error:
        return "exceeded maximum nesting depth" in str(error)
    return False


_BaseLoader: type = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) and _libyaml_caps_nesting() \
    else yaml.SafeLoader


class YamlMap(dict[Any, Any]):
    """A mapping that remembers where it and each of its keys stand (1-based lines)."""

    line = 1
    end_line = 1
    lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        """The line of `key`, or of the mapping itself when the key is absent."""
        return self.lines.get(key, self.line)


class YamlSeq(list[Any]):
    """A sequence that remembers where it and each of its items stand (1-based lines)."""

    line = 1
    end_line = 1
    lines: list[int]


class TaggedStr(str):
    """A scalar written with a custom tag (`!Ref name`): its text, and the tag in `.tag`."""

    tag = ""


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping names the same key twice: refused in rulesets and targets alike."""


class _LineLoader(_BaseLoader):  # type: ignore[misc]  # a base picked at import: C or Python loader
    strict = False
    merges = True  # whether a mapping may hold a merge (`<<`) or value (`=`) key that flatten_mapping rewrites
    max_depth = DEFAULT_LIMITS.max_yaml_depth
    depth = 0  # collections being built around the current one


def _deeper(loader: _LineLoader, node: yaml.Node) -> None:
    """Refuse a collection past the depth limit (called only at the limit, so it costs nothing before it).

    In a document without aliases or standard tags construction depth is its depth, checked
    with no extra walk; otherwise `_measure` has already checked the expanded depth, never smaller.
    """
    if loader.depth > loader.max_depth or node.value:  # at the limit, any child is one level too deep
        raise _too_deep(node, loader.max_depth)


class _StrictLineLoader(_LineLoader):
    strict = True


# A merge or value key is spelt `<<` or `=`, or tagged explicitly; a text without these has none,
# so its mappings skip flatten_mapping (a pass over every key, about 4% of loading).
_MERGE_MARKS = ("<<", "=", "merge", "tag:yaml.org")


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> YamlMap:
    loader.depth += 1
    if loader.depth >= loader.max_depth:
        _deeper(loader, node)
    try:
        if loader.strict:
            _unique_keys(node)
        if loader.merges:
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
            result[key] = loader.construct_object(value_node, deep=True)  # a key of its own overrides a merged one
            result.lines[key] = key_node.start_mark.line + 1
        return result
    finally:
        loader.depth -= 1


def _unique_keys(node: yaml.MappingNode) -> None:
    """A mapping may not name a key twice: parsers disagree on which value wins (PyYAML keeps the
    last, Kubernetes, GitHub and Compose refuse the file), so a reviewer and the gate could read
    different values. Merged keys (`<<`) may be overridden."""
    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        if (key_node.tag, key_node.value) in seen:
            raise DuplicateKeyError("while constructing a mapping", node.start_mark,
                                    f"found duplicate key {key_node.value!r}", key_node.start_mark)
        seen.add((key_node.tag, key_node.value))


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> YamlSeq:
    loader.depth += 1
    if loader.depth >= loader.max_depth:
        _deeper(loader, node)
    try:
        result = YamlSeq(loader.construct_object(child, deep=True) for child in node.value)
    finally:
        loader.depth -= 1
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


def load_yaml(text: str, *, strict: bool = False, limits: Limits = DEFAULT_LIMITS) -> list[Any]:
    """Every document of a YAML stream, with line numbers; raises yaml.YAMLError, and only that.

    A stream past `limits` raises YamlLimitError before any of it is built into objects.
    """
    try:
        if 3 * len(text) + 3 > limits.max_yaml_nodes and node_bound(text) > limits.max_yaml_nodes:
            _count_events(text, limits)
        loader = (_StrictLineLoader if strict else _LineLoader)(text)
        loader.merges = any(mark in text for mark in _MERGE_MARKS)
        try:
            return _documents(loader, limits, any(mark in text for mark in _WALK_MARKS))
        finally:
            loader.dispose()
    except yaml.scanner.ScannerError as error:
        if "maximum nesting depth" not in str(error.problem):
            raise
        raise YamlLimitError(problem=_DEEPER.format(limits.max_yaml_depth), problem_mark=error.problem_mark) from None
    except RecursionError:  # only the pure-Python composer can recurse this deep
        raise YamlLimitError(problem=_DEEPER.format(limits.max_yaml_depth)) from None


# libyaml's own cap (1,000 levels) is past any depth limit a ruleset would set, so it reads the same
_DEEPER = "nested more than {} levels deep (the limit is limits.max_yaml_depth)"


# Every node but a document's lone scalar starts at, or is implied by, an indicator or a line
# break: `-` `?` `:` `,` `[` `{` or a newline (`[?]` makes three nodes of one `?`).
_NODE_MARKS = ("\n", ",", ":", "-", "?", "[", "{")


def node_marks(text: str) -> int:
    """The characters that can start a node: about one to two a node, counted at C speed (1 ms a MB)."""
    return sum(text.count(mark) for mark in _NODE_MARKS)


def node_bound(text: str) -> int:
    """An upper bound on the nodes `text` composes into."""
    return 3 * node_marks(text) + 3


def _count_events(text: str, limits: Limits) -> None:
    """Count a stream's nodes and documents as libyaml parses it, before anything is composed.

    Composing costs about 0.3 KB and 4 us a node (PyYAML resolves every scalar in Python), so a
    text that may hold too many nodes is refused from the event stream, in constant memory.
    Aliases are not expanded here (they compose into shared nodes); `_measure` expands them.
    """
    parser = _BaseLoader(text)
    nodes = documents = 0
    node_events = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, node_events):
                nodes += 1
                if nodes > limits.max_yaml_nodes:
                    raise _too_many(event, limits, shared=False)
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > limits.max_yaml_documents:
                    raise _too_many_documents(event, limits)
    finally:
        parser.dispose()


# An alias is spelt `*name`; `!!omap`, `!!pairs` and `!!set` (or their `tag:yaml.org` forms) are
# built by PyYAML's own constructors, past our depth count. A text with none of these needs no walk.
_WALK_MARKS = ("*", "!!", "tag:yaml.org")


def _documents(loader: _LineLoader, limits: Limits, walk: bool) -> list[Any]:
    """Compose, check and construct each document in turn.

    Without aliases or standard tags (no `_WALK_MARKS` in the text) a document is a tree that
    only our constructors build: the text already bounds its node count (`node_bound`, or
    `_count_events` past it) and construction checks its depth, so it needs no walk of its
    own. Otherwise `_measure` walks it first, expanding aliases.
    """
    documents: list[Any] = []
    nodes = 0
    loader.max_depth = limits.max_yaml_depth
    while loader.check_node():
        node = loader.get_node()
        if len(documents) == limits.max_yaml_documents:
            raise _too_many_documents(node, limits)
        if walk:
            size = _tree_size(node, limits)
            nodes += _measure(node, limits, limits.max_yaml_nodes - nodes) if size is None else size
        documents.append(_construct(loader, node))
    return documents


def _tree_size(root: yaml.Node, limits: Limits) -> int | None:
    """The node count of a document that is a tree, or None when a collection is reached twice.

    The cheap first walk, level by level (most texts with a `*` use it in prose, not as an
    alias): it checks the depth as it goes (PyYAML's own constructors for `!!omap` and the
    like count none) and hands a shared graph to `_measure`, which expands it.
    """
    seen: set[int] = set()
    size, depth = 1, 1
    level = [] if type(root) is yaml.ScalarNode else [root]
    while level:
        below: list[yaml.Node] = []
        for node in level:
            if id(node) in seen:
                return None
            seen.add(id(node))
            size += 2 * len(node.value) if type(node) is yaml.MappingNode else len(node.value)
            if depth >= limits.max_yaml_depth and (depth > limits.max_yaml_depth or node.value):
                raise _too_deep(node, limits.max_yaml_depth)
            below += _collections(node)
        level, depth = below, depth + 1
    return size


def _measure(root: yaml.Node, limits: Limits, budget: int) -> int:
    """The node count of `root` with every alias expanded; raises YamlLimitError past the limits.

    One post-order walk with an explicit stack over the collections (a scalar is one node and
    one level): each distinct collection is measured once (its size and height memoised), so an
    alias bomb costs its composed size, not its expansion, and nesting costs no recursion. A
    collection met again while it is still open contains itself: a recursive alias.
    """
    if type(root) is yaml.ScalarNode:
        return 1
    sizes: dict[int, tuple[int, int] | None] = {}  # id(collection) -> (expanded size, height); None while open
    shared = False  # whether a collection is reached twice (through an alias)
    stack: list[Any] = [root]  # a node to open, or (node, its scalar count, its collections) to close
    while stack:
        item = stack.pop()
        if type(item) is tuple:
            node, size, collections = item
            size, height = size + 1, 1 if size else 0  # scalars are one level below
            for child in collections:
                child_size, child_height = sizes[id(child)]  # type: ignore[misc]  # closed (not None) before its parent
                size += child_size
                if child_height > height:  # not max(): it costs a call a node
                    height = child_height
            sizes[id(node)] = size, height + 1
            if size > budget:
                raise _too_many(node, limits, shared)
            if height >= limits.max_yaml_depth:
                raise _too_deep(node, limits.max_yaml_depth)
            continue
        key = id(item)
        if key in sizes:
            if sizes[key] is None:
                raise YamlLimitError(problem="holds an alias to a node that contains it (a recursive alias), "
                                             "which has no end", problem_mark=item.start_mark)
            shared = True
            continue
        sizes[key] = None
        collections = _collections(item)
        stack.append((item, 2 * len(item.value) - len(collections) if type(item) is yaml.MappingNode
                      else len(item.value) - len(collections), collections))
        stack.extend(collections)
    return sizes[id(root)][0]  # type: ignore[index]  # the root is closed (not None) last


def _collections(node: yaml.Node) -> list[yaml.Node]:
    """The children of a collection node that are collections themselves (keys included)."""
    scalar = yaml.ScalarNode
    if type(node) is yaml.MappingNode:
        found = []
        for key, value in node.value:
            if type(key) is not scalar:
                found.append(key)
            if type(value) is not scalar:
                found.append(value)
        return found
    return [child for child in node.value if type(child) is not scalar]


def _too_deep(node: yaml.Node, max_depth: int) -> YamlLimitError:
    return YamlLimitError(problem=_DEEPER.format(max_depth), problem_mark=node.start_mark)


def _too_many_documents(at: yaml.Node | yaml.Event, limits: Limits) -> YamlLimitError:
    return YamlLimitError(problem=f"more than {limits.max_yaml_documents} documents in one file "
                                  "(the limit is limits.max_yaml_documents)", problem_mark=_mark(at))


def _too_many(at: yaml.Node | yaml.Event, limits: Limits, shared: bool) -> YamlLimitError:
    what = (f"more than {limits.max_yaml_nodes} nodes once its aliases are expanded: a YAML alias bomb?"
            if shared else f"more than {limits.max_yaml_nodes} nodes")
    return YamlLimitError(problem=f"{what} (the limit is limits.max_yaml_nodes)", problem_mark=_mark(at))


def _mark(at: yaml.Node | yaml.Event) -> yaml.Mark | None:
    """Where `at` starts. The C parser's events carry its own Mark class, which has the same fields
    (name, line, column) and prints the same, and is all MarkedYAMLError reads: typed as yaml's Mark."""
    return cast("yaml.Mark | None", at.start_mark)


def _construct(loader: _LineLoader, root: yaml.Node) -> Any:
    """Build one measured document; a constructor's own error becomes a YAMLError at its node's line."""
    try:
        return loader.construct_document(root)
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        # construct_object keeps the nodes it is building, innermost last, until it returns
        node = next(reversed(loader.recursive_objects), root)
        if isinstance(error, RecursionError):  # a depth limit raised past what Python's stack holds (~240)
            raise YamlLimitError(problem=f"nested too deep to build (the limit is limits.max_yaml_depth, "
                                         f"{loader.max_depth}, and Python's stack holds about 240 levels)",
                                 problem_mark=node.start_mark) from None
        raise YamlValueError(f"while constructing a {node.tag.rsplit(':', 1)[-1]}", node.start_mark,
                             f"cannot be read: {error}", node.start_mark) from None


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
