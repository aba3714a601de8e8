"""ORG-GHA-001: actions and reusable workflows pinned to a commit."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document
from checker.policy import Context, Violation, policy

from .workflow import action_refs, is_pinned

# How far below its key a `uses:` value is looked for: a block scalar puts it on the next line, after at most
# a few comment or blank lines. A bound keeps the search linear in the file's size.
_VALUE_LINES = 5
# Reusable workflows that must be called by a release tag: slsa-github-generator reads its own version from
# the tag to fetch its verified builder, and a SHA makes provenance generation fail (its documentation says
# so); a tag like v2.1.0 is what its users can review.
TAG_ONLY = re.compile(r"^slsa-framework/slsa-github-generator/\.github/workflows/[^@]+@v\d+\.\d+\.\d+$")


@policy(
    id="ORG-GHA-001",
    title="Third-party actions are pinned to a full commit SHA",
    kinds=["github-actions"],
    severity="high",
    rationale="A tag or branch can be moved to malicious code after review (tj-actions/changed-files, 2025).",
    remediation="""
        Pin the action to the full 40-character commit SHA of the release you reviewed, and keep the
        tag in a comment so Dependabot can update it:

            - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2
    """,
    tags=["supply-chain"],
    params={"allow_owners": []},
)
def actions_pinned(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every `uses:` of an action or reusable workflow from another repository names a full commit SHA.

    Local actions (`./path`) are exempt; owners listed in the rule's `allow_owners` parameter
    (for example `actions`) may use tags. Docker actions must be pinned by a `@sha256:` digest of 64 hex
    digits.
    slsa-github-generator's reusable workflows are called by a full release tag (`@v2.1.0`), which
    they require to build provenance; a branch or a major tag (`@v2`) is still reported.
    """
    allowed = {owner.lower() for owner in ctx.params.get("allow_owners", [])}
    source = doc.text.splitlines()

    def value_line(uses: str, key_line: int) -> int:
        """The line that holds the value: the key's, or one just below it (`uses: |`, `uses: >-`)."""
        last = min(key_line + _VALUE_LINES, len(source))
        return next((n for n in range(max(key_line, 1), last + 1) if uses in source[n - 1]), key_line)

    for written, resource, key_line in action_refs(doc.data):
        uses = written.strip()
        if is_pinned(uses) or TAG_ONLY.match(uses):
            continue
        if uses.startswith("docker://"):
            yield Violation(f"docker action {uses} is not pinned by digest", value_line(uses, key_line), resource)
            continue
        name, _, ref = uses.partition("@")
        if name.split("/", 1)[0].lower() not in allowed:
            yield Violation(f"{name} is pinned to {ref or 'nothing'!s}, not a full commit SHA",
                            value_line(uses, key_line) if uses else key_line, resource)
