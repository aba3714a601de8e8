"""DSSE envelopes: sign a payload, read a JSON Lines file of them, and check their signatures.

DSSE (Dead Simple Signing Envelope) signs PAE(payloadType, payload), never the JSON around it, so
the envelope can be re-serialised freely and the payload type cannot be swapped. The envelope is
`{"payloadType", "payload": base64, "signatures": [{"keyid", "sig": base64}]}`; `keyid` is only a
hint (it is not signed), so a signature whose keyid names no trusted key is still tried against
every trusted key before it is called unknown.

What a bad file costs, and why:
- a path that does not exist or is a folder: ConfigError (exit 2). Nothing was checked; the
  command line names the wrong file, as with any other missing argument.
- a file that exists but is not evidence (empty, larger than MAX_FILE_BYTES, a line that is not
  UTF-8, not JSON, not an object, a DSSE field missing or of the wrong type, base64 that does not
  decode, a payloadType other than in-toto's): EvidenceError (exit 3, "anything that does not
  verify"), naming the file and the line. A deploy job must treat a damaged record exactly like a
  forged one.

We write PAE ourselves (one line of the DSSE spec) rather than import securesystemslib, whose
import pulls boto3 here and costs more than the whole evidence budget.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from checker.errors import ScanError
from checker.evidence import PAYLOAD_TYPE, read_bounded

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

MAX_FILE_BYTES = 16 * 1024 * 1024  # our evidence is a few KiB; a bound keeps a hostile file from exhausting memory
MAX_SIGNATURES = 32  # one a key; a bound keeps a hostile file from costing (signatures x keys) verifications


class EvidenceError(ScanError):
    """An evidence file that cannot be read as evidence: it does not verify (exit 3)."""


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """One DSSE envelope as read: its line in the file, the decoded payload and signatures."""

    line: int
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]


@dataclass(frozen=True)
class SignatureCheck:
    """What the signatures of one envelope prove: `keyid` of the trusted key that signed it, or `problem`."""

    keyid: str = ""
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: `DSSEv1 SP LEN(type) SP type SP LEN(body) SP body`.

    LEN is the byte length in ASCII decimal; the type is UTF-8. The lengths make the encoding
    unambiguous: no (type, body) pair encodes like another.
    """
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(body), body)


def sign(payload: bytes, key: Ed25519PrivateKey | None, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
    """A DSSE envelope of `payload`, signed by `key` (Ed25519 over the PAE); with no key, `signatures: []`."""
    signatures: list[dict[str, str]] = []
    if key is not None:
        from checker.evidence.keys import key_id

        signature = key.sign(pae(payload_type, payload))
        signatures.append({"keyid": key_id(key.public_key()), "sig": base64.b64encode(signature).decode("ascii")})
    return {"payloadType": payload_type, "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": signatures}


def check(envelope: Envelope, keys: Mapping[str, Ed25519PublicKey]) -> SignatureCheck:
    """Whether at least one signature of `envelope` verifies under one of `keys` (keyid -> key).

    A signature is tried against the key its keyid names, then (keyid being an unsigned hint)
    against every other trusted key. When none verifies, the problem says the most useful thing:
    a trusted key's signature that fails means the payload changed after signing.
    """
    from cryptography.exceptions import InvalidSignature

    if not envelope.signatures:
        return SignatureCheck(problem="unsigned: the envelope carries no signature (was a signing key given "
                                      "to the scan?)")
    message = pae(envelope.payload_type, envelope.payload)
    named_trusted = False
    unknown: list[str] = []
    for signature in envelope.signatures:
        first = [signature.keyid] if signature.keyid in keys else []
        named_trusted = named_trusted or bool(first)
        for keyid in first + [k for k in keys if k != signature.keyid]:
            try:
                keys[keyid].verify(signature.sig, message)
            except InvalidSignature:
                continue
            return SignatureCheck(keyid=keyid)
        if not first:
            unknown.append(signature.keyid[:80] or "(no keyid)")  # the file's text: bounded
    if named_trusted:
        return SignatureCheck(problem="signature does not verify: the payload was altered or signed by another key")
    shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
    return SignatureCheck(problem=f"signed by an unknown key {shown}: not one of the --key files given")


def read(path: str | os.PathLike[str]) -> list[Envelope]:
    """Every envelope of the JSON Lines evidence file `path`, in order; see the module docstring for errors."""
    return parse(_read_bounded(path), path)


def parse(data: bytes, name: str | os.PathLike[str]) -> list[Envelope]:
    """Every envelope of evidence bytes (a file's, or a ledger entry's), in order; errors name `name` and the line."""
    envelopes: list[Envelope] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        envelopes.append(_envelope(name, number, raw))
    if not envelopes:
        raise EvidenceError(f"{name}: empty: no DSSE envelope in it (was the evidence written?)")
    return envelopes


def _read_bounded(path: str | os.PathLike[str]) -> bytes:
    data = read_bounded(path, MAX_FILE_BYTES, "evidence file")
    if len(data) > MAX_FILE_BYTES:
        raise EvidenceError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, so not evidence "
                            "checker wrote (a few KiB)")
    return data


def _envelope(path: str | os.PathLike[str], number: int, raw: bytes) -> Envelope:
    where = f"{path}:{number}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EvidenceError(f"{where}: not UTF-8 text, so not a DSSE envelope") from None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, and an integer too long to convert
        raise EvidenceError(f"{where}: not JSON; each line of an evidence file is one DSSE envelope") from None
    if not isinstance(document, dict):
        raise EvidenceError(f"{where}: a JSON {_json_kind(document)}, not a DSSE envelope (an object with "
                            "payloadType, payload and signatures)")
    for field, kind in (("payloadType", str), ("payload", str), ("signatures", list)):
        if field not in document:
            raise EvidenceError(f"{where}: not a DSSE envelope: no {field!r}")
        if not isinstance(document[field], kind):
            raise EvidenceError(f"{where}: not a DSSE envelope: {field!r} is a {_json_kind(document[field])}")
    if document["payloadType"] != PAYLOAD_TYPE:
        raise EvidenceError(f"{where}: unknown payloadType {document['payloadType']!r}; checker evidence is "
                            f"{PAYLOAD_TYPE!r}")
    payload = _base64(document["payload"], f"{where}: payload")
    if len(document["signatures"]) > MAX_SIGNATURES:
        raise EvidenceError(f"{where}: {len(document['signatures'])} signatures; evidence carries at most "
                            f"{MAX_SIGNATURES} (one a signing key)")
    signatures = []
    for index, entry in enumerate(document["signatures"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("sig"), str):
            raise EvidenceError(f"{where}: signatures[{index}] is not an object with a 'sig' string")
        keyid = entry.get("keyid", "")
        if not isinstance(keyid, str):
            raise EvidenceError(f"{where}: signatures[{index}].keyid is a {_json_kind(keyid)}, not a string")
        signatures.append(Signature(keyid, _base64(entry["sig"], f"{where}: signatures[{index}].sig")))
    return Envelope(number, document["payloadType"], payload, tuple(signatures))


def _base64(text: str, what: str) -> bytes:
    """Standard or URL-safe base64 (DSSE allows both), padding optional; EvidenceError naming `what`."""
    cleaned = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EvidenceError(f"{what}: not valid base64") from None


def _json_kind(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)
