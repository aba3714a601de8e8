"""load_yaml in bounded time and memory: every hostile stream is a YAMLError with a line, never a hang or a crash."""
from __future__ import annotations

import contextlib
import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from checker import documents
from checker.documents import (
    Limits,
    YamlLimitError,
    YamlValueError,
    load_yaml,
    yaml_error_line,
    yaml_error_text,
)

BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True))


def refusal(text: str, limits: Limits = documents.DEFAULT_LIMITS, seconds: float = 2.0) -> yaml.YAMLError:
    """The YAMLError `text` raises, asserting it comes quickly."""
    started = time.monotonic()
    with pytest.raises(yaml.YAMLError) as caught:
        load_yaml(text, limits=limits)
    assert time.monotonic() - started < seconds
    return caught.value


def test_an_alias_bomb_is_refused_before_it_is_built():
    error = refusal(BOMB, seconds=0.5)
    assert isinstance(error, YamlLimitError)
    assert "a YAML alias bomb?" in yaml_error_text(error)
    assert "limits.max_yaml_nodes" in yaml_error_text(error)
    assert yaml_error_line(error) == 6  # the first mapping whose expansion passes the limit


def test_aliases_within_the_limits_load_as_shared_values():
    (doc,) = load_yaml("base: &b {image: nginx}\nother: *b\nlist: [*b, *b]\n")
    assert doc["other"] == {"image": "nginx"} and doc["list"] == [{"image": "nginx"}] * 2


def test_the_node_limit_counts_expanded_aliases_across_documents():
    limits = Limits(max_yaml_nodes=10)
    assert load_yaml("[1, 2, 3, 4]\n---\n[1, 2, 3, 4]\n", limits=limits)  # 5 + 5 nodes
    error = refusal("[1, 2, 3, 4]\n---\n[1, 2, 3, 4, 5]\n", limits)
    assert yaml_error_text(error) == "more than 10 nodes (the limit is limits.max_yaml_nodes)"
    assert yaml_error_line(error) == 3
    assert "alias bomb" in yaml_error_text(refusal("a: &a [1, 2, 3]\nb: [*a, *a]\n", Limits(max_yaml_nodes=10)))


def test_a_dense_file_is_refused_from_the_event_stream_before_it_is_composed():
    """5 MiB of `0,` would compose into 2.6 million nodes (about 0.7 GB and 12 s); counting events is quick."""
    error = refusal("[" + ",".join(["0"] * 2_600_000) + "]", seconds=3)
    assert "more than 250000 nodes" in yaml_error_text(error)


def test_a_60_mb_yaml_is_refused_quickly():
    error = refusal("- {name: x, value: 'abcdefghijklmnopqrstuvwxyz0123456789'}\n" * 1_100_000, seconds=3)
    assert isinstance(error, YamlLimitError)
    assert yaml_error_line(error) == 50_000  # where the 250,001st node starts


def test_fifty_thousand_documents_are_refused():
    error = refusal("---\na: 1\n" * 50_000, seconds=1)
    assert "more than 5000 documents" in yaml_error_text(error)
    assert yaml_error_line(error) == 10_001
    assert len(load_yaml("---\na: 1\n" * 3, limits=Limits(max_yaml_documents=3))) == 3
    assert "limits.max_yaml_documents" in yaml_error_text(refusal("---\na: 1\n" * 4, Limits(max_yaml_documents=3)))


@pytest.mark.parametrize("text", [
    "[" * 1_000 + "]" * 1_000,
    "[" * 100_000 + "]" * 100_000,
    "{a: " * 1_000 + "1" + "}" * 1_000,
    "- " * 100_000 + "x\n",
    "".join("  " * i + "a:\n" for i in range(1_000)) + "  " * 1_000 + "b: 1\n",
], ids=["flow-1000", "flow-100000", "map-1000", "block-100000", "indented-1000"])
def test_deep_nesting_is_a_yaml_error_never_a_recursion_error(text):
    error = refusal(text, seconds=2)
    assert isinstance(error, YamlLimitError)  # libyaml's own cap reads as ours: the file is refused
    assert yaml_error_line(error) >= 1
    assert yaml_error_text(error) == "nested more than 200 levels deep (the limit is limits.max_yaml_depth)"


def test_the_depth_limit_is_exact():
    assert load_yaml("[" * 200 + "]" * 200)  # 200 sequences, the innermost empty
    assert load_yaml("a: " + "[" * 199 + "]" * 199)  # the mapping, 199 sequences: 200 levels
    error = refusal("a: " + "[" * 200 + "]" * 200)
    assert yaml_error_text(error) == "nested more than 200 levels deep (the limit is limits.max_yaml_depth)"
    assert load_yaml("[[[1]]]", limits=Limits(max_yaml_depth=4)) == [[[[1]]]]
    assert refusal("[[[[1]]]]", Limits(max_yaml_depth=4))


def test_depth_counts_through_aliases():
    text = "a: &a [[[[1]]]]\nb: [[[*a]]]\n"
    assert "levels deep" in yaml_error_text(refusal(text, Limits(max_yaml_depth=8)))
    assert load_yaml(text, limits=Limits(max_yaml_depth=9))


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "- &x [1, [2, *x]]\n"])
def test_a_recursive_alias_is_refused(text):
    error = refusal(text)
    assert "recursive alias" in yaml_error_text(error)
    assert yaml_error_line(error) == 1


def test_an_impossible_date_is_a_yaml_error_with_its_line():
    error = refusal("metadata:\n  annotations:\n    expires: 2025-02-30\n")
    assert isinstance(error, YamlValueError)
    assert yaml_error_line(error) == 3
    assert yaml_error_text(error) == "while constructing a timestamp; cannot be read: day is out of range for month"


def test_other_constructor_errors_are_yaml_errors():
    assert "cannot be read" in yaml_error_text(refusal("count: " + "1" * 5_000 + "\n"))  # past int's digit limit
    assert yaml_error_line(refusal("a: 1\nb: !!binary 'x'\n")) == 2


def test_a_strict_load_still_refuses_duplicate_keys_and_bombs():
    with pytest.raises(documents.DuplicateKeyError):
        load_yaml("a: 1\na: 2\n", strict=True)
    with pytest.raises(YamlLimitError):
        load_yaml(BOMB, strict=True)


def test_libyaml_caps_nesting_so_its_composer_is_used():
    """PyYAML's C composer recurses without a bound; it is safe only because libyaml refuses nesting past 1,000."""
    assert documents._libyaml_caps_nesting()
    assert documents._BaseLoader is yaml.CSafeLoader


def count_composed(text: str) -> int:
    loader = yaml.CSafeLoader(text)
    seen: set[int] = set()
    try:
        while loader.check_node():
            stack = [loader.get_node()]
            while stack:
                node = stack.pop()
                if id(node) not in seen:
                    seen.add(id(node))
                    stack.extend(c for pair in node.value for c in pair) if isinstance(node, yaml.MappingNode) \
                        else stack.extend(node.value if isinstance(node, yaml.SequenceNode) else ())
    finally:
        loader.dispose()
    return len(seen)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="?:-,[]{} \n\t*&!#'\"x|>.", max_size=30))
def test_the_node_bound_holds_for_any_text(text):
    """Texts within the bound skip the event count; the bound must never be below the real node count."""
    try:
        composed = count_composed(text)
    except yaml.YAMLError:
        return
    assert composed <= documents.node_bound(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.text(alphabet="?:-,[]{} \n*&ab!0123456789", max_size=200))
def test_any_text_loads_or_raises_a_yaml_error(text):
    with contextlib.suppress(yaml.YAMLError):
        load_yaml(text, limits=Limits(max_yaml_nodes=50, max_yaml_depth=6, max_yaml_documents=3))


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.integers(0, 9) | st.just([]) | st.just({}),
                    lambda inner: (st.lists(inner, max_size=3)
                                   | st.dictionaries(st.sampled_from("abc"), inner, max_size=3)),
                    max_leaves=12), st.integers(1, 6), st.booleans())
def test_construction_and_the_walk_agree_on_depth(data, depth, flow):
    """A tree's depth is checked while it is built; with aliases by the memoised walk: the same verdict."""
    limits = Limits(max_yaml_depth=depth)
    text = yaml.safe_dump(data, default_flow_style=flow)
    node = yaml.CSafeLoader(text).get_single_node()
    verdicts = []
    for check in (lambda: load_yaml(text, limits=limits), lambda: documents._measure(node, limits, 10**6)):
        try:
            check()
            verdicts.append(True)
        except YamlLimitError:
            verdicts.append(False)
    assert verdicts[0] == verdicts[1]


def test_standard_tags_built_by_pyyaml_are_walked_for_depth():
    text = "!!omap [{a: " * 150 + "1" + "}]" * 150
    assert "levels deep" in yaml_error_text(refusal(text))


@pytest.mark.parametrize("text", [
    "base: &b {a: 1}\nuse:\n  <<: *b\n  c: 2\n",
    "%TAG !y! tag:yaml.org,2002:\n---\nbase: &b {a: 1}\nuse: {!y!merge : *b, c: 2}\n",
    "base: &b {a: 1}\nuse: {!!merge '<<': *b, c: 2}\n",
])
def test_merge_keys_are_still_merged(text):
    assert load_yaml(text)[0]["use"] == {"a": 1, "c": 2}


def test_a_depth_limit_raised_past_the_stack_still_refuses_with_a_limit_error():
    error = refusal("[" * 400 + "]" * 400, Limits(max_yaml_depth=500))
    assert isinstance(error, YamlLimitError) and "nested too deep to build" in yaml_error_text(error)
