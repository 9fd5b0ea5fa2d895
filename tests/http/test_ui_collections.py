"""The web UI's collection pages: every collection with its count, and one collection's
records filtered by the ``where`` operators, sorted and paged; bad filters answer a
400 page, values are escaped, and access is the other UI pages'."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from hookline.http._security_headers import CONTENT_SECURITY_POLICY
from hookline.http._ui_collections import BadFilter, columns_of, parse_filter
from tests.conftest import StoreFactory
from tests.http.conftest import ORDERS, Server, running_server

ORDERS_ROWS = [
    {"sku": "a-1", "total": 120, "status": "paid"},
    {"sku": "b-2", "total": 80, "status": "paid"},
    {"sku": "c-3", "total": 300, "status": "shipped"},
    {"sku": "d-4", "total": 40, "status": "refunded", "note": "late"},
    {"sku": "e-5", "total": 150, "status": "paid"},
]


@pytest.fixture
async def server(make_store: StoreFactory) -> AsyncIterator[Server]:
    async with running_server([ORDERS], store=make_store()) as running:
        for row in ORDERS_ROWS:
            created = await running.client.post("/api/collections/orders/records", json=row)
            assert created.status_code == 201, created.text
        await running.client.post("/api/collections/notes/records", json={"text": "hi"})
        yield running


def skus(page: str) -> list[str]:
    """The sku column of the records table, top to bottom."""
    table = page[page.index('id="records"') :]
    rows = re.findall(r"<tr data-record=.*?</tr>", table, re.DOTALL)
    return [sku for row in rows for sku in re.findall(r"<code>([a-e]-\d)</code>", row)]


async def get(client: httpx.AsyncClient, path: str, **params: object) -> httpx.Response:
    return await client.get(path, params=params)  # type: ignore[arg-type]


async def test_collections_page_lists_each_collection_with_its_count(server: Server) -> None:
    page = await server.client.get("/ui/collections")
    assert page.status_code == 200
    row = page.text[page.text.index('data-collection="orders"') :]
    assert '<td class="count">5</td>' in row[: row.index("</tr>")]
    assert 'data-collection="notes"' in page.text
    assert 'href="/ui/collections/orders"' in page.text
    assert 'href="/ui/collections"' in (await server.client.get("/ui/")).text  # the nav


async def test_records_table_has_a_column_per_field_newest_first_under_the_csp(
    server: Server,
) -> None:
    answer = await server.client.get("/ui/collections/orders")
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page = answer.text
    assert "style=" not in page
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="/ui/static/ui.js" defer>'
    ]  # no inline script
    header = page[page.index("<thead>") : page.index("</thead>")]
    names = re.findall(r'class="sort[^"]*" href="[^"]*">(\w+)', header)
    assert names == ["id", "sku", "total", "status", "note", "created_at", "updated_at"]
    assert skus(page) == ["e-5", "d-4", "c-3", "b-2", "a-1"]
    assert "late" in page


async def test_filters_with_two_operators_all_hold(server: Server) -> None:
    client = server.client
    query = {"field": ["total", "status"], "op": ["gte", "in"], "value": ["100", "paid,shipped"]}
    page = await client.get("/ui/collections/orders", params={**query, "sort": "total"})
    assert page.status_code == 200
    assert skus(page.text) == ["a-1", "e-5", "c-3"]
    # The form keeps the filters it was sent.
    assert 'value="paid,shipped"' in page.text

    ends = {"field": "sku", "op": "matches", "value": "^[ab]-"}
    assert skus((await client.get("/ui/collections/orders", params=ends)).text) == ["b-2", "a-1"]
    absent = {"field": "note", "op": "exists", "value": "false", "sort": "sku"}
    page = await client.get("/ui/collections/orders", params=absent)
    assert skus(page.text) == ["a-1", "b-2", "c-3", "e-5"]


async def test_sort_ascending_and_descending(server: Server) -> None:
    up = await server.client.get("/ui/collections/orders", params={"sort": "total"})
    assert skus(up.text) == ["d-4", "b-2", "a-1", "e-5", "c-3"]
    down = await server.client.get("/ui/collections/orders", params={"sort": "-total"})
    assert skus(down.text) == ["c-3", "e-5", "a-1", "b-2", "d-4"]
    # The column header sorts the other way next, keeping the filters.
    assert "sort=-total" in up.text


async def test_pages_follow_next_and_previous_links(server: Server) -> None:
    client = server.client
    params = {"field": "status", "op": "not_equal", "value": "refunded"}
    first = await client.get("/ui/collections/orders", params={**params, "sort": "sku", "limit": 2})
    assert skus(first.text) == ["a-1", "b-2"]
    assert 'id="previous-page"' not in first.text
    link = re.search(r'id="next-page" href="([^"]+)"', first.text)
    assert link is not None
    second = await client.get("/ui/collections/orders" + link[1].replace("&amp;", "&"))
    assert skus(second.text) == ["c-3", "e-5"]
    assert 'id="next-page"' not in second.text
    back = re.search(r'id="previous-page" href="([^"]+)"', second.text)
    assert back is not None
    again = await client.get("/ui/collections/orders" + back[1].replace("&amp;", "&"))
    assert skus(again.text) == ["a-1", "b-2"]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"field": "total", "op": "bigger", "value": "1"}, "an operator, one of"),
        ({"field": "total", "op": "gt", "value": "lots"}, "gt takes a number"),
        ({"field": "sku", "op": "matches", "value": "(a)\\1"}, "a regular expression RE2"),
        ({"field": "no such", "op": "equal", "value": "1"}, "a field name"),
        ({"field": "note", "op": "exists", "value": "maybe"}, "true or false"),
        ({"sort": "-"}, "sort:"),
        ({"offset": "-3"}, "offset:"),
    ],
)
async def test_a_bad_filter_is_shown_on_the_page_with_400(
    server: Server, query: dict[str, str], says: str
) -> None:
    page = await server.client.get("/ui/collections/orders", params=query)
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    error = re.search(r'id="filter-error">([^<]*)<', page.text)
    assert error is not None
    assert says in error[1]
    assert 'id="collection-filter"' in page.text  # the form, to fix it


async def test_record_values_and_filter_input_are_escaped(server: Server) -> None:
    hostile = "<script>alert(1)</script>"
    await server.client.post("/api/collections/orders/records", json={"sku": hostile})
    page = await server.client.get("/ui/collections/orders")
    assert hostile not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    bad = await server.client.get(
        "/ui/collections/orders", params={"field": "sku", "op": "<b>x</b>", "value": hostile}
    )
    assert bad.status_code == 400
    assert "<b>x</b>" not in bad.text
    assert hostile not in bad.text
    assert (await server.client.get("/ui/collections/Bad%3Cname%3E")).status_code == 404


async def test_with_keys_the_pages_need_a_signed_in_admin(make_store: StoreFactory) -> None:
    async with running_server([ORDERS], store=make_store(), admin_keys=["k-ui"]) as server:
        client = server.client
        for path in ("/ui/collections", "/ui/collections/orders"):
            refused = await client.get(path)
            assert refused.status_code == 302
            assert "/ui/login" in refused.headers["location"]
        wrong = await client.get("/ui/collections", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 302
        await client.post("/ui/login", data={"key": "k-ui"})
        assert (await client.get("/ui/collections/orders")).status_code == 200


def test_filter_values_are_read_as_the_operator_needs() -> None:
    assert parse_filter("total", "gt", "2.5").operand == 2.5
    assert parse_filter("tags", "includes", "vip").operand == "vip"
    assert parse_filter("n", "equal", "5").operand == 5
    assert parse_filter("sku", "starts_with", "12").operand == "12"
    assert parse_filter("s", "in", '["a", 1]').operand == ["a", 1]
    assert parse_filter("s", "in", "a, 2").operand == ["a", 2]
    assert parse_filter("s", "empty", "").operand is True
    with pytest.raises(BadFilter, match="gte takes a number"):
        parse_filter("total", "gte", "true")
    assert columns_of([{"id": "1", "b": 1, "created_at": 0}, {"a": 2}]) == [
        "id",
        "b",
        "a",
        "created_at",
        "updated_at",
    ]
