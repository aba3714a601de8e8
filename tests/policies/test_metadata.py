"""Every check carries complete metadata, documentation in policies/README.md and example files.

Which controls a rule gives evidence for is the rulesets' (tests/policies/test_docs.py checks the mapping).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from checker.engines.python import load_policies
from checker.policy import Policy

PROJECT = Path(__file__).resolve().parents[2]
FIXTURES = PROJECT / "tests" / "fixtures" / "policies"
README = (PROJECT / "policies" / "README.md").read_text(encoding="utf-8")
POLICIES = sorted(load_policies().values(), key=lambda p: p.id)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


ANCHORS = {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", README, re.MULTILINE)}


def test_the_library_is_large_enough_and_varied() -> None:
    assert len(POLICIES) >= 25
    assert {p.severity.value for p in POLICIES} >= {"critical", "high", "medium", "low"}


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.id)
def test_metadata_is_complete(policy: Policy) -> None:
    assert re.fullmatch(r"ORG-[A-Z0-9]+-\d{3}", policy.id)
    assert policy.title and not policy.title.endswith(".")
    assert policy.description and policy.description != policy.title, "the docstring describes it"
    assert policy.rationale
    assert re.search(r"^ {4}\S", policy.remediation, re.MULTILINE), "the remediation shows a corrected snippet"
    assert policy.help_uri.endswith("#" + policy.id.lower())
    assert policy.kinds


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.id)
def test_documented_in_the_readme(policy: Policy) -> None:
    assert policy.id.lower() in ANCHORS, f"policies/README.md needs a heading `### {policy.id}`"
    link = rf"\[{policy.id}\]\(#{policy.id.lower()}\)"
    row = re.search(rf"^\| {link} \| (\w+) \| (.+?) \| (.+?) \|$", README, re.MULTILINE)
    assert row, f"policies/README.md's table needs a row for {policy.id}"
    assert row.group(1) == policy.severity.value
    assert row.group(2) == policy.title
    assert row.group(3) == ", ".join(k.value for k in policy.kinds)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.id)
def test_has_pass_and_fail_examples(policy: Policy) -> None:
    for side in ("pass", "fail"):
        folder = FIXTURES / policy.id / side
        assert folder.is_dir() and any(p.is_file() for p in folder.rglob("*")), folder


def test_no_fixture_folder_without_a_policy() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == [p.id for p in POLICIES]
