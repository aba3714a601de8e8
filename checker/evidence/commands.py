"""`checker evidence keygen` and `checker evidence verify`.

Imported by checker/cli.py at start: everything heavy (cryptography, in-toto, jsonschema) is
imported inside the commands, so `checker scan` pays nothing for them.
"""
from __future__ import annotations

import re
from pathlib import Path

import click

from checker.output import print_verdict, printable

SUBJECT_DIGEST = re.compile(r"sha256:[0-9a-fA-F]{64}")


def _subject(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not SUBJECT_DIGEST.fullmatch(value):
        raise click.BadParameter("write sha256:<64 hex digits>, the digest of the artifact (e.g. the image to "
                                 "deploy, as given to `checker scan --subject NAME=sha256:HEX`)")
    return value


@click.group("evidence")
def evidence_group() -> None:
    """Signed evidence of gate decisions: make a signing key, verify evidence before deploying.

    \b
    Exit codes of verify: 0 verified, 1 verified but the recorded gate did not pass
    (with --require-pass), 2 usage error, 3 the evidence does not verify.
    """


@evidence_group.command("keygen")
@click.argument("keyfile", type=click.Path(dir_okay=False, path_type=Path))
def keygen_command(keyfile: Path) -> None:
    """Write a new Ed25519 key pair: KEYFILE (private, PKCS#8 PEM, mode 0600) and KEYFILE.pub.

    Never overwrites either file (exit 2). Put KEYFILE's text in a CI secret read by the gate
    job as CHECKER_SIGNING_KEY, then delete KEYFILE; give KEYFILE.pub to the jobs that verify.

    \b
    Examples:
      checker evidence keygen gate-2025.key
      gh secret set CHECKER_SIGNING_KEY < gate-2025.key && rm gate-2025.key
    """
    from checker.evidence import keys

    private, public = keys.generate(keyfile)
    loaded = keys.public_keys([public])
    click.echo(printable(f"wrote {private} (private: keep it secret, e.g. in a CI secret) and {public} "
                         f"(public: give it to `checker evidence verify --key`)"))
    click.echo(f"key id: {next(iter(loaded))}")


@evidence_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--key", "key_files", multiple=True, required=True, metavar="PUB",
              type=click.Path(dir_okay=False, path_type=str),
              help="A public key file (KEYFILE.pub, or one file of several PEM keys) whose signatures are accepted; "
                   "repeatable (e.g. during a key rotation).")
@click.option("--sarif", type=click.Path(dir_okay=False, path_type=str),
              help="The SARIF file the decision must have been made on (compared by sha256 of its bytes).")
@click.option("--commit", metavar="SHA",
              help="The commit the decision must be for: its full id; the scan must have been of the whole, "
                   "clean tree.")
@click.option("--subject", metavar="sha256:HEX", callback=_subject,
              help="An artifact the decision must name, e.g. the image about to be deployed.")
@click.option("--ruleset", metavar="NAME[@sha256:HEX]",
              help="The ruleset (or --base layer) the decision must have been made under, optionally by digest.")
@click.option("--environment", metavar="NAME",
              help="The environment the decision must have been made for (as `--environment` of the scan).")
@click.option("--require-pass", is_flag=True,
              help="Exit 1 when the evidence verifies but the gate did not pass (or passed at a threshold laxer than "
                   "the ruleset's locks.fail_on).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(file: str, key_files: tuple[str, ...], sarif: str | None, commit: str | None,
                   subject: str | None, ruleset: str | None, environment: str | None, require_pass: bool,
                   fmt: str) -> None:
    """Verify evidence FILE offline: signatures, statements, and what you ask it to prove.

    Every envelope must be signed by one of the --key files; the gate decision and the SLSA VSA
    must agree and name the same subjects. Exit 0 verified, 1 verified but the recorded gate did
    not pass (with --require-pass), 3 anything that does not verify, naming what.

    \b
    Examples:
      checker evidence verify gate.intoto.jsonl --key gate.pub
      checker evidence verify gate.intoto.jsonl --key gate-2025.pub --key gate-2026.pub \\
          --sarif results.sarif --commit "$CI_COMMIT_SHA" --require-pass
      checker evidence verify gate.intoto.jsonl --key gate.pub --ruleset org-gate@sha256:<digest> \\
          --subject sha256:<image digest> --format json
    """
    from checker.evidence import keys, verify

    trusted = keys.public_keys(key_files)
    report = verify.verify(file, trusted, sarif=sarif, commit=commit, subject=subject, ruleset=ruleset,
                           require_pass=require_pass, environment=environment)
    print_verdict(report, fmt)
