"""Signed evidence of a gate decision: what a deploy job and an auditor check, offline.

The evidence file (`gate.intoto.jsonl`) is JSON Lines: one DSSE envelope a line, each line compact
JSON with sorted keys, the file ending in a newline. Every envelope has payloadType
`application/vnd.in-toto+json` and carries an in-toto Statement v1; the signatures are Ed25519 over
DSSE's pre-authentication encoding (PAE) of the payload type and the payload bytes, so neither can be
changed without breaking them. Each signature names its key by key id: the sha256 (hex) of the
public key's DER SubjectPublicKeyInfo, which anyone can recompute with
`openssl pkey -pubin -in KEY.pub -outform DER | sha256sum`.

Line 1 is the gate decision, predicate type `PREDICATE_TYPE` (its JSON Schema ships beside this
file as gate-decision.schema.json): the verdict, the counts, the blocking findings, the waivers and
suppressions, the ruleset with each layer's digest, the tools, the times and the change (commit,
branch, tickets, CI). Line 2 is a SLSA Verification Summary Attestation v1 derived from it, for
tools that understand only SLSA. Both name the same subjects: the git commit (`gitCommit`, left out
when the working tree had uncommitted changes: such a scan is not evidence for the commit), the
SARIF file written (sha256 of its bytes) and every `--subject` (e.g. the image to deploy).

Without a signing key the envelopes carry no signature, and `checker evidence verify` refuses them:
an unsigned record proves nothing about who made it.

Nothing here imports `cryptography`, `in_toto_attestation` or `jsonschema` at module level: the CLI
imports `checker.evidence.commands` at start, and a scan that writes no evidence pays nothing.
"""
from __future__ import annotations

import os

from checker.errors import ConfigError

PREDICATE_TYPE = "https://github.com/paved-road/checker/gate-decision/v1"
VSA_TYPE = "https://slsa.dev/verification_summary/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
VERIFIER_ID = "https://github.com/paved-road/checker"

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "VERIFIER_ID", "VSA_TYPE", "read_bounded"]


def read_bounded(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """At most `limit` + 1 bytes of a key or evidence file (the caller says what more than `limit`
    means); a missing or unreadable file is a usage error (exit 2) naming it as `what`.

    A "path" that is key text (`--signing-key "$CHECKER_SIGNING_KEY"`) is refused without repeating it."""
    text = os.fsdecode(path)
    if "-----BEGIN" in text or "\n" in text or len(text) > 4096:
        raise ConfigError(f"the {what} given is not a file path (it looks like key text, which is never printed); "
                          "give the file's path, or put the key's text in CHECKER_SIGNING_KEY")
    try:
        with open(path, "rb") as handle:
            return handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what}") from None
    except OSError as error:
        raise ConfigError(f"{path}: could not read the {what}: {error.strerror or error}") from None
