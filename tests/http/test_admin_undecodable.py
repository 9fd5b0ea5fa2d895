"""Admin API bodies that are not UTF-8 get 400, not 500.

Found by issue 13's post-fix fuzz run (schemathesis): ``PATCH /api/workflows/{key}``
and ``POST /api/workflows/{key}/rollback`` with the bytes ``\\xc2`` as a JSON body
answered 500, because quart-trio decodes the body before ``get_json(silent=True)``.
"""

from __future__ import annotations

import pytest

from tests.http.conftest import ORDERS, assert_problem, running_server


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/api/workflows/orders"), ("POST", "/api/workflows/orders/rollback")],
)
async def test_a_body_that_is_not_utf8_is_a_bad_request(method: str, path: str) -> None:
    async with running_server([ORDERS]) as server:
        response = await server.client.request(
            method, path, content=b"\xc2m\x9f", headers={"content-type": "application/json"}
        )
        problem = assert_problem(response, 400)
        assert "UTF-8" in problem["detail"]
