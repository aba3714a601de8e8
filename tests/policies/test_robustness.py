"""Checks never crash on odd input: every node of every example document is replaced, one at a time,
by values of the wrong shape (None, numbers, booleans, strings, empty and odd lists and maps)."""
from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checker.discover import discover
from checker.documents import Document, Instruction, YamlMap, YamlSeq, load_yaml
from checker.engines.python import load_policies, parse_dockerfile
from checker.policy import Context, Policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
ORGANISATION = {
    "approved_registries": ["registry.example.com"], "required_labels": ["app"],
    "required_tags": ["owner"], "allowed_regions": ["eu-west-2"],
}
ODD_YAML = ["null", "7", "true", "x", "[]", "{}", "[null, 3, [x]]", "{a: null, 1: [], b: {c: 2}}",
            "${{ github.event.issue.title }}"]
ODD_VALUES: list[Any] = [load_yaml(text)[0] for text in ODD_YAML]
POLICIES = sorted(load_policies().values(), key=lambda p: p.id)
REPO_POLICIES = [p for p in POLICIES if "repo" in [k.value for k in p.kinds]]
DOCUMENT_POLICIES = [p for p in POLICIES if p not in REPO_POLICIES]


def replacements(node: Any) -> Iterator[Any]:
    """Copies of `node` with one value (or one key's value) replaced by an odd one, depth first."""
    if isinstance(node, dict):
        for key in list(node):
            for odd in ODD_VALUES:
                clone = copy.deepcopy(node)
                clone[key] = copy.deepcopy(odd)
                yield clone
            for child in replacements(node[key]):
                clone = copy.copy(node)
                clone[key] = child
                yield clone
    elif isinstance(node, list):
        for i, item in enumerate(node):
            for odd in ODD_VALUES:
                clone = copy.deepcopy(node)
                clone[i] = copy.deepcopy(odd)
                yield clone
            for child in replacements(item):
                clone = copy.copy(node)
                clone[i] = child
                yield clone


def example_documents(policy: Policy) -> list[Document]:
    """The parsed documents of the policy's pass and fail examples, of the kinds it checks."""
    import hcl2

    docs = []
    for side in ("pass", "fail"):
        root = FIXTURES / policy.id / side
        for source in discover(root, [root]).sources:
            if source.kind.value not in [k.value for k in policy.kinds]:
                continue
            if source.kind.value == "terraform":
                docs.append(Document(source.path, "terraform", hcl2.loads(source.text), source.text))
            elif source.kind.value == "dockerfile":
                docs.append(Document(source.path, "dockerfile", parse_dockerfile(source.text), source.text))
            else:
                docs += [Document(source.path, source.kind.value, d, source.text, i)
                         for i, d in enumerate(source.documents)]
    return docs


def context(policy: Policy, documents: list[Document], root: str = ".") -> Context:
    def of_kind(kind: str) -> tuple[Document, ...]:
        return tuple(d for d in documents if d.kind == kind)

    return Context(organisation=ORGANISATION, params=dict(policy.params), files=(), documents=of_kind, root=root)


@pytest.mark.parametrize("policy", DOCUMENT_POLICIES, ids=lambda p: p.id)
def test_odd_shapes_never_crash(policy: Policy) -> None:
    docs = example_documents(policy)
    assert docs, f"{policy.id} has no example documents of its kinds"
    tried = 0
    for doc in docs:
        if doc.kind == "dockerfile":
            variants: list[Any] = [[], [Instruction("FROM", "", 1, 1)], [Instruction("FROM", "--platform=x", 1, 1)],
                                   [Instruction("FROM", "a AS", 1, 1)], [Instruction("FROM", "AS b", 1, 1)],
                                   [Instruction("from", "${X}", 1, 1)], [None], "x", None]
        else:
            variants = list(replacements(doc.data)) + ODD_VALUES
        for data in variants:
            odd = Document(doc.path, doc.kind, data, doc.text, doc.index)
            list(policy.run(odd, context(policy, [odd])))
            tried += 1
    assert tried > 5


@pytest.mark.parametrize("policy", REPO_POLICIES, ids=lambda p: p.id)
def test_repository_checks_survive_odd_files(policy: Policy, tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "CODEOWNERS").write_bytes(b"\xff\xfe\x00binary")
    (tmp_path / "server.pem").write_bytes(b"\x00\x01\x02")
    (tmp_path / "dir.key").mkdir()
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: [1, {hooks: null}, {hooks: [x, {id: null}]}]\n")
    files = (".github/CODEOWNERS", "server.pem", "dir.key", "missing.key", ".pre-commit-config.yaml", ".env.example")
    for data in (files, (), (None, 3, "id_rsa")):
        doc = Document(".", "repo", data)
        list(policy.run(doc, context(policy, [doc], str(tmp_path))))
    for text in ("{{ not yaml", "- a\n- b\n", "repos: null\n", ""):
        (tmp_path / ".pre-commit-config.yaml").write_text(text)
        doc = Document(".", "repo", files)
        list(policy.run(doc, context(policy, [doc], str(tmp_path))))


def test_odd_value_shapes_are_yaml_nodes() -> None:
    assert any(isinstance(v, YamlMap) for v in ODD_VALUES) and any(isinstance(v, YamlSeq) for v in ODD_VALUES)
