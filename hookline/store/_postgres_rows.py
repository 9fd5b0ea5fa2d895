"""The PostgreSQL side of the row codec (:mod:`._rows`): free text cleaned on the way in.

PostgreSQL's ``text`` cannot hold a NUL character: free text that may carry one goes
through :func:`clean`, which the row builders here pass to the shared ones.
"""

from __future__ import annotations

from typing import Any

from . import _rows
from ._records import DeliveryRecord, ExecutionRecord, JobRecord

__all__ = [
    "clean",
    "delivery_row",
    "execution_row",
    "job_row",
]


def clean(text: str) -> str:
    """``text`` with each NUL character (which PostgreSQL cannot store) made U+FFFD."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def delivery_row(
    d: DeliveryRecord, *, verdict: str | None = None, execution_id: str | None = None
) -> tuple[Any, ...]:
    """:func:`._rows.delivery_row`, text cleaned."""
    return _rows.delivery_row(d, verdict=verdict, execution_id=execution_id, text=clean)


def execution_row(e: ExecutionRecord) -> tuple[Any, ...]:
    """:func:`._rows.execution_row`, text cleaned."""
    return _rows.execution_row(e, text=clean)


def job_row(j: JobRecord) -> tuple[Any, ...]:
    """:func:`._rows.job_row`, text cleaned."""
    return _rows.job_row(j, text=clean)
