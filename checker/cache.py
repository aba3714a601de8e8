"""The result cache: what an engine computed, kept under a key of everything it depended on.

A key is the sha256 of canonical JSON of its parts, which the engine names: the exact bytes of
every input (as digests), the selected checks and their parameters, the ruleset digest, the
tool, Checkov and Python versions, and every environment variable that can change a result. An
equal key means an equal result, so a cache can save time but never change what is found.

Entries live in `<folder>/results/v1/<2 hex>/<62 hex>.json.z`: zlib-compressed JSON that holds
its own key and the sha256 of its payload. An entry is written whole or not at all (a temporary
file renamed over it), so two scans at once are safe; one that is truncated, corrupt, or under
another key is ignored, deleted and rebuilt, never trusted. Reading an entry touches it, and
`trim` evicts the least recently used entries beyond the size bound. A cache folder that cannot
be created, read or written never fails a scan: the results are computed, and one note says so.

With a secret (CHECKER_CACHE_KEY), every entry also carries an HMAC-SHA256 of its key and its
payload's digest, and an entry without a valid one is damaged. The keys are public (anyone can
compute one from the repository), so in CI, where a cache is restored from a store that other
jobs running the judged repository's code can write, only a MAC tells an entry this gate wrote
from one planted to say "no findings". The secret is not part of any key: it decides which
entries are trusted, never what they hold. Links inside the cache folder (planted in a restored
cache) are never written through, counted or evicted through.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LAYOUT = "results/v1"
ENTRY_LIMIT = 32 * 1024 * 1024  # bytes one entry may take, packed or unpacked (kubernetes-examples': 0.5 MiB)
_MAC_LABEL = b"checker result cache entries v1"  # the MAC key is the secret's HMAC of this: used for nothing else


def default_folder() -> Path:
    """`$XDG_CACHE_HOME/checker`, else `~/.cache/checker` (the XDG base directory default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "checker"


def key(*parts: Any) -> str:
    """The key of `parts` (JSON data): sha256 hex of their canonical JSON."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def holds_entries(folder: Path) -> bool:
    """Whether `folder` holds at least one entry (say, a cache restored in CI that goes unused)."""
    with contextlib.suppress(OSError):
        return next((folder / LAYOUT).glob("*/*.json.z"), None) is not None
    return False


class Cache:
    """A result cache in `folder`, bounded to `max_bytes`; `folder=None` is no cache (--no-cache).

    With `secret`, entries are signed when written and trusted only with a valid signature when
    read; only a key derived from it is kept (never the secret's text, which no note repeats).
    """

    def __init__(self, folder: Path | None, max_bytes: int = 512 * 1024 * 1024, secret: str | None = None) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.notes: list[str] = []
        self.hits = self.misses = 0
        self._mac_key = (hmac.digest(secret.encode("utf-8", "surrogateescape"), _MAC_LABEL, "sha256")
                         if secret else None)

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def get(self, entry_key: str) -> Any | None:
        """The value stored under `entry_key`, or None (absent, damaged, or no cache)."""
        path = self._path(entry_key)
        if path is None:
            return None
        try:
            with path.open("rb") as handle:
                data = handle.read(ENTRY_LIMIT + 1)
        except FileNotFoundError:
            self.misses += 1
            return None
        except OSError as error:
            self._note(f"could not be read ({error.strerror or error})")
            self.misses += 1
            return None
        value = _unpack(data, entry_key, ENTRY_LIMIT, self._mac_key)
        if value is _DAMAGED:
            with contextlib.suppress(OSError):
                path.unlink()
            self.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: trimmed last
        self.hits += 1
        return value

    def put(self, entry_key: str, value: Any) -> None:
        """Store `value` (JSON data) under `entry_key`, whole or not at all."""
        path = self._path(entry_key)
        if path is None or self.folder is None:
            return
        payload = json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")
        meta = {"key": entry_key, "sha256": hashlib.sha256(payload).hexdigest()}
        if self._mac_key is not None:
            meta["mac"] = _mac(self._mac_key, entry_key, meta["sha256"])
        body = json.dumps(meta).encode() + b"\n" + payload
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            if _through_link(self.folder, entry_key[:2]):  # before mkdir, which would follow it
                self._note("has a symbolic link in place of one of its own folders, so it was not written to")
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(zlib.compress(body, 6))
            os.replace(temporary, path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            self._note(f"could not be written ({error.strerror or error})")

    def discard(self, entry_key: str) -> None:
        """Remove the entry under `entry_key` (the engine found it is not a result of its own)."""
        path = self._path(entry_key)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

    def trim(self) -> None:
        """Evict the least recently used entries until the cache holds at most `max_bytes`.

        Only regular files in the layout's own folders count: a link planted in a restored cache
        must not make a scan count, or delete, the files of the folder it points to.
        """
        if self.folder is None or _through_link(self.folder):
            return
        entries = []
        for shard in _listing(self.folder / LAYOUT):
            if not shard.is_dir(follow_symlinks=False):
                continue
            for entry in _listing(Path(shard.path)):
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        status = entry.stat(follow_symlinks=False)
                        entries.append((status.st_mtime, status.st_size, Path(entry.path)))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size

    def _path(self, entry_key: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / LAYOUT / entry_key[:2] / f"{entry_key[2:]}.json.z"

    def _note(self, what: str) -> None:
        if not self.notes:  # one note a scan: the first thing that went wrong says enough
            self.notes.append(f"the result cache in {self.folder} {what}: results were computed, not taken from "
                              "it; --no-cache turns it off, --cache-dir moves it")


def _through_link(folder: Path, shard: str = "") -> bool:
    """Whether one of the cache's own folders in `folder` (those of LAYOUT, and `shard`) is a symbolic
    link, as one planted in a restored cache may be: what is written or evicted through it would be
    wherever it points."""
    for part in (*Path(LAYOUT).parts, *([shard] if shard else [])):
        folder = folder / part
        if folder.is_symlink():
            return True
    return False


def _listing(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of `folder`, none when it cannot be listed."""
    try:
        with os.scandir(folder) as found:
            return list(found)
    except OSError:
        return []


_DAMAGED = object()


def _mac(mac_key: bytes, entry_key: str, digest: str) -> str:
    """The MAC of an entry: HMAC-SHA256 of its key and its payload's sha256 (both fixed-length hex)."""
    return hmac.new(mac_key, f"{entry_key}\n{digest}".encode(), "sha256").hexdigest()


def _unpack(data: bytes, entry_key: str, limit: int, mac_key: bytes | None) -> Any:
    """An entry's value, or _DAMAGED when it is truncated, corrupt, stored under another key, larger
    than `limit` compressed or unpacked (a planted zlib bomb is not unpacked past it), or, with a
    `mac_key`, without a valid MAC (unsigned, forged, or signed with another secret)."""
    if len(data) > limit:
        return _DAMAGED
    try:
        inflate = zlib.decompressobj()
        body = inflate.decompress(data, limit)
        if inflate.unconsumed_tail or not inflate.eof:
            return _DAMAGED
        header, _, payload = body.partition(b"\n")
        meta = json.loads(header)
        digest = hashlib.sha256(payload).hexdigest()
        if meta.get("key") != entry_key or meta.get("sha256") != digest:
            return _DAMAGED
        if mac_key is not None:
            mac = meta.get("mac")  # compare_digest takes only ASCII text: anything else is no MAC of ours
            if not (isinstance(mac, str) and mac.isascii()
                    and hmac.compare_digest(mac, _mac(mac_key, entry_key, digest))):
                return _DAMAGED
        return json.loads(payload)
    except (zlib.error, ValueError, AttributeError, RecursionError):
        return _DAMAGED


class Digests:
    """sha256 of files under a root, each read once per scan (inputs of several keys share them)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._known: dict[str, str] = {}

    def of(self, paths: Iterable[str], again: bool = False) -> dict[str, str]:
        """path -> sha256 hex of its bytes ("unreadable" when it cannot be read). `again` reads them anew:
        a result is stored only if its inputs did not change while it was computed."""
        out = {}
        for path in paths:
            if again or path not in self._known:
                try:
                    self._known[path] = hashlib.sha256((self.root / path).read_bytes()).hexdigest()
                except OSError:
                    self._known[path] = "unreadable"
            out[path] = self._known[path]
        return out
