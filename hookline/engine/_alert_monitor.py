"""The ``alerts:`` of the server config carried out: every ``check_every`` seconds the
monitor reads the engine's statistics, asks :class:`~._alerts.AlertBook` what changed,
and sends each notice to a chat webhook and/or by email through the ``smtp:`` server,
as the ``email`` node sends. The chat body is the ``chat`` node's for
``chat_provider`` (:func:`~hookline.nodes._chat.message_body`), or without one a JSON
object ``{"text": ..., "alert": ..., "state": ...}`` (Slack, Mattermost and Rocket.Chat
incoming webhooks read its ``text``).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..errors import NodeError
from ..nodes._chat import message_body
from ..nodes._email import send_message
from ._alerts import AlertBook, AlertNotice, AlertRule, AlertState, Gauges

if TYPE_CHECKING:
    import httpx

    from ._engine import Engine

__all__ = ["AlertMonitor", "AlertsConfig", "alert_monitor"]

log = logging.getLogger("hookline.alerts")

#: The longest a notice may take to send before it counts as failed.
SEND_TIMEOUT = 10.0


@attrs.frozen
class AlertsConfig:
    """``alerts:``: the rules, how often they are checked, and where notices go."""

    rules: tuple[AlertRule, ...] = ()
    check_every: float = 15.0
    chat_url: str | None = attrs.field(default=None, repr=False)
    email_to: tuple[str, ...] = ()
    #: The chat platform whose message body the chat webhook takes (the ``chat`` node's
    #: providers: slack, teams, discord, dingtalk, wecom, feishu); None: a plain JSON
    #: object with ``text`` and the notice's fields.
    chat_provider: str | None = None


_MONITORS: weakref.WeakKeyDictionary[Engine, AlertMonitor] = weakref.WeakKeyDictionary()


def alert_monitor(engine: Engine) -> AlertMonitor | None:
    """The monitor running for ``engine``, if any (the UI and /metrics show its states)."""
    return _MONITORS.get(engine)


class AlertMonitor:
    """Checks ``config.rules`` against ``engine`` and sends their notices."""

    def __init__(
        self,
        engine: Engine,
        config: AlertsConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.book = AlertBook(config.rules)
        self._transport = transport
        self._counts: dict[str, tuple[int, int, int]] = {}
        #: Notices sent, and sends that failed (each logged).
        self.sent = 0
        self.send_failures = 0
        _MONITORS[engine] = self

    def states(self) -> list[AlertState]:
        return self.book.states()

    async def run(
        self, *, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Check every ``check_every`` seconds until cancelled; started with the scope
        that stops it."""
        with trio.CancelScope() as scope:
            task_status.started(scope)
            while True:
                await trio.sleep(self.config.check_every)
                await self.check()

    async def check(self) -> list[AlertNotice]:
        """Check the rules once now; send and return the notices due."""
        now = self.engine.clock()
        gauges: dict[str, Gauges] = {}
        for stats in self.engine.statistics().workflows:
            bad = stats.failed + stats.timed_out
            self._record(stats.workflow, now, stats.completed, stats.cancelled, bad)
            oldest = stats.oldest_queued_at
            gauges[stats.workflow] = Gauges(
                queue_depth=stats.queue.depth,
                oldest_queued=max(0.0, now - oldest) if oldest is not None else 0.0,
            )
        notices = self.book.evaluate(now, gauges)
        for notice in notices:
            log.warning("%s", notice.text())
            await self._send(notice)
        return notices

    def _record(self, workflow: str, now: float, completed: int, cancelled: int, bad: int) -> None:
        before = self._counts.get(workflow, (0, 0, 0))
        if completed < before[0]:
            before = (0, 0, 0)  # a new version: its supervisor counts from zero
        self._counts[workflow] = (completed, cancelled, bad)
        failed = bad - before[2]
        ended = completed - before[0] - (cancelled - before[1])
        for index in range(min(ended, 10_000)):
            self.book.record(workflow, now, failed=index < failed)

    async def _send(self, notice: AlertNotice) -> None:
        import httpx  # here: `import hookline` loads no HTTP client (tests/test_embedding.py)

        with trio.move_on_after(SEND_TIMEOUT) as scope:
            for channel, send in self._channels():
                try:
                    await send(notice)
                except (httpx.HTTPError, NodeError, OSError) as exc:
                    self.send_failures += 1
                    name = notice.rule.name
                    log.error("alert %s could not be sent by %s: %s", name, channel, exc)
                else:
                    self.sent += 1
        if scope.cancelled_caught:
            self.send_failures += 1
            log.error("alert %s: sending took over %.0f s", notice.rule.name, SEND_TIMEOUT)

    def _channels(self) -> Iterable[tuple[str, Any]]:
        if self.config.chat_url is not None:
            yield "chat", self._post_chat
        if self.config.email_to:
            yield "email", self._email

    async def _post_chat(self, notice: AlertNotice) -> None:
        assert self.config.chat_url is not None
        import httpx

        async with httpx.AsyncClient(transport=self._transport, timeout=SEND_TIMEOUT) as client:
            provider = self.config.chat_provider
            body = (
                _payload(notice)
                if provider is None
                else message_body(provider, "text", notice.text())
            )
            answer = await client.post(self.config.chat_url, json=body)
            answer.raise_for_status()

    async def _email(self, notice: AlertNotice) -> None:
        smtp = self.engine.services.smtp
        if smtp is None:
            raise NodeError("no smtp: section in the server config")
        message = EmailMessage()
        message["Subject"] = notice.text()
        message["From"] = smtp.sender
        message["To"] = ", ".join(self.config.email_to)
        message.set_content(_body(notice))
        await send_message(
            smtp, message, smtp.sender, list(self.config.email_to), timeout=SEND_TIMEOUT
        )


def _payload(notice: AlertNotice) -> dict[str, Any]:
    return {
        "text": notice.text(),
        "alert": notice.rule.name,
        "state": notice.state,
        "workflow": notice.workflow,
        "metric": notice.rule.metric,
        "value": notice.value,
        "threshold": notice.rule.threshold,
        "at": notice.at,
    }


def _body(notice: AlertNotice) -> str:
    lines = [f"{key}: {value}" for key, value in _payload(notice).items() if key != "text"]
    return notice.text() + "\n\n" + "\n".join(lines) + "\n"
