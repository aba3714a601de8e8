"""`checker ledger append`, `checker ledger verify` and `checker ledger checkpoint`.

Imported by checker/cli.py at start: the database drivers, cryptography and the chain are
imported inside the commands, so `checker scan` pays nothing for them.
"""
from __future__ import annotations

import click

from checker.output import print_verdict, printable

LEDGER_OPTION = click.option(
    "--ledger", "ledger_url", metavar="URL",
    help="A SQLite file (a path, or sqlite:///ABSOLUTE/PATH) or postgresql://USER@HOST/DATABASE. Default: "
         "$CHECKER_LEDGER, else $XDG_DATA_HOME/checker/ledger.sqlite (~/.local/share/checker/ledger.sqlite).")
KEY_OPTION = click.option(
    "--key", "key_files", multiple=True, metavar="PUB", type=click.Path(dir_okay=False, path_type=str),
    help="A public key file (KEYFILE.pub, or one file of several PEM keys) whose signatures are trusted; repeatable.")


@click.group("ledger")
def ledger_group() -> None:
    """The ledger: every gated change's evidence, append-only and hash-chained.

    Each entry keeps the evidence's exact bytes, their sha256, the time appended and the previous
    entry's hash, so any edit, deletion or reordering breaks the chain; `verify` names the first
    entry that breaks. A SQLite file by default; postgresql://... for an organisation's many
    pipelines. Keep signed checkpoints outside it to detect even a rewrite of the whole table.

    \b
    Exit codes: 0 done / verified, 2 usage error (a wrong URL, a file that is
    not evidence or not a ledger), 3 the ledger does not verify or cannot be reached.
    """


@ledger_group.command("append")
@click.argument("evidence", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@LEDGER_OPTION
@KEY_OPTION
def append_command(evidence: tuple[str, ...], ledger_url: str | None, key_files: tuple[str, ...]) -> None:
    """Append EVIDENCE files (gate.intoto.jsonl) to the ledger, each as its own entry, in order.

    Every file is read and checked before the ledger is touched: one that is not evidence stops
    the command (exit 2) with nothing appended. All the files then go in ONE transaction, as
    consecutive entries: all of them or none. Appending evidence that is already in the ledger
    (the same bytes) is idempotent: it says which entry holds it and adds nothing (exit 0).

    With --key, every signature is checked first and the entry records whether it verified. Evidence
    that does not verify (unsigned, another key, altered) is still appended, so the ledger holds every
    gated change, but recorded as not verified, with a warning; the change report lists it as an
    exception. Without --key the entry records "not checked".

    \b
    Examples:
      checker ledger append gate.intoto.jsonl --key gate.pub
      checker ledger append build/*.intoto.jsonl --ledger /srv/audit/ledger.sqlite
      CHECKER_LEDGER=postgresql://ci@ledger.example.com/audit checker ledger append gate.intoto.jsonl --key gate.pub
    """
    from checker.evidence import dsse, keys, read_bounded
    from checker.ledger import chain
    from checker.ledger.open import open_store

    trusted = keys.public_keys(key_files) if key_files else None
    prepared = [chain.prepare(path, read_bounded(path, dsse.MAX_FILE_BYTES, "evidence file"), trusted)
                for path in evidence]
    store = open_store(ledger_url, create=True)
    try:
        done = chain.append_all(store, prepared)
    finally:
        store.close()
    for item in done:
        row, name = item.row, printable(item.evidence.name)
        change = printable(f"{row.decision}, {row.repository or '(no repository)'} {row.commit[:12] or '(no commit)'}")
        if not item.added:
            click.echo(f"{name}: already in the ledger as entry {row.seq} (appended {row.appended_at}); "
                       "not added again")
            continue
        status = {True: "verified", False: "NOT VERIFIED", None: "signatures not checked (no --key)"}[row.verified]
        click.echo(f"{name}: appended as entry {row.seq} ({change}; {status})")
        checked = item.evidence.signatures
        if checked is not None and not checked.verified:
            click.echo(f"checker: warning: {name}: entry {row.seq} does not verify under the --key files: "
                       f"{printable(checked.problem)}; recorded as not verified (the change report lists it)", err=True)


@ledger_group.command("verify")
@LEDGER_OPTION
@KEY_OPTION
@click.option("--checkpoint", "checkpoint_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=str),
              help="A checkpoint `checker ledger checkpoint` wrote: the ledger must still extend it (needs --key).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(ledger_url: str | None, key_files: tuple[str, ...], checkpoint_file: str | None, fmt: str) -> None:
    """Recompute every entry's hash, the chain and the columns; with --key, the signatures.

    Names the first entry that breaks (sequence, time, repository, commit) and every broken entry
    after it (the first 20). With --key, an entry whose evidence does not verify breaks too, unless
    the ledger already records it as not verified (a warning: it was flagged when appended). With
    --checkpoint, the ledger must still hold the checkpointed entries unchanged. Exit 0 verified,
    3 anything broken.

    \b
    Examples:
      checker ledger verify
      checker ledger verify --ledger /srv/audit/ledger.sqlite --key gate.pub
      checker ledger verify --key gate.pub --checkpoint checkpoints/2026-11-30.txt --format json
    """
    from dataclasses import replace

    from checker.evidence import keys
    from checker.ledger import chain, checkpoint
    from checker.ledger.open import open_store

    trusted = keys.public_keys(key_files) if key_files else {}
    checked, failure = None, ""
    if checkpoint_file is not None:
        try:
            checked = checkpoint.load(checkpoint_file, trusted)
        except checkpoint.CheckpointError as error:
            failure = str(error)
    store = open_store(ledger_url)
    try:
        report = chain.verify(store, trusted or None, checked, reopen=lambda: open_store(ledger_url))
    finally:
        store.close()
    if failure:
        report = replace(report, checkpoint=failure, checkpoint_ok=False)
    print_verdict(report, fmt)


@ledger_group.command("checkpoint")
@LEDGER_OPTION
@click.option("--signing-key", type=click.Path(dir_okay=False, path_type=str), metavar="KEYFILE",
              help="The Ed25519 private key that signs the checkpoint. Default: $CHECKER_SIGNING_KEY.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, writable=True, path_type=str),
              help="Write the checkpoint here (whole or not at all). Default: standard output.")
def checkpoint_command(ledger_url: str | None, signing_key: str | None, output: str | None) -> None:
    """Write a signed checkpoint of the ledger's head to keep outside the ledger.

    The ledger is verified first (no checkpoint of a broken chain: exit 3). Commit the checkpoint
    to a git repository or keep it as a CI artifact; later, `verify --checkpoint FILE --key PUB`
    proves the ledger still extends it, which detects even a rewrite of the whole table by someone
    with write access to the database.

    \b
    Examples:
      checker ledger checkpoint --signing-key gate.key --output checkpoints/$(date -I).txt
      CHECKER_SIGNING_KEY="$(cat gate.key)" checker ledger checkpoint --ledger "$LEDGER_URL" >> checkpoints.log
    """
    from checker import settings
    from checker.errors import ConfigError, ScanError
    from checker.evidence import keys
    from checker.ledger import chain, checkpoint
    from checker.ledger.open import open_store
    from checker.output import write_atomic

    pem = settings.current().signing_key
    if signing_key is not None:
        key = keys.read_private_key(signing_key)
    elif pem is not None:
        key = keys.private_key(pem, "CHECKER_SIGNING_KEY")
    else:
        raise ConfigError("a checkpoint must be signed: give --signing-key KEYFILE or set CHECKER_SIGNING_KEY")
    store = open_store(ledger_url)
    try:
        report = chain.verify(store, reopen=lambda: open_store(ledger_url))
    finally:
        store.close()
    if report.exit_code:
        for line in report.lines():
            click.echo(line, err=True)
        raise ScanError("the ledger does not verify, so no checkpoint was written (it would vouch for a broken chain)")
    if report.entries == 0:
        raise ConfigError(f"{printable(report.location)}: the ledger is empty: nothing to checkpoint yet")
    text = checkpoint.make(report.origin, report.entries, report.head_hash, key)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text)
        click.echo(f"wrote {printable(output)}: checkpoint of {printable(report.origin)} at entry {report.entries}; "
                   "keep it outside the ledger", err=True)
