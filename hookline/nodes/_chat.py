"""The ``chat`` node: a message to a chat platform's incoming webhook or robot.

Fields: ``provider`` (``slack``, ``dingtalk``, ``wecom``, ``feishu``, ``teams`` or
``discord``), ``url`` (the webhook or robot URL the platform gave), exactly one of
``text``, ``markdown`` or ``payload``, and ``secret`` for DingTalk's and Feishu's signed
robots. A DingTalk markdown message's title (shown in notifications) is its first line.
``retry``, ``ignore_fail`` and ``only_data`` are the ``http`` node's, and so is
everything else: the engine's client, the address guard (``http_node.allow_hosts``),
the ``Idempotency-Key``. Every field is a template.

Each provider gets the body its documentation describes:

=========  =====================================  =====================================
provider   ``text``                               ``markdown``
=========  =====================================  =====================================
slack      ``{text}``                             a ``mrkdwn`` section block (and text)
discord    ``{content}``                          ``{content}`` (Discord reads markdown)
teams      an Adaptive Card with a TextBlock      the same (TextBlock reads markdown)
dingtalk   ``{msgtype: text, text: {content}}``   ``{msgtype: markdown, markdown:
                                                  {title, text}}``
wecom      ``{msgtype: text, text: {content}}``   ``{msgtype: markdown, markdown:
                                                  {content}}``
feishu     ``{msg_type: text, content: {text}}``  an interactive card, ``lark_md`` text
=========  =====================================  =====================================

``payload`` (a mapping) is sent as the body as it is, for what the table does not
cover (mentions, buttons, cards). Signing applies to it too:

- DingTalk: ``timestamp`` (ms) and ``sign`` (base64 HMAC-SHA256 of ``timestamp + "\\n" +
  secret`` keyed with the secret) are added to the URL's query;
- Feishu/Lark: ``timestamp`` (s) and ``sign`` (base64 HMAC-SHA256 keyed with
  ``timestamp + "\\n" + secret``, of nothing) are added to the body.

DingTalk, WeCom and Feishu answer HTTP 200 even when they refuse a message; their
``errcode``/``code`` is checked, and a refusal fails the job (unless ``ignore_fail``).
The URL is never written to the job's log or error: its path or query is the
credential. The result is the ``http`` node's (``{status, headers, data}``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ..definition import JSON, Compiled, Fields
from ..errors import NodeError
from ._base import Job, NodeResult, NodeSpec
from ._http import HttpNode, _parse_retry, idempotency_key
from ._registry import NodeListParser, register

if TYPE_CHECKING:
    import httpx

__all__ = ["PROVIDERS", "ChatNode", "dingtalk_sign", "feishu_sign"]

PROVIDERS = ("slack", "dingtalk", "wecom", "feishu", "teams", "discord")
SIGNED = frozenset({"dingtalk", "feishu"})
_CODE_IN_BODY = frozenset({"dingtalk", "wecom", "feishu"})
_ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: base64 HMAC-SHA256 of ``"{timestamp}\\n{secret}"``
    keyed with the secret (to be URL-encoded into the ``sign`` parameter)."""
    signed = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def feishu_sign(secret: str, timestamp: int) -> str:
    """Feishu/Lark's bot signature: base64 HMAC-SHA256 keyed with
    ``"{timestamp}\\n{secret}"``, of an empty message."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def message_body(provider: str, kind: str, content: str) -> dict[str, JSON]:
    """The JSON body of a ``text`` or ``markdown`` message for ``provider``."""
    if provider == "slack":
        if kind == "text":
            return {"text": content}
        block: dict[str, JSON] = {"type": "section", "text": {"type": "mrkdwn", "text": content}}
        return {"text": content, "blocks": [block]}
    if provider == "discord":
        return {"content": content}
    if provider == "teams":
        card: dict[str, JSON] = {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.4",
            "body": [{"type": "TextBlock", "text": content, "wrap": True}],
        }
        return {
            "type": "message",
            "attachments": [{"contentType": _ADAPTIVE_CARD, "content": card}],
        }
    if provider == "dingtalk":
        if kind == "text":
            return {"msgtype": "text", "text": {"content": content}}
        lines = content.strip().splitlines()
        title = lines[0].lstrip("#> ").strip()[:64] if lines else ""
        return {"msgtype": "markdown", "markdown": {"title": title or "message", "text": content}}
    if provider == "wecom":
        if kind == "text":
            return {"msgtype": "text", "text": {"content": content}}
        return {"msgtype": "markdown", "markdown": {"content": content}}
    # feishu
    if kind == "text":
        return {"msg_type": "text", "content": {"text": content}}
    element: dict[str, JSON] = {"tag": "div", "text": {"tag": "lark_md", "content": content}}
    return {"msg_type": "interactive", "card": {"elements": [element]}}


@attrs.frozen
class ChatNode:
    """A chat message to send; see the module docstring for the fields."""

    provider: str
    url: Compiled
    kind: str  # text, markdown or payload
    message: Compiled
    http: HttpNode
    secret: Compiled | None = None
    handles_retry: ClassVar[bool] = True

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        url = _rendered_text(job, self.url, "url")
        secret = None if self.secret is None else _rendered_text(job, self.secret, "secret")
        body = self._body(job)
        query: dict[str, str] = {}
        now = time.time()
        if secret is not None and self.provider == "dingtalk":
            timestamp_ms = int(now * 1000)
            query = {"timestamp": str(timestamp_ms), "sign": dingtalk_sign(secret, timestamp_ms)}
        elif secret is not None and self.provider == "feishu":
            timestamp = int(now)
            body = {**body, "timestamp": str(timestamp), "sign": feishu_sign(secret, timestamp)}
        result = await self.http.send(
            job, _builder(job, url, query, body), shown=f"the {self.provider} webhook"
        )
        self._check_answer(job, result)
        return result

    def _body(self, job: Job) -> dict[str, JSON]:
        value = job.render(self.message)
        if self.kind == "payload":
            if not isinstance(value, Mapping):
                raise NodeError(f"payload: expected an object, got {_shown(value)}")
            return json.loads(json.dumps(value, default=str))  # type: ignore[no-any-return]
        if value is None:
            raise NodeError(f"{self.kind}: the message is empty")
        content = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return message_body(self.provider, self.kind, content)

    def _check_answer(self, job: Job, result: NodeResult) -> None:
        """DingTalk, WeCom and Feishu say 200 and refuse in the body."""
        if self.provider not in _CODE_IN_BODY:
            return
        output = result.output
        data = (
            output.get("data") if isinstance(output, dict) and not self.http.only_data else output
        )
        if not isinstance(data, dict):
            return
        code = data.get("errcode", data.get("code", data.get("StatusCode")))
        if code in (None, 0, "0"):
            return
        message = data.get("errmsg", data.get("msg", data.get("StatusMessage", "")))
        problem = f"the {self.provider} webhook refused the message: {code} {message}".strip()
        if not self.http.ignore_fail:
            raise NodeError(problem)
        job.log(f"{problem} (ignored: ignore_fail)")


def _builder(
    job: Job, url: str, query: dict[str, str], body: dict[str, JSON]
) -> Callable[[httpx.AsyncClient], httpx.Request]:
    def build(client: httpx.AsyncClient) -> httpx.Request:
        import httpx

        try:
            target = httpx.URL(url)
            if query:
                target = target.copy_merge_params(query)
            return client.build_request(
                "POST",
                target,
                json=body,
                headers={"Idempotency-Key": idempotency_key(job)},
                timeout=job.node.timeout,
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError, ValueError):
            # The URL is the credential: the error does not repeat it.
            raise NodeError("url: not a valid http:// or https:// URL") from None

    return build


def _rendered_text(job: Job, template: Compiled, field: str) -> str:
    value = job.render(template)
    if not isinstance(value, str) or not value:
        raise NodeError(f"{field}: expected a non-empty string, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    return "null" if value is None else type(value).__name__


@register("chat")
def parse(fields: Fields, nodes: NodeListParser) -> ChatNode:
    provider = fields.choice("provider", PROVIDERS)
    url = fields.template("url")
    kinds = [name for name in ("text", "markdown", "payload") if fields.has(name)]
    if len(kinds) != 1:
        expected = "exactly one of text, markdown and payload"
        fields.fail(
            kinds[1] if kinds else "text", expected + (f" (also {kinds[0]})" if kinds else "")
        )
    kind = kinds[0]
    if kind == "payload":
        fields.mapping("payload")
    secret = fields.template("secret", None)
    if secret is not None and provider not in SIGNED:
        fields.fail("secret", "no secret: only dingtalk and feishu robots sign their requests")
    http = HttpNode(
        url=url,
        method="POST",
        retry=_parse_retry(fields),
        ignore_fail=fields.boolean("ignore_fail", default=False),
        only_data=fields.boolean("only_data", default=False),
    )
    return ChatNode(
        provider=provider,
        url=url,
        kind=kind,
        message=fields.template(kind),
        http=http,
        secret=secret,
    )
