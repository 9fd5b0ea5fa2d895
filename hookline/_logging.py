"""Logging: plain text or JSON lines, and one line per delivery and per execution end.

:func:`configure_logging` sets up the root handler (``hookline --log-format json`` or
``HOOKLINE_LOG_FORMAT=json``). :func:`log_store_event` turns the store tap's events
(:mod:`hookline._tap`) into log lines: ``hookline.delivery`` logs every recorded
request with its verdict, ``hookline.execution`` every execution that ended, each with
the ids that link them (``delivery_id``, ``execution_id``, ``workflow``). They carry
no header, body or query value, so no secret reaches a log.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

from ._tap import DeliveryRecorded, ExecutionEnded, StoreEvent

__all__ = ["JsonLinesFormatter", "configure_logging", "log_store_event"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

delivery_log = logging.getLogger("hookline.delivery")
execution_log = logging.getLogger("hookline.execution")


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, the record's ``fields`` (passed as ``extra={"fields": {...}}``) and
    ``exception`` (the traceback as one string) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            document.update(fields)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str, separators=(",", ":"))


def _iso(at: float) -> str:
    millis = int(at * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{millis:03d}Z"


def configure_logging(
    level: int = logging.WARNING, *, json_lines: bool = False, stream: IO[str] | None = None
) -> None:
    """Log to ``stream`` (stderr) as text or JSON lines, at ``level``.

    The per-delivery and per-execution lines are on with JSON lines (made for log
    shippers) or at INFO and below (``-v``); otherwise off, since writing a line per
    event costs the store's writer thread time at high rates.

    Like :func:`logging.basicConfig`, it leaves a root logger that someone else set up
    (a test runner, an embedding program) alone; a handler it installed itself is
    replaced, so calling it again switches the format.
    """
    events = logging.INFO if json_lines or level <= logging.INFO else logging.WARNING
    delivery_log.setLevel(events)
    execution_log.setLevel(events)
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "hookline", False)]
    if len(ours) != len(root.handlers):
        return
    for old in ours:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.hookline = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonLinesFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


def log_store_event(event: StoreEvent) -> None:
    """Log a recorded delivery or an ended execution at INFO (other events: nothing)."""
    if isinstance(event, DeliveryRecorded) and delivery_log.isEnabledFor(logging.INFO):
        delivery = event.delivery
        fields: dict[str, Any] = {
            "event": "delivery",
            "delivery_id": delivery.id,
            "workflow": delivery.workflow,
            "verdict": event.verdict,
            "status": delivery.status,
            "method": delivery.method,
            "path": delivery.path,
            "remote_addr": delivery.remote_addr,
            "execution_id": delivery.execution_id,
            "reason": delivery.reason,
        }
        delivery_log.info(
            "delivery %s %s %s: %s%s",
            delivery.id,
            delivery.method,
            delivery.path,
            event.verdict,
            f" ({delivery.reason})" if delivery.reason else "",
            extra={"fields": fields},
        )
    elif isinstance(event, ExecutionEnded) and execution_log.isEnabledFor(logging.INFO):
        duration = None
        if event.started_at is not None and event.finished_at is not None:
            duration = round((event.finished_at - event.started_at) * 1000, 3)
        fields = {
            "event": "execution_end",
            "execution_id": event.id,
            "workflow": event.workflow,
            "delivery_id": event.delivery_id,
            "status": event.status,
            "duration_ms": duration,
            "error": event.error,
        }
        execution_log.info(
            "execution %s of %s %s%s",
            event.id,
            event.workflow or "?",
            event.status,
            f": {event.error}" if event.error else "",
            extra={"fields": fields},
        )
