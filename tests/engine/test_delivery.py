"""``$context`` as the engine builds it from a delivery: ``raw``/``raw_base64`` and file
contents are worked out only when read, are exact for binary bodies, are not stored a
second time beside the delivery record, and come back whole when an execution resumes
or is retried."""

from __future__ import annotations

import base64
import hashlib
import textwrap

import msgpack
import trio
import trio.testing

from hookline.definition import Fields
from hookline.engine._delivery import Delivery, embedded_delivery
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.engine._recovery import recovered_delivery, stored_delivery
from hookline.engine._request_context import FileInfo
from hookline.nodes._registry import parse_node
from hookline.store._records import DeliveryRecord, ExecutionRecord
from hookline.testing import FakeJob, register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()

PNG = b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary"


def delivery(body: bytes, content_type: str | None = None, **fields: object) -> Delivery:
    headers = {"content-type": content_type} if content_type else {}
    return Delivery(id="d1", workflow="w", received_at=0.0, headers=headers, body=body, **fields)  # type: ignore[arg-type]


def test_raw_is_computed_when_read_and_never_copied() -> None:
    context = delivery(b'{"a": 1}', "application/json").context()
    assert "raw" not in dict(context)
    assert "raw" not in {**context}
    assert context.get("raw") == '{"a": 1}'
    assert context["raw_base64"] == base64.b64encode(b'{"a": 1}').decode()
    assert "raw" in context


def test_binary_bodies_have_no_raw_text_but_exact_base64() -> None:
    context = delivery(PNG, "image/png").context()
    assert context["raw"] is None
    assert base64.b64decode(context["raw_base64"]) == PNG


def test_text_bodies_are_text_in_their_charset() -> None:
    context = delivery("Grüße".encode("latin-1"), "text/plain; charset=latin-1").context()
    assert context["raw"] == "Grüße"


def test_reading_the_whole_context_sees_every_field() -> None:
    context = delivery(b"x=1", "application/x-www-form-urlencoded").context()
    whole = msgpack.unpackb(msgpack.packb(context))
    assert whole["raw"] == "x=1"
    assert whole["raw_base64"] == "eD0x"
    assert set(context.keys()) >= {"raw", "raw_base64", "data", "headers", "files", "form"}


def test_headers_reach_the_context_uncopied_and_stored_redacted() -> None:
    one = Delivery(
        id="d1",
        workflow="w",
        received_at=0.0,
        headers={"authorization": "Bearer s3cret", "x-a": "1"},
        body=b"hi",
    )
    assert one.context()["headers"] is one.headers
    stored = one.stored_context()
    assert stored["headers"] == {"authorization": "[redacted]", "x-a": "1"}
    assert "raw" not in stored
    assert "raw_base64" not in stored


def test_files_are_readable_and_survive_storage() -> None:
    info = FileInfo("a.png", "image/png", PNG)
    one = delivery(b"(multipart)", "multipart/form-data; boundary=x", files={"img": info})
    stored = msgpack.unpackb(msgpack.packb(one.stored_context()))
    assert stored["files"]["img"]["sha256"] == hashlib.sha256(PNG).hexdigest()
    record = ExecutionRecord(
        id="e1", workflow="w", delivery_id="d1", status="queued", created_at=0.0, context=stored
    )
    again = stored_delivery(record, b"(multipart)").context()
    assert base64.b64decode(again["files"]["img"]["base64"]) == PNG
    assert again["files"]["img"]["text"] is None
    assert again["files"]["img"]["size"] == len(PNG)


class _Deliveries:
    def __init__(self, *records: DeliveryRecord) -> None:
        self.records = {r.id: r for r in records}
        self.reads = 0

    async def get_delivery(self, id: str) -> DeliveryRecord | None:
        self.reads += 1
        return self.records.get(id)


async def test_a_recovered_delivery_reads_its_exact_body_back() -> None:
    one = embedded_delivery("w", "p", body=PNG, headers={"content-type": "image/png"})
    record = ExecutionRecord(
        id="e1",
        workflow="w",
        delivery_id=one.id,
        status="queued",
        created_at=0.0,
        context=one.stored_context(),
    )
    store = _Deliveries(one.record("accepted"))
    again = await recovered_delivery(store, record)
    assert again.body == PNG
    assert base64.b64decode(again.context()["raw_base64"]) == PNG


async def test_a_context_stored_with_its_raw_text_needs_no_read() -> None:
    record = ExecutionRecord(
        id="e1",
        workflow="w",
        delivery_id="gone",
        status="queued",
        created_at=0.0,
        context={"raw": "héllo", "headers": {}, "data": None},
    )
    store = _Deliveries()
    again = await recovered_delivery(store, record)
    assert store.reads == 0
    assert again.context()["raw"] == "héllo"
    assert again.body == "héllo".encode()


RAW = load_workflow_text(
    textwrap.dedent(
        """
        key: raw
        nodes:
          - {key: nap, type: sleep, duration: 10s}
          - key: seen
            type: set
            values: {b64: "{{$context.raw_base64}}", raw: "{{$context.raw}}"}
        """
    ),
    source="test.yaml",
)


async def test_a_resumed_execution_reads_the_same_binary_body(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory
) -> None:
    store = make_store()
    async with open_engine([RAW], store=store, shutdown_timeout=1) as engine:
        admission = await engine.submit(
            "raw", body=PNG, headers={"content-type": "application/octet-stream"}
        )
        await trio.sleep(2)  # mid-nap: then the process stops
        stored = await store.get_execution(admission.execution_id)
        assert stored is not None
        assert "raw_base64" not in stored.context  # the delivery record has the body
    again = make_store()
    async with open_engine([RAW], store=again) as engine:
        handle = engine.handle(admission.execution_id)
        assert handle is not None
        outcome = await handle.wait_finished()
    assert outcome.status == "succeeded"
    assert outcome.output == {"b64": base64.b64encode(PNG).decode(), "raw": None}


async def test_json_query_reads_the_lazy_parts_of_the_context() -> None:
    info = FileInfo("a.txt", "text/plain", b"hi")
    one = delivery(b"x=1", "application/x-www-form-urlencoded", files={"f": info})
    spec = parse_node(
        Fields(
            {
                "key": "q",
                "type": "json_query",
                "source": "{{$context}}",
                "query": "[raw, length(keys(@)), files.f.text, keys(files.f)]",
            },
            source="w.yaml",
        )
    )
    job = FakeJob({"context": one.context()}, spec=spec)
    output = (await spec.config.run(job)).output
    assert output[0] == "x=1"
    assert output[1] == len(one.context().keys())
    assert output[2] == "hi"
    assert set(output[3]) == {"filename", "content_type", "size", "text", "base64", "sha256"}
