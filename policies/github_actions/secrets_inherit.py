"""ORG-GHA-015: reusable workflows handed every secret of the caller."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document
from checker.policy import Context, Violation, policy

from .workflow import jobs


@policy(
    id="ORG-GHA-015",
    title="Reusable workflows receive only the secrets they need",
    kinds=["github-actions"],
    severity="medium",
    rationale=(
        "`secrets: inherit` gives the called workflow every secret of the repository, organisation and "
        "environment, now and whenever one is added: nobody can say from the caller which secrets it used, "
        "and a compromised or retagged reusable workflow takes them all."
    ),
    remediation="""
        Forward each secret the reusable workflow declares, by name:

            jobs:
              release:
                uses: example/workflows/.github/workflows/release.yml@0123456789abcdef0123456789abcdef01234567
                secrets:
                  registry-token: ${{ secrets.REGISTRY_TOKEN }}
    """,
    tags=["ci-security", "secrets", "least-privilege"],
)
def secrets_not_inherited(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No job that calls a reusable workflow (`uses:` at job level) passes `secrets: inherit`.

    An explicit `secrets:` mapping (even an empty one) is what the rule asks for. The finding points at the
    `secrets:` line.
    """
    for job_id, job, _ in jobs(doc.data):
        secrets = job.get("secrets")
        if isinstance(job.get("uses"), str) and isinstance(secrets, str) and secrets.strip() == "inherit":
            yield Violation(f"job {job_id} passes every secret to {job['uses'].strip()} (secrets: inherit); pass "
                            "the secrets it declares by name",
                            job.line_of("secrets"), f"jobs.{job_id}.secrets")
