"""Admin route for the processes sharing the store: ``GET /api/workers``.

On PostgreSQL every hookline process is a worker that heartbeats (see
:mod:`hookline.store._coordination`); this lists them with how long ago each was last
heard of, so an operator sees which processes run, and which the others will soon count
dead. On SQLite and memory:// the store is this process's alone: the list is empty.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from ..errors import StoreError
from ..store._coordination import WorkerRecord
from ._executions import current_engine
from ._responses import json_response, problem_response

__all__ = ["worker_json", "workers_api"]

workers_api = Blueprint("workers_api", __name__)


def worker_json(worker: WorkerRecord, *, me: str, lease: float) -> dict[str, Any]:
    """``worker`` as the API shows it: ``alive`` until it was silent for ``lease``
    seconds; ``this_process`` for the process answering (worker ``me``)."""
    return {
        "id": worker.id,
        "host": worker.host,
        "pid": worker.pid,
        "started_at": worker.started_at,
        "heartbeat_at": worker.heartbeat_at,
        "silent_seconds": round(worker.silent, 3),
        "alive": worker.silent < lease,
        "this_process": worker.id == me,
    }


@workers_api.get("/api/workers")
async def list_workers() -> Response:
    cluster = current_engine().cluster
    if cluster is None:
        return json_response({"shared_store": False, "worker": None, "items": []})
    try:
        workers = await cluster.workers()
    except StoreError as exc:
        return problem_response(503, "Store unavailable", str(exc), retry_after=5)
    me = cluster.coordinator.worker_id
    items = [worker_json(w, me=me, lease=cluster.lease) for w in workers]
    return json_response({"shared_store": True, "worker": me, "items": items})
