"""Signed checkpoints of the ledger's head, to keep outside it (a git repository, a CI artifact).

Anyone with write access to the database can rewrite the whole table and recompute every hash
consistently: the chain alone cannot show that. A checkpoint can: it is a note, signed with the
gate's Ed25519 key, saying "the ledger ORIGIN had SIZE entries and entry SIZE's hash was ROOT".
`checker ledger verify --checkpoint FILE --key PUB` checks the signature, then that this ledger has
the same origin, at least SIZE entries, entry SIZE has that very hash, and the chain from entry 1
verifies; since every entry's hash covers the previous one's, that proves entries 1..SIZE are the
ones checkpointed, so a rewrite of anything up to there is exit 3.

The format follows C2SP's tlog-checkpoint and signed-note (https://c2sp.org/tlog-checkpoint):

    <origin>\\n
    <size, decimal>\\n
    <root hash: entry SIZE's entry_hash, 32 bytes in standard base64>\\n
    \\n
    \\u2014 <key id> <base64(first 4 bytes of the key id || Ed25519 signature of the three lines above)>\\n

The key id is checker.evidence.keys.key_id (sha256 of the public key's DER, hex), the name the
evidence's signatures use too, so one `--key` file verifies both. Unlike a Merkle-tree log the
root is a chain head, so a checkpoint proves "extends", not inclusion of one entry.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from checker.errors import ConfigError, ScanError
from checker.evidence import read_bounded
from checker.output import printable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

DASH = "\u2014"
MAX_BYTES = 64 * 1024
SIGNATURE_LINE = re.compile(f"{DASH} (?P<name>[^ \n+]+) (?P<sig>[A-Za-z0-9+/=]+)")
HEX64 = re.compile(r"[0-9a-f]{64}")


class CheckpointError(ScanError):
    """A checkpoint that does not verify: unreadable as one, or not signed by a trusted key (exit 3)."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint whose signature verified under `keyid`."""

    origin: str
    size: int
    root_hex: str
    keyid: str


def body(origin: str, size: int, root_hex: str) -> str:
    """The signed text: origin, size, root hash in base64, each on its line."""
    return f"{origin}\n{size}\n{base64.b64encode(bytes.fromhex(root_hex)).decode('ascii')}\n"


def make(origin: str, size: int, root_hex: str, key: Ed25519PrivateKey) -> str:
    """The checkpoint text for entry `size` with hash `root_hex`, signed by `key`."""
    from checker.evidence.keys import key_id

    if size < 1 or not HEX64.fullmatch(root_hex):
        raise ValueError("a checkpoint needs a size of at least 1 and a sha256 hex root")
    if "\n" in origin or not origin:
        raise ValueError(f"origin {origin!r}: one non-empty line")
    text = body(origin, size, root_hex)
    keyid = key_id(key.public_key())
    signature = key.sign(text.encode("utf-8"))
    blob = base64.b64encode(bytes.fromhex(keyid)[:4] + signature).decode("ascii")
    return f"{text}\n{DASH} {keyid} {blob}\n"


def load(path: str | os.PathLike[str], keys: Mapping[str, Ed25519PublicKey]) -> Checkpoint:
    """The checkpoint in file `path`, its signature verified under one of `keys` (keyid -> key).

    A missing or unreadable file: ConfigError (2). A file that is not a checkpoint or carries no
    signature that verifies under a given key: CheckpointError (3), naming which.
    """
    if not keys:
        raise ConfigError("--checkpoint needs --key PUB: a checkpoint proves something only under a key you trust")
    data = read_bounded(path, MAX_BYTES, "checkpoint file")
    where = printable(os.fspath(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{where}: not UTF-8 text, so not a checkpoint") from None
    if len(data) > MAX_BYTES or "\n\n" not in text:
        raise CheckpointError(f"{where}: not a checkpoint (origin, size and root hash lines, a blank line, then "
                              "signature lines); `checker ledger checkpoint` writes one")
    note, _, signatures = text.partition("\n\n")
    note += "\n"
    lines = note.split("\n")[:-1]
    if len(lines) < 3 or not re.fullmatch(r"[1-9][0-9]{0,18}", lines[1]):
        raise CheckpointError(f"{where}: not a checkpoint: the second line must be the size (a whole number)")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except (binascii.Error, ValueError):
        root = b""
    if len(root) != 32:
        raise CheckpointError(f"{where}: not a checkpoint: the third line must be a sha256 hash in base64")
    from cryptography.exceptions import InvalidSignature

    message = note.encode("utf-8")
    seen: list[str] = []
    for line in signatures.splitlines():
        match = SIGNATURE_LINE.fullmatch(line)
        if not match:
            continue  # C2SP: unknown lines among the signatures are ignored
        try:
            blob = base64.b64decode(match["sig"], validate=True)
        except (binascii.Error, ValueError):
            continue
        seen.append(match["name"])
        for keyid, key in keys.items():
            if blob[:4] != bytes.fromhex(keyid)[:4]:
                continue
            try:
                key.verify(blob[4:], message)
            except InvalidSignature:
                continue
            return Checkpoint(lines[0], int(lines[1]), root.hex(), keyid)
    if not seen:
        raise CheckpointError(f"{where}: the checkpoint carries no signature line")
    raise CheckpointError(f"{where}: the checkpoint's signature does not verify under the --key files given "
                          f"(signed by {printable(', '.join(seen))}; altered, or another key)")
