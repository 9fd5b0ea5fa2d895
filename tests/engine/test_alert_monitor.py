"""The alert monitor against a running engine: a failing workflow sends one FIRING
notice to the chat webhook and by email (a real SMTP server on loopback), nothing
more while it keeps failing, then a RESOLVED one; /metrics and the UI's states show it."""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from hookline._config import SmtpConfig
from hookline.engine._alert_monitor import AlertMonitor, AlertsConfig, alert_monitor
from hookline.engine._alerts import AlertRule
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.http._metrics import engine_metrics
from hookline.testing import register_test_nodes
from tests.conftest import FLAKY_WORKFLOW

register_test_nodes()

FLAKY = load_workflow_text(
    FLAKY_WORKFLOW,
    source="flaky.yaml",
)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, SmtpConfig]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, SmtpConfig(host="127.0.0.1", port=port, sender="hookline@example.com")
    controller.stop()


async def test_a_failing_workflow_alerts_once_by_chat_and_email_then_recovers(
    smtp: tuple[Inbox, SmtpConfig],
) -> None:
    inbox, smtp_config = smtp
    posted: list[dict[str, Any]] = []

    def chat(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(200)

    config = AlertsConfig(
        rules=(AlertRule("failing", "failure_rate", 0.5, window=600, min_executions=2),),
        chat_url="https://chat.example/hooks/ops",
        email_to=("ops@example.com",),
    )
    async with open_engine([FLAKY], smtp=smtp_config) as engine:
        monitor = AlertMonitor(engine, config, transport=httpx.MockTransport(chat))
        assert alert_monitor(engine) is monitor
        for _ in range(2):
            await engine.run("flaky", data={"n": -1})
        (fired,) = await monitor.check()
        await engine.run("flaky", data={"n": -1})
        assert await monitor.check() == []  # still failing: said once
        (state,) = monitor.states()
        assert (state.rule, state.workflow, state.firing) == ("failing", "flaky", True)
        scraped = engine_metrics(engine).render().decode()
        assert (
            'hookline_alert_firing{alert="failing",metric="failure_rate",workflow="flaky"} 1.0'
            in scraped
        )
        for _ in range(4):
            await engine.run("flaky", data={"n": 1})
        (recovered,) = await monitor.check()
    assert (fired.state, recovered.state) == ("firing", "resolved")
    assert [p["state"] for p in posted] == ["firing", "resolved"]
    assert (
        posted[0]["text"]
        == "[hookline] FIRING failing: workflow flaky failure rate 100% (above 50%)"
    )
    assert posted[0]["workflow"] == "flaky"
    subjects = [str(m["Subject"]).strip() for m in inbox.messages]
    assert subjects == [posted[0]["text"], posted[1]["text"]]
    assert monitor.sent == 4
    assert monitor.send_failures == 0


async def test_a_chat_endpoint_that_fails_is_counted_not_raised() -> None:
    config = AlertsConfig(
        rules=(AlertRule("failing", "failure_rate", 0.0, min_executions=1),),
        chat_url="https://chat.example/hooks/ops",
    )
    async with open_engine([FLAKY]) as engine:
        down = httpx.MockTransport(lambda request: httpx.Response(503))
        monitor = AlertMonitor(engine, config, transport=down)
        await engine.run("flaky", data={"n": -1})
        (notice,) = await monitor.check()
    assert notice.state == "firing"
    assert (monitor.sent, monitor.send_failures) == (0, 1)


async def test_a_chat_provider_gets_the_chat_nodes_message_body() -> None:
    posted: list[Any] = []

    def chat(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(200, json={"errcode": 0})

    config = AlertsConfig(
        rules=(AlertRule("failing", "failure_rate", 0.0, min_executions=1),),
        chat_url="https://oapi.dingtalk.example/robot/send?access_token=t",
        chat_provider="dingtalk",
    )
    async with open_engine([FLAKY]) as engine:
        monitor = AlertMonitor(engine, config, transport=httpx.MockTransport(chat))
        await engine.run("flaky", data={"n": -1})
        (notice,) = await monitor.check()
    assert posted == [{"msgtype": "text", "text": {"content": notice.text()}}]
