"""The query string of the admin lists: page size, cursor, filters and a time window.

Lists are pages, newest first, filtered by ``workflow``, ``status`` (executions) or
``verdict`` (deliveries) and by time (``since``, ``until``: ISO 8601 or seconds since
the epoch, both inclusive). The API and the UI read their queries here alike; a bad
parameter raises :class:`BadQuery`, which each answers in its own way (400).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from quart import request

from .._ids import id_time
from ..engine._engine import Engine
from ..store._records import (
    FINISHED_STATUSES,
    LIVE_STATUSES,
    DeliveryRecord,
    ExecutionRecord,
    Page,
)

__all__ = [
    "EXECUTION_STATUSES",
    "MAX_LIMIT",
    "VERDICTS",
    "BadQuery",
    "choice_arg",
    "list_delivery_page",
    "list_execution_page",
    "page_args",
    "parse_time",
    "since_page",
]

EXECUTION_STATUSES = (*LIVE_STATUSES, *sorted(FINISHED_STATUSES))
VERDICTS = ("accepted", "rejected", "duplicate")
MAX_LIMIT = 500

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_LENGTH = 26
_RANDOM_BITS = 80

T = TypeVar("T")


class BadQuery(ValueError):
    """A list query parameter is invalid; answered 400."""


def parse_time(raw: str, name: str) -> float:
    """Seconds since the epoch from ``raw``: a number, or ISO 8601 (no zone: UTC).
    Raises BadQuery naming the parameter."""
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadQuery(
            f"{name} must be ISO 8601 (2024-05-01T12:00:00Z) or epoch seconds, got {raw!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _id_after(at: float) -> str:
    """The smallest id made after millisecond ``at``: a cursor that lists ids made at
    or before ``at`` (ids start with their creation time; see hookline._ids)."""
    value = (int(at * 1000) + 1) << _RANDOM_BITS
    chars = []
    for _ in range(_ID_LENGTH):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def page_args() -> tuple[int, str | None, float | None]:
    """``limit``, the effective ``cursor`` and ``since`` from the query string.

    ``until`` becomes a cursor (the smaller of it and a given ``cursor`` wins). Raises
    BadQuery for a bad limit, cursor or time.
    """
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw!r}")
    cursor = request.args.get("cursor") or None
    if cursor is not None:
        try:
            id_time(cursor)
        except ValueError:
            raise BadQuery(
                f"cursor must be a cursor from a previous page, got {cursor!r}"
            ) from None
        cursor = cursor.upper()
    until = request.args.get("until")
    if until:
        bound = _id_after(parse_time(until, "until"))
        cursor = bound if cursor is None else min(cursor, bound)
    since = request.args.get("since")
    return int(raw), cursor, None if not since else parse_time(since, "since")


def choice_arg(name: str, allowed: Sequence[str]) -> str | None:
    """Query parameter ``name``, which must be one of ``allowed`` when given."""
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise BadQuery(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def since_page(page: Page[T], since: float | None, at: Callable[[T], float]) -> Page[T]:
    """``page`` without the items older than ``since``; past them nothing newer can
    follow (pages go newest first), so the cursor ends."""
    if since is None:
        return page
    items = tuple(item for item in page.items if at(item) >= since)
    return page if len(items) == len(page.items) else Page(items, None)


async def list_execution_page(engine: Engine) -> Page[ExecutionRecord]:
    """The page of executions the request's query asks for. Raises BadQuery."""
    status = choice_arg("status", EXECUTION_STATUSES)
    limit, cursor, since = page_args()
    page = await engine.store.list_executions(
        workflow=request.args.get("workflow") or None, status=status, limit=limit, cursor=cursor
    )
    return since_page(page, since, lambda record: record.created_at)


async def list_delivery_page(engine: Engine) -> Page[DeliveryRecord]:
    """The page of deliveries the request's query asks for. Raises BadQuery."""
    verdict = choice_arg("verdict", VERDICTS)
    limit, cursor, since = page_args()
    page = await engine.store.list_deliveries(
        workflow=request.args.get("workflow") or None, verdict=verdict, limit=limit, cursor=cursor
    )
    return since_page(page, since, lambda record: record.received_at)
