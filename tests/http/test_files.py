"""Multipart files through a workflow: kept within ``max_body``, readable as
``$context.files.<field>.text/.base64/.sha256``, and sent on as multipart by an ``http``
node to a receiver on 127.0.0.1."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib

from tests.http.conftest import running_server
from tests.nodes._receiver import json_reply, receiver

PNG = b"\x89PNG\r\n\x1a\n\x00\xff binary \xfe"


def forwarder(url: str) -> str:
    return f"""
key: forward
trigger: {{path: upload, mode: sync}}
nodes:
  - key: sum
    type: set
    values:
      sha: "{{{{$context.files.photo.sha256}}}}"
      size: "{{{{$context.files.photo.size}}}}"
      notes: "{{{{$context.files.notes.text}}}}"
      photo_text: "{{{{$context.files.photo.text}}}}"
  - key: send
    type: http
    method: POST
    url: "{url}"
    form: {{title: "{{{{$context.data.title}}}}"}}
    files: {{image: "{{{{$context.files.photo}}}}", notes: "{{{{$context.files.notes.text}}}}"}}
  - {{key: done, type: end, status: succeeded, output: "{{{{$nodes.sum}}}}"}}
"""


async def test_an_uploaded_file_is_readable_and_forwarded_as_multipart() -> None:
    with receiver() as target:
        target.answer = lambda request: json_reply(200, {"ok": True})
        async with running_server(
            [forwarder(target.url("/files"))], http_allow_hosts=["127.0.0.1"]
        ) as server:
            answer = await server.client.post(
                "/api/webhooks/upload",
                data={"title": "receipt"},
                files={
                    "photo": ("receipt.png", PNG, "image/png"),
                    "notes": ("n.txt", "héllo".encode(), "text/plain; charset=utf-8"),
                },
            )
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"] == {
        "sha": hashlib.sha256(PNG).hexdigest(),
        "size": len(PNG),
        "notes": "héllo",
        "photo_text": None,
    }
    [request] = target.requests
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body
    )
    parts = {
        part.get_param("name", header="content-disposition"): part for part in message.iter_parts()
    }
    assert parts["title"].get_content() == "receipt"
    image = parts["image"]
    assert image.get_filename() == "receipt.png"
    assert image.get_content_type() == "image/png"
    assert image.get_payload(decode=True) == PNG
    assert parts["notes"].get_payload(decode=True) == "héllo".encode()
