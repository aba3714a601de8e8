"""Repository-level policies: they look at which files the repository holds."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document
from checker.policy import Context, Violation, policy

CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS")


@policy(
    id="ORG-REPO-001",
    title="The repository has a CODEOWNERS file",
    kinds=["repo"],
    severity="medium",
    rationale="Code owners make review by the accountable team a rule of the branch, not a habit.",
    remediation="""
        Create `.github/CODEOWNERS` that names an owning team for the whole tree, and require code-owner
        review on the default branch:

            *  @example-org/payments-team
    """,
    controls=["PCI-DSS-4.0:6.2.3", "PCI-DSS-4.0:6.5.1"],
    tags=["governance"],
)
def codeowners_present(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The repository holds a CODEOWNERS file where GitHub or GitLab reads it
    (`.github/`, the root, `docs/` or `.gitlab/`).

    The finding points at `.github/CODEOWNERS`, line 1: where the file should be created.
    """
    if not any(path in doc.data for path in CODEOWNERS_PATHS):
        yield Violation("the repository has no CODEOWNERS file", 1, "repository", path=CODEOWNERS_PATHS[0])
