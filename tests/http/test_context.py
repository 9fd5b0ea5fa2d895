"""What a workflow sees in ``$context`` for requests as senders make them.

The ``echo`` workflow (sync) ends with ``output: "{{$context}}"``, so each answer
carries the context its request produced.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from tests.http.conftest import Server


async def context_of(server: Server, method: str, url: str, **request: Any) -> dict[str, Any]:
    response = await server.client.request(method, url, **request)
    assert response.status_code == 200, response.text
    output: dict[str, Any] = response.json()["output"]
    return output


async def test_json_body_is_data(server: Server) -> None:
    context = await context_of(server, "POST", "/api/webhooks/echo/a", json={"n": [1, 2]})

    assert context["data"] == {"n": [1, 2]}
    assert context["raw"] == '{"n":[1,2]}'
    assert context["files"] == {}


async def test_form_body_is_a_mapping_with_repeated_names_as_lists(server: Server) -> None:
    context = await context_of(
        server,
        "POST",
        "/api/webhooks/echo/a",
        content=b"name=Ada+L&tag=x&tag=y&empty=",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert context["data"] == {"name": "Ada L", "tag": ["x", "y"], "empty": ""}


async def test_multipart_fields_are_data_and_files_are_described(server: Server) -> None:
    context = await context_of(
        server,
        "POST",
        "/api/webhooks/echo/a",
        data={"title": "report"},
        files={"upload": ("r.csv", b"a,b\n1,2\n", "text/csv")},
    )

    assert context["data"] == {"title": "report"}
    assert context["form"] == {"title": "report"}
    assert context["files"] == {
        "upload": {
            "filename": "r.csv",
            "content_type": "text/csv",
            "size": 8,
            "text": "a,b\n1,2\n",
            "base64": base64.b64encode(b"a,b\n1,2\n").decode(),
            "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest(),
        }
    }


async def test_text_body_is_a_string(server: Server) -> None:
    context = await context_of(
        server,
        "POST",
        "/api/webhooks/echo/a",
        content="héllo".encode(),
        headers={"content-type": "text/plain; charset=utf-8"},
    )

    assert context["data"] == "héllo"
    assert context["raw"] == "héllo"


async def test_other_bodies_keep_their_raw_bytes(server: Server) -> None:
    payload = b"\x00\x01binary\xff"
    response = await server.client.post(
        "/api/webhooks/echo/a",
        content=payload,
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 200
    assert response.json()["output"]["data"] is None
    # Not text: raw is null rather than mangled; raw_base64 is exact.
    assert response.json()["output"]["raw"] is None
    assert base64.b64decode(response.json()["output"]["raw_base64"]) == payload
    await server.engine.store.flush()

    page = (await server.client.get("/api/deliveries?workflow=echo")).json()
    (delivery,) = page["deliveries"]
    assert base64.b64decode(delivery["body_base64"]) == payload


async def test_query_method_and_remote_address(server: Server) -> None:
    context = await context_of(server, "PUT", "/api/webhooks/echo/a?a=1&a=2&b=x", json={})

    assert context["query"] == {"a": ["1", "2"], "b": "x"}
    assert context["method"] == "PUT"
    assert context["path"] == "/api/webhooks/echo/a"
    assert context["remote_addr"] == "127.0.0.1"
    assert context["delivery_id"]
    assert context["received_at"].endswith("Z")


async def test_headers_are_the_senders_with_lower_case_names(server: Server) -> None:
    context = await context_of(
        server, "GET", "/api/webhooks/echo/a", headers={"X-GitHub-Event": "push"}
    )

    assert context["headers"]["x-github-event"] == "push"
    assert all(name == name.lower() for name in context["headers"])
    # Quart adds a Remote-Addr entry of its own; the sender sent no such header.
    assert "remote-addr" not in context["headers"]


async def test_path_params_are_decoded_and_keep_an_encoded_slash(server: Server) -> None:
    context = await context_of(server, "POST", "/api/webhooks/echo/team%2Fapi%20v2", json={})

    assert context["params"] == {"name": "team/api v2"}
