"""The web UI over HTTP: pages render what the store holds, forms need CSRF tokens,
and access is the admin API's."""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from hookline.engine._definition import Workflow
from hookline.http._app import create_app
from hookline.http._ingress import configure_ingress
from hookline.http._security_headers import CONTENT_SECURITY_POLICY
from hookline.http._ui_tree import node_rows
from hookline.store._records import JobRecord
from tests.conftest import StoreFactory
from tests.http.conftest import (
    STANDARD,
    STEPS,
    Server,
    running_server,
    wait_until,
    workflows,
)


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "no CSRF token on the page"
    return found[1]


def node_classes(page: str) -> dict[str, str]:
    """node key -> status, as the SVG draws them."""
    return dict(re.findall(r'data-node="([^"]+)" data-status="([^"]+)"', page))


async def test_workflows_page_shows_state_and_recent_success_rate(server: Server) -> None:
    await server.client.post("/api/webhooks/steps", json={"n": 1})
    await server.client.post("/api/webhooks/steps", json={"n": 50})
    await server.client.post("/api/webhooks/fails", json={})

    page = (await server.client.get("/ui/")).text

    row = page[page.index('data-workflow="steps"') :]
    assert "100% of 2" in row[: row.index("</tr>")]
    row = page[page.index('data-workflow="fails"') :]
    assert "0% of 1" in row[: row.index("</tr>")]
    row = page[page.index('data-workflow="paused"') :]
    assert "disabled" in row[: row.index("</tr>")]


async def test_execution_page_draws_the_tree_coloured_by_job_status(server: Server) -> None:
    ok = (await server.client.post("/api/webhooks/steps", json={"n": 3})).json()
    bad = (await server.client.post("/api/webhooks/fails", json={})).json()

    page = (await server.client.get(f"/ui/executions/{ok['execution_id']}")).text
    assert node_classes(page) == {
        "first": "succeeded",
        "big": "succeeded",
        "large": "not_run",
        "small": "succeeded",
    }
    assert "<svg" in page
    assert ">then</text>" in page
    assert ">else</text>" in page

    page = (await server.client.get(f"/ui/executions/{bad['execution_id']}")).text
    assert node_classes(page) == {"stop": "succeeded"}
    assert 'class="pill failed"' in page
    assert 'id="node-stop"' in page  # the node's panel, that its picture links to


async def test_lists_filter_and_show_verdicts(server: Server) -> None:
    await server.client.post("/api/webhooks/steps", json={"n": 3})
    await server.client.post("/api/webhooks/nowhere", json={})
    await server.client.post("/api/webhooks/fails", json={})
    await server.engine.store.flush()

    failed = (await server.client.get("/ui/executions?status=failed")).text
    assert failed.count("data-execution=") == 1
    rejected = (await server.client.get("/ui/deliveries?verdict=rejected")).text
    assert "/api/webhooks/nowhere" in rejected
    assert "/api/webhooks/steps" not in rejected
    assert (await server.client.get("/ui/executions?status=bogus")).status_code == 400


THROTTLED = """
key: throttled
trigger: {type: webhook, path: throttled}
throttle: {limit: 1, period: 1h}
nodes: [{key: done, type: set, values: {ok: true}}]
"""


async def test_executions_list_shows_and_filters_throttled_ones() -> None:
    async with running_server([THROTTLED]) as server:
        for n in range(2):
            await server.client.post("/api/webhooks/throttled", json={"n": n})
        await wait_until(
            lambda: getattr(server.engine.workflow_statistics("throttled"), "throttled", 0) == 1
        )
        await server.engine.store.flush()

        page = (await server.client.get("/ui/executions")).text
        assert page.count('class="pill throttled"') == 1
        assert page.count('class="pill succeeded"') == 1
        assert "<option >throttled</option>" in page
        assert "<option >waiting</option>" in page
        throttled = (await server.client.get("/ui/executions?status=throttled")).text
        assert throttled.count("data-execution=") == 1
        assert "<option selected>throttled</option>" in throttled


async def test_delivery_page_redacts_secrets(server: Server) -> None:
    answer = await server.client.post(
        "/api/webhooks/orders/1?token=abc123",
        json={"n": 1},
        headers={"authorization": "Bearer s3cret"},
    )
    await server.engine.store.flush()
    delivery = (await server.client.get("/api/deliveries")).json()["deliveries"][0]
    assert delivery["execution_id"] == answer.json()["execution_id"]

    page = (await server.client.get(f"/ui/deliveries/{delivery['id']}")).text

    assert "s3cret" not in page
    assert "abc123" not in page
    assert "[redacted]" in page


async def test_forms_without_the_csrf_token_are_refused(server: Server) -> None:
    page = (await server.client.get("/ui/")).text
    token = csrf(page)

    forged = await server.client.post("/ui/workflows/orders/disable", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert server.engine.workflows["orders"].enabled

    done = await server.client.post("/ui/workflows/orders/disable", data={"csrf": token})
    assert done.status_code == 303
    assert not server.engine.workflows["orders"].enabled
    assert "orders disabled" in (await server.client.get("/ui/")).text


async def test_a_fresh_browser_has_no_token_to_send(server: Server) -> None:
    # Another site's form posts with the victim's cookies but cannot read the token.
    async with httpx.AsyncClient(base_url=server.url) as stranger:
        refused = await stranger.post("/ui/workflows/orders/disable", data={"csrf": ""})
    assert refused.status_code == 403
    assert server.engine.workflows["orders"].enabled


async def test_replay_button_starts_a_new_execution(server: Server) -> None:
    first = (await server.client.post("/api/webhooks/steps", json={"n": 3})).json()
    page = (await server.client.get(f"/ui/executions/{first['execution_id']}")).text

    answer = await server.client.post(
        f"/ui/executions/{first['execution_id']}/replay", data={"csrf": csrf(page)}
    )

    assert answer.status_code == 303
    new_id = answer.headers["location"].rsplit("/", 1)[-1]
    assert new_id != first["execution_id"]
    await wait_until(lambda: server.engine.pending() == 0)
    page = (await server.client.get(f"/ui/executions/{new_id}")).text
    assert 'id="execution-status">succeeded<' in page
    assert node_classes(page)["small"] == "succeeded"


async def test_retry_of_a_succeeded_execution_is_refused_with_a_message(server: Server) -> None:
    first = (await server.client.post("/api/webhooks/steps", json={"n": 3})).json()
    page = (await server.client.get(f"/ui/executions/{first['execution_id']}")).text

    answer = await server.client.post(
        f"/ui/executions/{first['execution_id']}/retry", data={"csrf": csrf(page)}
    )

    assert answer.headers["location"].endswith(first["execution_id"])
    assert "retry refused" in (await server.client.get(answer.headers["location"])).text


async def test_with_keys_the_ui_asks_to_sign_in(make_store: StoreFactory) -> None:
    async with running_server(STANDARD, admin_keys=["k-ui"], store=make_store()) as server:
        client = server.client
        redirect = await client.get("/ui/executions")
        assert redirect.status_code == 302
        assert "/ui/login" in redirect.headers["location"]

        wrong = await client.post("/ui/login", data={"key": "nope"})
        assert "not one of the admin keys" in wrong.text
        assert (await client.get("/ui/")).status_code == 302

        signed = await client.post("/ui/login?next=/ui/deliveries", data={"key": "k-ui"})
        assert signed.status_code == 302
        assert signed.headers["location"] == "/ui/deliveries"
        assert (await client.get("/ui/deliveries")).status_code == 200
        # The API still wants its Bearer key: a UI session is not an API credential.
        assert (await client.get("/api/executions")).status_code == 401
        # Assets need no session.
        assert (await client.get("/ui/static/ui.css")).status_code == 200


async def test_without_keys_only_loopback_sees_the_ui(server: Server) -> None:
    app: Any = create_app(server.engine)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://hookline") as outsider:
        assert (await outsider.get("/ui/")).status_code == 403
        assert (await outsider.post("/ui/workflows/orders/disable")).status_code == 403
    assert server.engine.workflows["orders"].enabled


def test_tree_rows_nest_branches_and_keep_unknown_jobs() -> None:
    (steps,) = workflows(STEPS)
    job = JobRecord("e1", "gone", "set", "failed", 1, 1.0, 1.5, None, "boom")
    rows = node_rows(steps, [JobRecord("e1", "first", "set", "succeeded", 1, 1.0, 1.25), job])

    shape = [(row.depth, row.label or row.key, row.status) for row in rows]
    assert shape == [
        (0, "first", "succeeded"),
        (0, "big", "not_run"),
        (1, "then", "label"),
        (2, "large", "not_run"),
        (1, "else", "label"),
        (2, "small", "not_run"),
        (0, "gone", "failed"),
    ]
    assert rows[0].seconds == 0.25
    assert rows[-1].error == "boom"
    assert all(a.y < b.y for a, b in itertools.pairwise(rows))


def test_tree_without_a_definition_lists_the_jobs() -> None:
    missing: Workflow | None = None
    rows = node_rows(missing, [JobRecord("e1", "a", "set", "running", 1, 1.0)])
    assert [(row.key, row.status, row.seconds) for row in rows] == [("a", "running", None)]


# -- reflected XSS, security headers, sessions (issue 13, finding 3) ---------------------

XSS = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/ui/executions/{XSS}", 404),
        (f"/ui/deliveries/{XSS}", 404),
        (f"/ui/executions?status={XSS}", 400),
        (f"/ui/executions?limit={XSS}", 400),
        (f"/ui/deliveries?verdict={XSS}", 400),
        (f"/ui/deliveries?limit={XSS}", 400),
    ],
)
async def test_error_pages_escape_what_the_request_put_in_them(
    server: Server, path: str, status: int
) -> None:
    page = await server.client.get(path)

    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert XSS not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_action_pages_escape_their_ids(server: Server) -> None:
    token = csrf((await server.client.get("/ui/")).text)
    cancel = await server.client.post(f"/ui/executions/{XSS}/cancel", data={"csrf": token})
    action = await server.client.post(f"/ui/workflows/orders/{XSS}", data={"csrf": token})
    for page in (cancel, action):
        assert page.status_code == 404
        assert XSS not in page.text


async def test_ui_and_admin_answers_carry_the_security_headers(server: Server) -> None:
    executed = (await server.client.post("/api/webhooks/steps", json={"n": 3})).json()
    answers = [
        await server.client.get(path)
        for path in (
            "/ui/",
            "/ui/executions",
            f"/ui/executions/{executed['execution_id']}",
            "/ui/deliveries",
            "/ui/login",
            "/ui/static/ui.js",
            "/ui/nowhere",
            "/api/executions",
            "/api/executions/01NOPE",
            "/api/openapi.json",
            "/metrics",
            "/healthz",
        )
    ]
    for answer in answers:
        headers = answer.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, answer.url
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    # A webhook's answer is the workflow's own: no policy of the operator's pages.
    webhook = await server.client.post("/api/webhooks/orders/1", json={"n": 1})
    assert "content-security-policy" not in webhook.headers


async def test_pages_have_no_inline_script_or_style(server: Server) -> None:
    executed = (await server.client.post("/api/webhooks/steps", json={"n": 3})).json()
    await server.client.post("/api/webhooks/steps", json={"n": 50})
    await server.engine.store.flush()
    delivery = (await server.client.get("/api/deliveries")).json()["deliveries"][0]
    for path in (
        "/ui/",
        "/ui/executions",
        f"/ui/executions/{executed['execution_id']}",
        "/ui/deliveries",
        f"/ui/deliveries/{delivery['id']}",
        "/ui/login",
        "/ui/executions/01NOPE",
    ):
        page = (await server.client.get(path)).text
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", page) == [], path
        assert re.findall(r"<style|\sstyle=|\son[a-z]+=|javascript:", page) == [], path


@asynccontextmanager
async def signed_in(
    app: Any, *, scheme: str = "http", **headers: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on loopback that signed in to ``app`` with the key ``k-ui``."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4000))
    base_url = f"{scheme}://hookline"
    async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers) as client:
        answer = await client.post("/ui/login", data={"key": "k-ui"})
        assert answer.status_code == 302
        yield client


async def test_the_session_cookie_is_secure_over_https(server: Server) -> None:
    app: Any = create_app(server.engine, admin_keys=["k-ui"])
    configure_ingress(app, trusted_proxies=[ipaddress.ip_network("127.0.0.1/32")])
    async with signed_in(app) as plain:
        assert [c.secure for c in plain.cookies.jar] == [False]
    async with signed_in(app, scheme="https") as direct:
        assert [c.secure for c in direct.cookies.jar] == [True]
    # TLS ended at a trusted proxy in front of hookline: the browser still used HTTPS.
    async with signed_in(app, **{"x-forwarded-proto": "https"}) as proxied:
        assert [c.secure for c in proxied.cookies.jar] == [True]


async def test_signing_out_ends_the_session_on_the_server(server: Server) -> None:
    app: Any = create_app(server.engine, admin_keys=["k-ui"])
    async with signed_in(app) as browser:
        stolen = dict(browser.cookies)
        page = await browser.get("/ui/")
        assert page.status_code == 200
        out = await browser.post("/ui/logout", data={"csrf": csrf(page.text)})
        assert out.status_code == 302
        assert (await browser.get("/ui/")).status_code == 302

    # A copy of the cookie taken before signing out no longer works.
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hookline", cookies=stolen
    ) as thief:
        replayed = await thief.get("/ui/")
        forged = await thief.post("/ui/workflows/orders/disable", data={"csrf": "x"})
    assert replayed.status_code == 302
    assert "/ui/login" in replayed.headers["location"]
    assert forged.status_code == 403
    assert server.engine.workflows["orders"].enabled
