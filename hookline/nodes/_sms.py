"""The ``sms`` node: a text message through an SMS provider's API.

Fields (templates): ``provider`` (``twilio``), ``account`` (the Account SID), ``token``
(its auth token, or an API key's secret with ``api_key`` naming the key's SID ``SK...``), ``from``
(a number in E.164 form, or a Messaging Service SID ``MG...``), ``to`` and ``body``;
``api_base`` replaces ``https://api.twilio.com`` (a test server, a regional edge).
``retry``, ``ignore_fail`` and ``only_data`` are the ``http`` node's, and so are the
engine's client, the address guard and the ``Idempotency-Key``.

Twilio gets what its Messages API documents: ``POST {api_base}/2010-04-01/Accounts/
{account}/Messages.json`` with HTTP basic authentication and the form fields ``To``,
``From`` (``MessagingServiceSid`` for an ``MG`` SID) and ``Body``. The result is the
``http`` node's; its ``data`` is Twilio's message resource (``sid``, ``status`` ...).
The token is never logged; a refusal (4xx) fails the job with Twilio's message.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

import attrs

from ..definition import Compiled, Fields
from ..errors import NodeError
from ._base import Job, NodeResult, NodeSpec
from ._http import HttpNode, _parse_retry, idempotency_key
from ._registry import NodeListParser, register

if TYPE_CHECKING:
    import httpx

__all__ = ["TWILIO_API", "SmsNode"]

TWILIO_API = "https://api.twilio.com"


@attrs.frozen
class SmsNode:
    """A text message to send; see the module docstring for the fields."""

    provider: str
    account: Compiled
    token: Compiled
    sender: Compiled
    to: Compiled
    body: Compiled
    http: HttpNode
    api_key: Compiled | None = None
    api_base: Compiled | None = None
    handles_retry: ClassVar[bool] = True

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        account = _text(job, self.account, "account")
        token = _text(job, self.token, "token")
        user = account if self.api_key is None else _text(job, self.api_key, "api_key")
        sender = _text(job, self.sender, "from")
        fields = {
            "To": _text(job, self.to, "to"),
            "MessagingServiceSid" if sender.startswith("MG") else "From": sender,
            "Body": _text(job, self.body, "body"),
        }
        base = TWILIO_API if self.api_base is None else _text(job, self.api_base, "api_base")
        path = f"/2010-04-01/Accounts/{urllib.parse.quote(account, safe='')}/Messages.json"
        url = base.rstrip("/") + path
        return await self.http.send(job, _builder(job, url, (user, token), fields))


def _builder(
    job: Job, url: str, auth: tuple[str, str], fields: dict[str, str]
) -> Callable[[httpx.AsyncClient], httpx.Request]:
    def build(client: httpx.AsyncClient) -> httpx.Request:
        import httpx

        # Basic authentication by hand: build_request takes no auth= (send does).
        credentials = httpx.BasicAuth(*auth)
        try:
            request = client.build_request(
                "POST",
                url,
                data=fields,
                headers={"Idempotency-Key": idempotency_key(job)},
                timeout=job.node.timeout,
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError, ValueError) as exc:
            raise NodeError(f"api_base: cannot build the request: {exc}") from None
        return next(credentials.auth_flow(request))

    return build


def _text(job: Job, template: Compiled, field: str) -> str:
    value = job.render(template)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise NodeError(f"{field}: expected a non-empty string")
    return value


@register("sms")
def parse(fields: Fields, nodes: NodeListParser) -> SmsNode:
    provider = fields.choice("provider", ("twilio",))
    account = fields.template("account")
    http = HttpNode(
        url=account,  # unused: the node builds its own URL
        method="POST",
        retry=_parse_retry(fields),
        ignore_fail=fields.boolean("ignore_fail", default=False),
        only_data=fields.boolean("only_data", default=False),
    )
    return SmsNode(
        provider=provider,
        account=account,
        token=fields.template("token"),
        api_key=fields.template("api_key", None),
        sender=fields.template("from"),
        to=fields.template("to"),
        body=fields.template("body"),
        api_base=fields.template("api_base", None),
        http=http,
    )
