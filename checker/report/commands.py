"""`checker report changes`: the morning report of every gated change in the ledger, exceptions first.

Imported by checker/cli.py at start: the ledger, Jinja2 and cryptography are imported inside the
command, so `checker scan` pays nothing for it. Exit codes: 0 the report was written; 1 with
--fail-on-exceptions when there is at least one exception (for a scheduled job); 2 usage (a date
that does not parse, a bad --approved-ruleset, an unknown ledger URL, a SQLite file that is not a
ledger, a bad key file); 3 the ledger could not be read.
"""
from __future__ import annotations

import datetime
import sys

import click

from checker.output import printable


@click.group("report")
def report_group() -> None:
    """Reports over the ledger of gate decisions (see `checker ledger`)."""


@report_group.command("changes")
@click.option("--ledger", "ledger_url", metavar="URL",
              help="The ledger: a SQLite file, sqlite:///PATH or postgresql://... Default: $CHECKER_LEDGER, else "
                   "the default SQLite file.")
@click.option("--since", metavar="DATE", help="First day (or RFC 3339 time) recorded: YYYY-MM-DD, "
                                              "2026-11-30T06:00:00Z, today, yesterday (UTC). Default: the first entry.")
@click.option("--until", metavar="DATE", help="Last day recorded (a day counts whole; an RFC 3339 time is "
                                              "exclusive). Default: now.")
@click.option("--environment", metavar="NAME", help="Only changes gated for this --environment.")
@click.option("--repository", metavar="URL", help="Only changes of this repository (a trailing / or .git ignored).")
@click.option("--approved-ruleset", "approved", multiple=True, metavar="NAME@sha256:HEX",
              help="A ruleset (or --base layer) approved for changes; repeatable. Given: any other is an exception.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "csv", "json"]), default="text",
              show_default=True, help="What is printed on stdout.")
@click.option("--html-output", metavar="FILE", type=click.Path(dir_okay=False, writable=True),
              help="Also write the report as one self-contained HTML file.")
@click.option("--fail-on-exceptions", is_flag=True, help="Exit 1 when the report lists any exception.")
@click.option("--key", "key_files", multiple=True, metavar="PUB", type=click.Path(dir_okay=False),
              help="A trusted public key: every entry's evidence is verified again under the keys given; "
                   "repeatable. Without: the verdict recorded at append is shown.")
def changes_command(ledger_url: str | None, since: str | None, until: str | None, environment: str | None,
                    repository: str | None, approved: tuple[str, ...], fmt: str, html_output: str | None,
                    fail_on_exceptions: bool, key_files: tuple[str, ...]) -> None:
    """Every gated change recorded in the ledger over a period: a summary, the exceptions first (failed or
    incomplete gates, no ticket, unsigned or unverified evidence, uncommitted changes, expired or
    soon-expiring waivers, rulesets outside the approved list), one row per change, and each
    compliance framework's controls with their findings.

    \b
    Examples:
      checker report changes --since yesterday --format markdown >> "$GITHUB_STEP_SUMMARY"
      checker report changes --since 2026-11-01 --until 2026-11-30 --environment production \\
          --approved-ruleset org-gate@sha256:<digest> --key gate.pub --html-output changes.html
      checker report changes --since yesterday --fail-on-exceptions
    """
    from checker.output import write_atomic
    from checker.report import changes, render

    now = datetime.datetime.now(datetime.timezone.utc)
    when = changes.period(since, until, now)
    approved_list = changes.parse_approved(approved) if approved else None
    keys = None
    if key_files:
        from checker.evidence import keys as key_module

        keys = key_module.public_keys(key_files)
    from checker.ledger.open import open_store

    store = open_store(ledger_url)
    try:
        rows = store.rows(when.since, when.until, evidence=keys is not None)  # the bytes only to verify them again
        report = changes.build(rows, when, environment=environment, repository=repository, approved=approved_list,
                               keys=keys)
    finally:
        store.close()
    if html_output:
        write_atomic(html_output, render.html(report, generated=render.when(now.replace(microsecond=0))))
    sys.stdout.write(render.render(report, fmt))
    if html_output:
        click.echo(printable(f"wrote {html_output}"), err=True)
    if fail_on_exceptions and report.has_exceptions:
        click.echo(f"checker: {report.summary.exceptions} exception(s) in the report (--fail-on-exceptions)", err=True)
        sys.exit(1)
