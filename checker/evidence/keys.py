"""Ed25519 keys for evidence: generate a pair, load a signing key, load the keys a verifier trusts.

Why Ed25519: small keys, deterministic signatures (no random number to get wrong in CI), one
algorithm with no parameters to choose, and `openssl` reads the files. Private keys are PKCS#8 PEM
without a password (a CI secret holds the text; a password would sit beside it), public keys are
SubjectPublicKeyInfo PEM.

A private key is a secret: no message here ever repeats any of its text, and errors are raised
`from None` so that no traceback carries the parser's view of it either. Every error is a
ConfigError (exit 2): a bad key is a setup problem, not a verdict about any evidence.

`cryptography` is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from checker.errors import ConfigError
from checker.evidence import read_bounded

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

MAX_KEY_BYTES = 64 * 1024  # an Ed25519 PEM is ~120 bytes; anything this large is not a key file
ENVIRONMENT = "CHECKER_SIGNING_KEY"


def generate(path: Path) -> tuple[Path, Path]:
    """Write a new key pair: `path` (private, PKCS#8 PEM, mode 0600) and `path`.pub; returns both paths.

    Never overwrites: if either file exists, nothing is written (ConfigError naming it). The
    private key is created with O_EXCL and mode 0600 from the start, so there is no moment at which
    another user could read it; if writing the public key fails, the new private key is removed.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    public_path = path.with_name(path.name + ".pub")
    for target in (path, public_path):
        if os.path.lexists(target):
            raise ConfigError(f"{target} already exists: keygen never overwrites a key (a lost private key "
                              "cannot sign, a replaced one breaks every deploy job that trusts the old .pub); "
                              "choose another name, or move the old file away yourself")
    if not path.parent.is_dir():
        raise ConfigError(f"{path.parent}: no such folder to write the key into")
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    _create(path, private_pem, 0o600)
    try:
        _create(public_path, public_pem, 0o644)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return path, public_path


def _create(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to a file that must not exist yet, created with `mode` (under the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise ConfigError(f"{path} already exists: keygen never overwrites a key") from None
    except OSError as error:
        raise ConfigError(f"{path}: could not create the key file: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise ConfigError(f"{path}: could not write the key file: {error.strerror or error}") from None


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a key file (bounded); ConfigError naming the file when it is missing or unreadable."""
    data = read_bounded(path, MAX_KEY_BYTES, "key file")
    if len(data) > MAX_KEY_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_KEY_BYTES // 1024} KiB, so not a key file")
    return data


def read_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The signing key in the file `path` (--signing-key FILE); see `private_key`."""
    return private_key(read_key_file(path), str(path))


def private_key(pem: bytes | str, origin: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in `pem`; ConfigError naming `origin` (a file or CHECKER_SIGNING_KEY), never the text.

    Refused: no PEM at all, a public key (sign with the private key, give the .pub to verifiers),
    an encrypted key (a CI secret holds the key unencrypted: the secret store is the protection),
    an RSA or EC key (evidence is Ed25519 only), and anything the PEM parser cannot read.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = pem.encode("utf-8", "surrogateescape") if isinstance(pem, str) else bytes(pem)
    hint = "`checker evidence keygen KEYFILE` writes one"
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{origin}: holds no PEM key (-----BEGIN PRIVATE KEY-----...); {hint}")
    if b"-----BEGIN PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise ConfigError(f"{origin}: is a public key; evidence is signed with the private key (KEYFILE), "
                          "and its KEYFILE.pub is what verifiers are given")
    if data.count(b"-----BEGIN ") > 1:
        raise ConfigError(f"{origin}: holds more than one PEM block; give exactly one private key (which one signs "
                          "must never be a guess)")
    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data:
        raise ConfigError(f"{origin}: the private key is encrypted with a password; the signing key must be "
                          "unencrypted PKCS#8 PEM kept in a CI secret (" + hint + ")")
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError:  # a password-protected key in a legacy PEM format
        raise ConfigError(f"{origin}: the private key is encrypted with a password; the signing key must be "
                          "unencrypted PKCS#8 PEM kept in a CI secret (" + hint + ")") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{origin}: not a readable PEM private key (malformed or truncated); {hint}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{origin}: is {_kind(key)} key; evidence is signed with Ed25519 only ({hint})")
    return key


PUBLIC_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.DOTALL)


def public_keys(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 public keys in the files `paths`, by key id; ConfigError naming the first bad file.

    A file may hold several PEM public keys one after another (a keyring: during a rotation the
    old and the new key), so a CI variable holding them all is one `--key`.
    A private key given where a public key is expected is refused, not reduced to its public
    half: the file a deploy job holds must be the .pub, or the signing secret has leaked to every
    job that verifies.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    found: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        data = read_key_file(path)
        if b"PRIVATE KEY-----" in data:
            raise ConfigError(f"{path}: is a private key; give the public key (KEYFILE.pub) instead. A private key "
                              "must never travel to deploy jobs: anyone holding it can sign evidence")
        blocks = PUBLIC_BLOCK.findall(data)
        if not blocks:
            raise ConfigError(f"{path}: holds no PEM public key (-----BEGIN PUBLIC KEY-----...); give the "
                              "KEYFILE.pub that `checker evidence keygen KEYFILE` wrote")
        for number, block in enumerate(blocks, 1):
            which = f"{path}" if len(blocks) == 1 else f"{path} (key {number} of {len(blocks)})"
            try:
                key = load_pem_public_key(block)
            except (ValueError, UnsupportedAlgorithm):
                raise ConfigError(f"{which}: not a readable PEM public key (malformed or truncated)") from None
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError(f"{which}: is {_kind(key)} public key; evidence is signed with Ed25519 only")
            found[key_id(key)] = key
    return found


def key_id(public: Ed25519PublicKey) -> str:
    """sha256 (hex) of the key's DER SubjectPublicKeyInfo: `openssl pkey -pubin -outform DER | sha256sum`."""
    from cryptography.hazmat.primitives import serialization

    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _kind(key: object) -> str:
    """'an RSA', 'an EC', ... for messages: the algorithm, never anything of the key itself."""
    name = type(key).__name__.replace("PrivateKey", "").replace("PublicKey", "").lstrip("_")
    name = {"EllipticCurve": "EC", "Ed448": "Ed448", "X25519": "X25519", "X448": "X448", "DSA": "DSA",
            "RSA": "RSA"}.get(name, name or "another kind of")
    return ("an " if name[:1].upper() in "AEIOUFHLMNRSX" else "a ") + name
