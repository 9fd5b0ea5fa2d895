"""The executions page's Retry all / Replay all buttons: a paced bulk run over the
page's filter, its progress page, and hookline's alert and invalid-file states."""

from __future__ import annotations

import re

import trio

from hookline.engine._alert_monitor import AlertMonitor, AlertsConfig
from hookline.engine._alerts import AlertRule
from hookline.testing import register_test_nodes
from tests.conftest import FLAKY_WORKFLOW, StoreFactory
from tests.http.conftest import running_server

register_test_nodes()

FLAKY = FLAKY_WORKFLOW


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_retry_all_from_the_executions_page_shows_its_progress(
    make_store: StoreFactory,
) -> None:
    async with running_server([FLAKY], store=make_store()) as server:
        client = server.client
        for n in (-1, -2, 3):
            await server.engine.run("flaky", data={"n": n})
        page = (await client.get("/ui/executions?workflow=flaky&status=failed")).text
        assert 'value="retry">Retry all</button>' in page
        started = await client.post(
            "/ui/bulk",
            data={"csrf": csrf(page), "action": "retry", "workflow": "flaky", "status": "failed"},
        )
        assert started.status_code == 303
        run_page = started.headers["location"]
        assert run_page.startswith("/ui/bulk/")
        first = (await client.get(run_page)).text
        assert "bulk retry of 2 executions started" in first
        with trio.fail_after(10):
            while True:
                shown = (await client.get(run_page)).text
                if 'id="bulk-state">finished' in shown:
                    break
                assert 'http-equiv="refresh"' in shown
                await trio.sleep(0.02)
        assert "2 of 2 done, 0 failed" in shown
        forged = await client.post("/ui/bulk", data={"csrf": "nope", "action": "retry"})
        assert forged.status_code == 403
        assert (await client.get("/ui/bulk/nope")).status_code == 404


async def test_the_workflows_page_shows_alert_states(make_store: StoreFactory) -> None:
    rule = AlertRule("failing", "failure_rate", 0.5, min_executions=1)
    async with running_server([FLAKY], store=make_store()) as server:
        monitor = AlertMonitor(server.engine, AlertsConfig(rules=(rule,)))
        await server.engine.run("flaky", data={"n": -1})
        await monitor.check()
        page = (await server.client.get("/ui/")).text
    assert '<tr data-alert="failing" data-workflow="flaky">' in page
    assert '<span class="pill failed">firing</span>' in page
