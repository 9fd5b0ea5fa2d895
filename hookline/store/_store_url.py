"""Store URLs: which backend a ``store.url`` names, checked before anything opens.

``sqlite:///relative.db``, ``sqlite:////absolute.db`` (options:
``?synchronous=NORMAL&readers=8``), ``postgresql://user:secret@host/db`` (options:
``?readers=8``, ``heartbeat=1`` and ``lease=10`` in seconds (how often each process
proves itself alive, and after how long without a heartbeat the others take its work
over), and any libpq option, such as ``sslmode=require``) or ``memory://``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError
from ._backend import StoreBackend
from ._sqlite import SQLiteBackend

__all__ = ["backend_for_url", "is_memory_url"]

_URL_EXAMPLE = (
    "a URL such as 'sqlite:///var/hookline.db', 'postgresql://user@host/hookline' or 'memory://'"
)


def is_memory_url(url: object) -> bool:
    """Whether ``url`` is ``memory://`` (the in-memory store)."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme == "memory" and not parts.netloc.strip("/") and not parts.path.strip("/")


def backend_for_url(url: str) -> StoreBackend:
    """The (unopened) SQLite or PostgreSQL backend ``url`` names. Raises ConfigError
    (``store.url``) for a URL of another scheme, without a path, or with a bad option."""
    if not isinstance(url, str):
        raise ConfigError("store.url", "", _URL_EXAMPLE, url)
    parts = urlsplit(url)
    if parts.scheme == "postgresql":
        return _postgres_backend(url)
    if parts.scheme != "sqlite" or parts.netloc or len(parts.path) < 2:
        raise ConfigError("store.url", "", _URL_EXAMPLE, url)
    options = dict(parse_qsl(parts.query))
    unknown = set(options) - {"synchronous", "readers"}
    if unknown:
        raise ConfigError("store.url", "", "options synchronous and readers only", url)
    try:
        backend = SQLiteBackend(
            Path(parts.path[1:]),
            synchronous=options.get("synchronous", "FULL"),
            readers=int(options.get("readers", "4")),
        )
    except ValueError as exc:
        raise ConfigError("store.url", "", f"valid options ({exc})", url) from exc
    return backend


# hookline's own options in a PostgreSQL URL; the others are libpq's.
_POSTGRES_OPTIONS = frozenset({"readers", "heartbeat", "lease"})


def _postgres_backend(url: str) -> StoreBackend:
    # Imported here: psycopg is loaded only by those who use PostgreSQL.
    import psycopg

    from ._postgres import PostgresBackend, redact_url

    parts = urlsplit(url)
    options = parse_qsl(parts.query, keep_blank_values=True)
    ours = {name: value for name, value in options if name in _POSTGRES_OPTIONS}
    theirs = [option for option in options if option[0] not in _POSTGRES_OPTIONS]
    rest = urlunsplit(parts._replace(query=urlencode(theirs)))
    try:
        psycopg.conninfo.conninfo_to_dict(rest)
    except psycopg.Error:
        # Not the parser's message: it may quote the URL, password included.
        raise ConfigError("store.url", "", "a valid PostgreSQL URL", redact_url(url)) from None
    try:
        return PostgresBackend(
            rest,
            readers=int(ours.get("readers", "4")),
            heartbeat=float(ours.get("heartbeat", "1")),
            lease=float(ours.get("lease", "10")),
        )
    except ValueError as exc:
        raise ConfigError("store.url", "", f"valid options ({exc})", redact_url(url)) from exc
