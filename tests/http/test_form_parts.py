"""Issue 13, finding 6: forms are capped in parts, and parsing one never holds the loop.

The attack: a 1 MiB multipart body of ~18k tiny parts cost 0.37 s of event-loop time
per request, and six at once stalled ``/healthz`` for 1.45 s.
"""

from __future__ import annotations

import httpx
import pytest
import trio

from hookline.errors import PayloadTooLarge
from hookline.http._body import MAX_FORM_PARTS, body_steps, parse_body
from tests.conftest import StoreFactory
from tests.http.conftest import assert_problem
from tests.http.test_verification_http import executions, hook, serving

BOUNDARY = "XyZ123"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
FORM = "application/x-www-form-urlencoded"
ROOMY = hook("roomy", extra="\n  max_body: 2MiB")


def many_parts(count: int, value: str = "x") -> bytes:
    parts = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n{value}\r\n'
        for i in range(count)
    )
    return (parts + f"--{BOUNDARY}--\r\n").encode()


def attack_body() -> bytes:
    """About 1 MiB in about 18k parts, as the attack run sent."""
    count = 18_000
    raw = many_parts(count)
    assert 1_000_000 < len(raw) <= 1_200_000
    return raw


def test_a_form_at_the_cap_parses() -> None:
    parsed = parse_body(many_parts(MAX_FORM_PARTS), MULTIPART)
    assert isinstance(parsed.data, dict)
    assert len(parsed.data) == MAX_FORM_PARTS


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (many_parts(MAX_FORM_PARTS + 1), MULTIPART),
        (attack_body(), MULTIPART),
        ("&".join(f"f{i}=x" for i in range(MAX_FORM_PARTS + 1)).encode(), FORM),
    ],
    ids=["multipart-one-over", "multipart-18k", "urlencoded-one-over"],
)
def test_a_form_past_the_cap_is_too_large(raw: bytes, content_type: str) -> None:
    with pytest.raises(PayloadTooLarge, match="more than 1000 parts"):
        parse_body(raw, content_type)


def test_the_cap_is_a_setting() -> None:
    with pytest.raises(PayloadTooLarge, match="more than 10 parts"):
        parse_body(many_parts(11), MULTIPART, max_parts=10)
    assert len(parse_body(many_parts(10), MULTIPART, max_parts=10).data) == 10  # type: ignore[arg-type]


def test_multipart_parsing_hands_back_control_in_small_steps() -> None:
    # The loop gets control back at least every 32 parts and every 16 KiB: the work
    # between two steps is bounded whatever the body, so no step takes long.
    parts = MAX_FORM_PARTS
    steps = body_steps(many_parts(parts), MULTIPART)
    yields = sum(1 for _ in steps)
    # Each part is three events (field, data, its end) or fewer.
    assert yields >= parts // 32
    big = many_parts(2, value="y" * 4 * 1024 * 1024)
    assert sum(1 for _ in body_steps(big, MULTIPART)) >= len(big) // (16 * 1024)


async def test_concurrent_part_floods_are_413_and_do_not_stall_healthz(
    make_store: StoreFactory,
) -> None:
    raw = attack_body()
    answers: list[httpx.Response] = []
    stalls: list[float] = []
    async with serving([ROOMY], store=make_store()) as server:

        async def attack() -> None:
            answers.append(
                await server.client.post(
                    "/api/webhooks/roomy", content=raw, headers={"Content-Type": MULTIPART}
                )
            )

        async def probe(done: trio.Event) -> None:
            while not done.is_set():
                started = trio.current_time()
                assert (await server.client.get("/healthz")).status_code == 200
                stalls.append(trio.current_time() - started)
                await trio.sleep(0.01)

        done = trio.Event()
        async with trio.open_nursery() as probes:
            probes.start_soon(probe, done)
            async with trio.open_nursery() as attackers:
                for _ in range(6):
                    attackers.start_soon(attack)
            done.set()
        assert await executions(server, "roomy") == 0
    assert len(answers) == 6
    for answer in answers:
        body = assert_problem(answer, 413)
        assert "1000 parts" in body["detail"]
    assert stalls
    # A generous bound: the old parser held the loop 0.37 s per body, 2 s for six.
    assert max(stalls) < 1.0


async def test_the_server_takes_its_own_cap(make_store: StoreFactory) -> None:
    async with serving([ROOMY], store=make_store(), max_form_parts=10) as server:
        over = await server.client.post(
            "/api/webhooks/roomy", content=many_parts(11), headers={"Content-Type": MULTIPART}
        )
        assert_problem(over, 413)
        at = await server.client.post(
            "/api/webhooks/roomy", content=many_parts(10), headers={"Content-Type": MULTIPART}
        )
        assert at.status_code < 300, at.text
