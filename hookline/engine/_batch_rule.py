"""Reading a workflow's ``batch`` rule: ``{size, timeout, key}``, checked at load."""

from __future__ import annotations

from ..definition import Fields
from ._definition import BatchRule

__all__ = ["MAX_BATCH_SIZE", "batch_rule"]

# One batch's execution holds every member's context: a bound keeps that record (and
# the one transaction that forms it) a sane size.
MAX_BATCH_SIZE = 1000


def batch_rule(fields: Fields, debounced: bool) -> BatchRule | None:
    """``batch`` of a workflow's ``fields``; ``debounced``: it has ``debounce`` too,
    which a batch cannot follow (one keeps the last delivery, the other all of them)."""
    if fields.value("batch", None) is None:  # (reading it makes it a known field)
        return None
    if debounced:
        fields.fail("batch", "no batch in a workflow with debounce (choose one)", "batch")
    rule = fields.sub("batch", required=True)
    batch = BatchRule(
        size=rule.integer("size", low=1, high=MAX_BATCH_SIZE),
        timeout=rule.duration("timeout"),
        key=rule.template("key", None),
    )
    rule.done()
    return batch
