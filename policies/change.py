"""Change-management policies: the change being judged, not the files it holds."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from checker.change import Change
from checker.discover import checkout_top
from checker.documents import Document
from checker.policy import Context, Violation, policy

REPO_RULESET = ".checker.yaml"


@policy(
    id="ORG-CHANGE-001",
    title="The change names its ticket",
    kinds=["repo"],
    severity="medium",
    rationale=(
        "Change control asks that every change to production be traceable to the request that approved it "
        "(reason, impact, approval); the ticket key links the gate's signed decision to that record, so the "
        "change board need not approve each change by hand. A change without one cannot be shown to have "
        "been approved."
    ),
    remediation="""
        Put the ticket key in the branch name, a commit message of the change or the pull (merge)
        request title, for example:

            git switch -c feature/PAY-1234-rotate-keys
    """,
    tags=["change-management"],
)
def change_names_ticket(doc: Document, ctx: Context) -> Iterator[Violation]:
    """When the ruleset's `change.require_ticket` is true, the change names a ticket: a key matching
    `change.ticket_pattern` (by default a Jira-style key such as `PAY-1234`; CVE-, CWE- and GHSA-style
    ids, and look-alikes such as UTF-8 or SHA-256, are never taken for tickets) in one of the
    `change.ticket_sources`: the messages of the change's commits (from the `--change-base`, else the
    base of the pull or merge request the CI names, to HEAD; HEAD alone without either), the branch
    name, and the pull or merge request title. Tickets found are recorded in the SARIF and the evidence.

    Nothing is judged when `require_ticket` is false (the default). Like every repository rule it
    does not run on files named on the command line (pre-commit), where the commit message does not
    exist yet. In a shallow clone the base may be missing: then only HEAD's message is searched and
    the scan's notes say so.

    The finding points at the line of the ruleset that sets `require_ticket` when that file is in the
    scanned folder (the reader sees why a ticket is needed); otherwise, when an organisation's layer or
    a bundled ruleset requires it, at line 1 of the repository's `.checker.yaml`.

    The ruleset's `change:` section (every key optional; later layers win key by key, and an earlier
    layer's `locks: {change: true}` forbids later layers to change any of them):

    ```yaml
    change:
      ticket_pattern: "(?<![A-Za-z0-9-])PAY-[1-9][0-9]*"   # a Python regex; the match (or group `id`) is the key
      ticket_sources: [commits, branch, pull_request]       # the default: all three
      require_ticket: true                                  # default false
    ```
    """
    change = ctx.change if isinstance(ctx.change, Change) else Change()
    if not change.ticket_required or change.tickets:
        return
    looked = ", ".join(change.looked_in) if change.looked_in else "nowhere: no commit, branch or pull request " \
        "title could be read"
    path, line = _location(change, ctx.root)
    yield Violation(f"the change names no ticket (looked in {looked}); the ruleset requires one", line,
                    "change", path=path)


def _location(change: Change, root: str) -> tuple[str, int]:
    """The ruleset line that requires a ticket, relative to the scan root, when it lies inside it."""
    file, _, line = change.required_by.rpartition(":")
    if file and line.isdigit() and not file.startswith(("bundled:", "external:")):
        real_root = os.path.realpath(root)
        top = change.toplevel or str(checkout_top(Path(real_root)) or real_root)
        target = os.path.realpath(os.path.join(top, file))
        if target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep):
            return os.path.relpath(target, real_root).replace(os.sep, "/"), max(int(line), 1)
    return REPO_RULESET, 1
