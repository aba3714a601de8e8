"""Which ledger a command means: `--ledger URL`, else $CHECKER_LEDGER, else the default SQLite file.

Accepted forms:
- a plain path (`ledger.sqlite`, `/srv/audit/ledger.sqlite`): a SQLite file;
- `sqlite:///abs/path` (absolute) or `sqlite:relative/path`: a SQLite file;
- `postgresql://...` or `postgres://...`: PostgreSQL (psycopg, imported only then);
- anything else with a scheme (`mysql://...`): a ConfigError (exit 2) naming the scheme, never the
  rest (a URL may hold a password).
The default file is `$XDG_DATA_HOME/checker/ledger.sqlite` (`~/.local/share/checker/ledger.sqlite`
when XDG_DATA_HOME is unset); its folders are created on the first append.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from checker import settings
from checker.errors import ConfigError
from checker.ledger.row import Store

SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


def default_path() -> Path:
    """Where the ledger lives when nothing names one (XDG Base Directory: user data)."""
    data = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data) if data and os.path.isabs(data) else Path.home() / ".local" / "share"
    return base / "checker" / "ledger.sqlite"


def configured() -> str | None:
    """$CHECKER_LEDGER as checker.settings read it, or None."""
    return getattr(settings.current(), "ledger", None)


def open_store(url: str | None = None, *, create: bool = False) -> Store:
    """The ledger `url` names (None: $CHECKER_LEDGER, else the default file); see the module docstring.

    `create`: a SQLite file that does not exist yet becomes a new, empty ledger (`append` asks for
    this; `verify`, `checkpoint` and the report do not: a wrong path must not look like an empty,
    perfectly verified ledger).
    """
    from checker.ledger.sqlite import SqliteStore

    origin = "--ledger"
    if url is None:
        url = configured()
        origin = "CHECKER_LEDGER"
        if url is None:
            return SqliteStore(default_path(), create=create, make_parents=True)
    if not url.strip():
        raise ConfigError(f"{origin} is empty: give a SQLite file or a postgresql:// URL")
    match = SCHEME.match(url)
    scheme = match["scheme"].lower() if match else ""
    if scheme in ("postgresql", "postgres"):
        return _postgres(url, create)
    if scheme == "sqlite":
        path = url[len("sqlite://"):]
        if not path.startswith("/"):
            raise ConfigError(f"{origin}: write sqlite:///ABSOLUTE/PATH (three slashes) or sqlite:RELATIVE/PATH; "
                              "a SQLite ledger has no host")
        return SqliteStore(path, create=create)
    if match:
        raise ConfigError(f"{origin}: unknown ledger URL scheme {scheme!r}; give a SQLite file (a path, "
                          "sqlite:///ABSOLUTE/PATH) or postgresql://USER@HOST/DATABASE")
    if url.lower().startswith("sqlite:"):
        return SqliteStore(url[len("sqlite:"):], create=create)
    return SqliteStore(url, create=create)


def _postgres(url: str, create: bool) -> Store:
    """The PostgreSQL store; a URL whose password holds a raw `/` or `@` is refused unrepeated: it
    would split in the wrong place, and a piece of the password would end up in a message."""
    rest = url.split("://", 1)[1].split("?", 1)[0]
    if rest.count("@") > 1 or ("@" in rest.split("/", 1)[-1] and "/" in rest.split("@", 1)[0]):
        raise ConfigError("the postgresql:// URL has a user part that does not parse (a password holding / or @?): "
                          "percent-encode it (%2F for /, %40 for @), or leave it out and set PGPASSWORD")
    try:
        from checker.ledger import postgres
    except ModuleNotFoundError as error:
        if (error.name or "").startswith("checker"):
            raise ConfigError("PostgreSQL ledgers are not in this build of checker; use a SQLite file") from None
        raise ConfigError(f"a PostgreSQL ledger needs {error.name or 'psycopg'}, which is not installed here "
                          "(pip install 'psycopg[binary]'), or use a SQLite file") from None
    return postgres.open_postgres(url, create=create)
