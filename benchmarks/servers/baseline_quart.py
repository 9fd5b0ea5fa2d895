"""A minimal quart-trio route, ``POST /hook``, answering 202 with a small JSON."""

from __future__ import annotations

from quart import request
from quart_trio import QuartTrio

from ._serve import run

app = QuartTrio(__name__)


@app.post("/hook")
async def hook() -> tuple[dict[str, str], int]:
    await request.get_data()
    return {"execution_id": "0", "status": "queued"}, 202


if __name__ == "__main__":
    run(app)
