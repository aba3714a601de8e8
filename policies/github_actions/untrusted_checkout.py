"""ORG-GHA-002: privileged triggers that run the untrusted pull request head."""
from __future__ import annotations

import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import script_lines
from .workflow import PRIVILEGED_TRIGGERS, action_name, jobs, run_text, steps, triggers

# What checking out the head of a pull request (or of the run that triggered workflow_run) looks like.
UNTRUSTED_REF = re.compile(
    r"github\.event\.pull_request\.head\.|github\.head_ref|github\.event\.workflow_run\.head_|"
    r"github\.event\.pull_request\.merge_commit_sha|refs/pull/|github\.event\.number|"
    r"github\.event\.pull_request\.number|github\.event\.issue\.number",
    re.IGNORECASE,
)


@policy(
    id="ORG-GHA-002",
    title="Privileged triggers do not check out or run the untrusted pull request head",
    kinds=["github-actions"],
    severity="critical",
    rationale=(
        "`pull_request_target`, `workflow_run` and `issue_comment` run with the base repository's secrets "
        "and a writable token. Checking out the pull request's head and building it runs an outsider's code "
        "with them (the 'pwn request')."
    ),
    remediation="""
        Build untrusted code in a `pull_request` workflow (no secrets, read-only token). If a privileged
        follow-up is needed, pass artifacts to a `workflow_run` workflow that never executes them:

            on: pull_request
            permissions:
              contents: read
            jobs:
              test:
                runs-on: ubuntu-latest
                steps:
                  - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2
                  - run: make test
    """,
    tags=["ci-security"],
)
def no_untrusted_checkout(doc: Document, ctx: Context) -> Iterator[Violation]:
    """A workflow triggered by `pull_request_target`, `workflow_run` or `issue_comment` (which run with
    the base repository's secrets) does not check out the pull request's head (`actions/checkout` with
    a `ref` or `repository` from `github.event.pull_request.head.*`, `github.head_ref`, `refs/pull/...`
    or `github.event.workflow_run.head_*`) nor fetch it with `git` or `gh pr checkout` in a `run:` step.

    The finding points at the `ref:` (or the `run:` line) that brings the untrusted code in.
    """
    events, _ = triggers(doc.data)
    privileged = sorted(events & PRIVILEGED_TRIGGERS)
    if not privileged:
        return
    source = doc.text.splitlines()
    for job_id, job, _ in jobs(doc.data):
        for i, step in steps(job):
            resource = f"jobs.{job_id}.steps[{i}]"
            if action_name(step.get("uses")).lower() == "actions/checkout":
                with_ = step.get("with")
                if not isinstance(with_, YamlMap):
                    continue
                for key in ("ref", "repository"):
                    value = with_.get(key)
                    if isinstance(value, str) and UNTRUSTED_REF.search(value):
                        yield Violation(
                            f"{' / '.join(privileged)} workflow checks out the untrusted head ({key}: {value.strip()})",
                            with_.line_of(key), f"{resource}.with.{key}")
                        break
                continue
            run = run_text(step)
            if not run:
                continue
            pieces = run.split("\n")
            for line, piece in zip(script_lines(run, source, step.line_of("run"), step.end_line), pieces, strict=True):
                if re.search(r"\bgh\s+pr\s+checkout\b", piece) or (
                        re.search(r"\bgit\s+(?:checkout|fetch|pull|switch)\b", piece) and UNTRUSTED_REF.search(piece)):
                    yield Violation(f"{' / '.join(privileged)} workflow fetches the untrusted head in run: "
                                    f"{piece.strip()[:120]}", line, f"{resource}.run")
                    break
