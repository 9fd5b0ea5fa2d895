"""The workflow charts: buckets of stored records over a window, drawn as SVG."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hookline.http._ui_charts import buckets, chart_svg, percentile
from tests.http.conftest import ECHO, ORDERS, Server, running_server, wait_until

NOW = 1_767_225_600.0


def test_buckets_count_deliveries_outcomes_and_durations() -> None:
    received = [NOW - 3590, NOW - 3590, NOW - 30, NOW - 10, NOW - 7200, NOW + 5]
    finished = [
        (NOW - 20, "succeeded", 0.1),
        (NOW - 15, "failed", 0.3),
        (NOW - 12, "succeeded", 2.0),
        (NOW - 4000, "succeeded", 9.0),  # before the window
    ]
    cut = buckets(received, finished, now=NOW, window=3600, count=60)
    assert len(cut) == 60
    assert [b.deliveries for b in cut if b.deliveries] == [2, 2]
    assert cut[0].per_minute == 2.0
    last = cut[-1]
    assert (last.finished, last.succeeded) == (3, 2)
    assert last.success_rate == pytest.approx(2 / 3)
    assert (last.p50, last.p99) == (0.3, 2.0)
    assert cut[1].success_rate is None
    assert cut[1].p50 is None


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([4.0], 0.99) == 4.0
    assert percentile([], 0.5) is None


def test_chart_svg_breaks_lines_at_gaps_and_escapes_text() -> None:
    svg = chart_svg("<b>rate</b>", [("a&b", [0.5, 1.0, None, 0.25, None, None])], unit="%", top=1.0)
    assert "<b>" not in svg
    assert "&lt;b&gt;rate&lt;/b&gt;" in svg
    assert svg.count("<polyline") == 1  # the first two points
    assert svg.count("<circle") == 1  # the lone 0.25
    assert 'data-series="a&amp;b"' in svg
    assert ">100%<" in svg
    empty = chart_svg("nothing", [("x", [None, None])])
    assert "no data" in empty
    assert "<polyline" not in empty


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server([ORDERS, ECHO]) as running:
        yield running


async def test_pages_chart_the_stored_records(server: Server) -> None:
    for n in range(3):
        await server.client.post(f"/api/webhooks/orders/{n}", json={"n": n})
    await wait_until(lambda: server.engine.pending() == 0)

    page = (await server.client.get("/ui/workflows/orders")).text
    assert 'id="charts-orders"' in page
    assert "3 deliveries" in page
    assert 'id="chart-deliveries-orders-hour"' in page
    assert 'id="chart-duration-orders-day"' in page

    overview = (await server.client.get("/ui/")).text
    assert 'id="charts-all"' in overview
    assert "3 deliveries" in overview
    missing = await server.client.get("/ui/workflows/nowhere")
    assert missing.status_code == 404
