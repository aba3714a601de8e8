"""Outputs that cannot lie: text from scanned content made inert, and report files written whole.

A resource name, a file name or a message comes from the repository being judged. Printed raw,
a newline in it starts a line of its own ("gate PASSED" under a failing gate), an ESC sequence
recolours or rewrites the terminal, and a bidi override reverses what a reviewer reads.
`printable` turns every such character into a visible escape, the way `repr` would, and leaves
all other text (accents, CJK, emoji) as it is.

A report file is the evidence of a scan: a crash or a full disk half-way through writing must
leave the previous file, never half a SARIF. `write_atomic` writes a temporary file beside the
target and renames it over the target only once it is complete and on disk.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
import sys
from pathlib import Path
from typing import Any, NoReturn

from checker.errors import ScanError

# C0 controls (\n \r \t ESC ...), DEL and the C1 controls (NEL, CSI ...); the Arabic letter mark;
# left-to-right / right-to-left marks; line and paragraph separators; bidi embeddings, overrides
# and isolates; lone surrogates (a file name that is not UTF-8), which no UTF-8 output can carry.
# INVISIBLE: those but the C0 controls (which JSON always escapes), as a regex character-class body.
INVISIBLE = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x1f{INVISIBLE}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def printable(text: str) -> str:
    """`text` with every character that could alter a terminal or forge a line shown as an escape.

    \\n, \\r and \\t keep their usual names; other controls become \\xHH, the rest \\uHHHH.
    Text without any (nearly all of it) comes back as the same object.
    """
    return _UNSAFE.sub(_escape, text)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` whole or not at all; a ScanError (exit 3) naming it if it cannot be.

    The temporary file lives in the target's folder (a rename across file systems is not atomic),
    is flushed and fsynced, then renamed over the target; on any error it is removed and the
    previous file is left as it was. The new file keeps the mode of the file it replaces, or gets
    the default mode under the umask. A symbolic link is written through (the file it names is
    replaced, the link stays); a target that is not a regular file (/dev/stdout, a FIFO) cannot be
    replaced and is written to directly.
    """
    try:
        _write(path, text)
    except OSError as error:
        raise ScanError(f"{path}: could not write the report: {error.strerror or error}; any previous file "
                        "there is unchanged. Free space or choose another path, then scan again") from None


def _write(path: str | os.PathLike[str], text: str) -> None:
    """write_atomic's work; OSErrors go up to become one message naming the file."""
    try:
        existing = os.stat(path).st_mode
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing):
        Path(path).write_text(text, encoding="utf-8")
        return
    target = Path(os.path.realpath(path))
    fd, temporary = _create_beside(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if existing is not None:
                os.fchmod(handle.fileno(), stat.S_IMODE(existing))
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _create_beside(target: Path) -> tuple[int, Path]:
    """A new temporary file in the target's folder, never an existing one: (descriptor, path).

    Opened with mode 0o666 so the kernel applies the umask: a new report gets the same mode
    `open()` would give it, without changing the process umask (other threads may be running).
    The name is hidden, random (64 bits) and short enough for any file system's name limit.
    """
    temporary = target.with_name(f".{target.name[:200]}.{secrets.token_hex(8)}.tmp")
    return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), temporary


def print_verdict(report: Any, fmt: str) -> NoReturn:
    """A verification's report (`as_dict()`, `lines()`, `exit_code`: `evidence verify`, `ledger verify`)
    on standard output as JSON or as its lines, then its exit code."""
    text = json.dumps(report.as_dict(), indent=2, sort_keys=True) if fmt == "json" else "\n".join(report.lines())
    sys.stdout.write(text + "\n")
    sys.exit(report.exit_code)
