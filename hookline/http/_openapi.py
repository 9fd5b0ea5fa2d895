"""``GET /api/openapi.json``: the OpenAPI 3.0 description of hookline's HTTP interface.

The schemas live in :mod:`._openapi_schemas`, the routes in :mod:`._openapi_paths`;
the test suite validates the document with openapi-spec-validator and fuzzes the live
server with schemathesis against it.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from ._openapi_bulk import with_bulk
from ._openapi_collections import with_collection_writes
from ._openapi_paths import paths
from ._openapi_schemas import schemas
from ._responses import json_response

__all__ = ["openapi", "openapi_document"]

openapi = Blueprint("openapi", __name__)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the webhook route, the admin API and the probes."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hookline",
            "version": "1",
            "description": "Webhook workflows: ingress, admin API, health and metrics.",
        },
        "security": [{"adminKey": []}],
        "paths": with_bulk(with_collection_writes(paths())),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "adminKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of admin.api_keys; with none set, loopback clients only",
                }
            },
        },
    }


@openapi.get("/api/openapi.json")
async def openapi_json() -> Response:
    return json_response(openapi_document())
