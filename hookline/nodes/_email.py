"""The ``email`` node: send a message through the server's SMTP relay (``smtp:`` config).

Fields (each a template): ``to`` (required), ``cc``, ``bcc`` (each an address, a
comma-separated string of them, or a list), ``subject`` (required), ``text`` and/or
``html`` (at least one; both make a ``multipart/alternative`` message), ``from``
(default ``smtp.from``), ``reply_to``. ``bcc`` recipients get the message through the
envelope only; no header names them.

Webhook data is kept in its place:

- every value rendered into ``html`` is HTML-escaped (``<`` becomes ``&lt;``, quotes
  too), so a sender's ``<img src=x onerror=...>`` shows as text. A value that is HTML you
  trust (made by your own ``code`` node, say) is marked ``{{ $nodes.page.html | safe }}``
  and inserted as it is; never mark what the sender wrote. ``text`` and ``subject`` are
  not HTML and are not escaped;
- in an address field with a template in it, each rendered string holds one address:
  a rendered ``"x@example.com, y@evil.example"`` fails the job instead of mailing both.
  For several recipients, render a list (``to: "{{$context.data.emails}}"`` with a JSON
  array) or write a list of templates. Comma-separated strings are read only in fields
  that hold no template.

The result is ``{message_id, accepted}``: the ``Message-ID`` sent and the recipients the
server accepted. The job fails when the server cannot be reached, refuses the login or
refuses every recipient.

Sending uses the standard library's :mod:`smtplib` (STARTTLS, implicit TLS, login) in a
worker thread. Every socket operation has the node's timeout, and a cancelled job shuts
the socket down, so the thread ends at once rather than waiting on a silent server.
"""

from __future__ import annotations

import contextlib
import functools
import json
import smtplib
import socket
import ssl
import threading
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid
from typing import Any, Literal, Protocol, overload

import attrs
import trio

from ..definition import JSON, Compiled, Fields, compile_html
from ..errors import NodeError, TemplateError
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register


class SmtpConfig(Protocol):
    """What the node reads of the server's ``smtp:`` section.

    The server passes its own config record; nodes sit below the server's config, so they
    name only the fields they read.
    """

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def starttls(self) -> bool: ...
    @property
    def ssl(self) -> bool: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def sender(self) -> str: ...


@attrs.frozen
class EmailNode:
    """A message to send; see the module docstring for the fields."""

    to: Compiled
    subject: Compiled
    cc: Compiled | None = None
    bcc: Compiled | None = None
    text: Compiled | None = None
    html: Compiled | None = None
    sender: Compiled | None = None
    reply_to: Compiled | None = None

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        config = job.services.smtp
        if config is None:
            raise NodeError("no SMTP server is configured (smtp: in the server config)")
        message, sender, recipients = self._message(job, config)
        refused = await send_message(config, message, sender, recipients, job.node.timeout)
        accepted: list[JSON] = [address for address in recipients if address not in refused]
        for address, (code, reply) in refused.items():
            job.log(f"{address} refused by the server: {code} {reply.decode(errors='replace')}")
        return NodeResult(output={"message_id": message["Message-ID"], "accepted": accepted})

    def _message(self, job: Job, config: SmtpConfig) -> tuple[EmailMessage, str, list[str]]:
        written = _addresses(job, self.sender, "from") if self.sender is not None else []
        if len(written) > 1:
            raise NodeError("from: expected one address")
        sender = written[0] if written else _parse_addresses(config.sender, "smtp.from")[0]
        to = _addresses(job, self.to, "to")
        cc = _addresses(job, self.cc, "cc")
        bcc = _addresses(job, self.bcc, "bcc")
        if not to + cc + bcc:
            raise NodeError("to: expected at least one recipient")
        message = EmailMessage()
        domain = sender[1].rpartition("@")[2] or "hookline"
        try:
            message["From"] = formataddr(sender)
            message["To"] = ", ".join(formataddr(address) for address in to)
            if cc:
                message["Cc"] = ", ".join(formataddr(address) for address in cc)
            if self.reply_to is not None:
                reply_to = _addresses(job, self.reply_to, "reply_to")
                if reply_to:
                    message["Reply-To"] = ", ".join(formataddr(address) for address in reply_to)
            message["Subject"] = _text(job.render(self.subject))
            message["Date"] = formatdate(usegmt=True)
            message["Message-ID"] = make_msgid(domain=domain)
        except ValueError as exc:  # a line break in a header: refused, never injected
            raise NodeError(f"bad header value: {exc}") from None
        text = None if self.text is None else _text(job.render(self.text))
        html = None if self.html is None else _text(job.render(self.html))
        if html is None:
            message.set_content(text or "")
        elif text is None:
            message.set_content(html, subtype="html")
        else:
            message.set_content(text)
            message.add_alternative(html, subtype="html")
        envelope = list(dict.fromkeys(address for _, address in to + cc + bcc))
        return message, sender[1], envelope


async def send_message(
    config: SmtpConfig, message: EmailMessage, sender: str, recipients: list[str], timeout: float
) -> dict[str, tuple[int, bytes]]:
    """Send ``message`` from ``sender`` to ``recipients`` (the envelope) through the
    server of ``config``; return the recipients it refused, with its reply.

    Raises :class:`NodeError` when the server cannot be reached, a TLS handshake or the
    login fails, or every recipient is refused. Cancellation aborts the connection.
    """
    connection = _Connection()
    send = functools.partial(
        _send_blocking,
        config,
        message,
        sender=sender,
        recipients=recipients,
        timeout=timeout,
        connection=connection,
    )
    try:
        return await trio.to_thread.run_sync(send, abandon_on_cancel=True)
    finally:
        connection.abort()


class _Connection:
    """The worker thread's socket, so that the trio side can abort it at any time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._aborted = False

    def adopt(self, sock: socket.socket) -> None:
        """Called as soon as the socket exists; shuts it down if already aborted."""
        with self._lock:
            # A duplicate shares the connection, so it still reaches it after TLS
            # wraps (and detaches) the original.
            self._socket = sock.dup()
            aborted = self._aborted
        if aborted:
            self.abort()

    def abort(self) -> None:
        """Shut the connection down: a recv() blocked in the worker thread returns at
        once (closing a descriptor would not wake it)."""
        with self._lock:
            self._aborted = True
            sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class _Client(smtplib.SMTP):
    """smtplib's client, handing its socket to a :class:`_Connection` the moment it is
    connected (before the greeting, before TLS), with implicit TLS when ``tls`` is set."""

    def __init__(
        self, connection: _Connection, host: str, timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(timeout=timeout)
        self._host = host  # TLS, implicit or STARTTLS, checks the certificate against it
        self._connection = connection
        self._tls = tls

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), timeout, self.source_address)
        self._connection.adopt(sock)
        if self._tls is not None:
            return self._tls.wrap_socket(sock, server_hostname=self._host)
        return sock


def _send_blocking(
    config: SmtpConfig,
    message: EmailMessage,
    *,
    sender: str,
    recipients: list[str],
    timeout: float,
    connection: _Connection,
) -> dict[str, tuple[int, bytes]]:
    where = f"{config.host}:{config.port}"
    context = ssl.create_default_context()
    client = _Client(connection, config.host, timeout, context if config.ssl else None)
    try:
        client.connect(config.host, config.port)
        client.ehlo_or_helo_if_needed()
        if config.starttls:
            client.starttls(context=context)
            client.ehlo()
        if config.username:
            client.login(config.username, config.password or "")
        refused: dict[str, tuple[int, bytes]] = client.send_message(
            message, from_addr=sender, to_addrs=recipients
        )
        client.quit()
        return refused
    except smtplib.SMTPRecipientsRefused as exc:
        details = "; ".join(
            f"{address}: {code} {reply.decode(errors='replace')}"
            for address, (code, reply) in exc.recipients.items()
        )
        raise NodeError(f"{where} refused every recipient ({details})") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise NodeError(f"{where} refused the login: {_reply(exc)}") from None
    except smtplib.SMTPResponseException as exc:
        raise NodeError(f"{where} answered {_reply(exc)}") from None
    except (smtplib.SMTPException, OSError, ValueError) as exc:  # ssl errors are OSErrors
        raise NodeError(
            f"sending mail through {where} failed: {exc or type(exc).__name__}"
        ) from None
    finally:
        client.close()
        connection.abort()  # closes the duplicate socket


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
    return f"{exc.smtp_code} {text}".strip()


def _addresses(job: Job, template: Compiled | None, field: str) -> list[tuple[str, str]]:
    if template is None:
        return []
    value = job.render(template)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    found: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, str):
            raise NodeError(f"{field}: expected an email address, got {item!r}")
        addresses = _parse_addresses(item, field)
        if len(addresses) > 1 and not template.is_static:
            # A comma in webhook data must not add recipients.
            raise NodeError(
                f"{field}: a templated address holds one address, got {len(addresses)} in "
                f"{item!r}; render a list for several recipients"
            )
        found.extend(addresses)
    return found


def _parse_addresses(text: str, field: str) -> list[tuple[str, str]]:
    """``'Ann <ann@example.com>, bob@example.com'`` as (name, address) pairs."""
    if any(character in text for character in "\r\n\x00"):
        raise NodeError(f"{field}: an address cannot contain a line break")
    found: list[tuple[str, str]] = []
    for name, address in getaddresses([text]):
        if not address and not name:
            continue
        local, at, domain = address.rpartition("@")
        if not (local and at and domain) or any(c.isspace() for c in address):
            raise NodeError(f"{field}: not an email address: {text!r}")
        found.append((name, address))
    return found


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


@register("email")
def parse(fields: Fields, nodes: NodeListParser) -> EmailNode:
    if not (fields.has("text") or fields.has("html")):
        fields.fail("text", "a text or html body (or both); both fields are missing")
    addresses = {name: _address_field(fields, name) for name in ADDRESS_FIELDS}
    return EmailNode(
        to=_address_field(fields, "to", required=True),
        subject=fields.template("subject"),
        cc=addresses["cc"],
        bcc=addresses["bcc"],
        text=fields.template("text", None),
        html=_html_field(fields),
        sender=addresses["from"],
        reply_to=addresses["reply_to"],
    )


ADDRESS_FIELDS = ("cc", "bcc", "from", "reply_to")


def _html_field(fields: Fields) -> Compiled | None:
    """``html``, compiled so that every value is HTML-escaped unless marked ``| safe``."""
    written = fields.string("html", None, expected="HTML text, with {{...}} templates")
    if written is None:
        return None
    try:
        return compile_html(written)
    except TemplateError as exc:
        fields.fail("html", f"a valid template: {exc}")


@overload
def _address_field(fields: Fields, name: str, *, required: Literal[True]) -> Compiled: ...
@overload
def _address_field(fields: Fields, name: str) -> Compiled | None: ...
def _address_field(fields: Fields, name: str, *, required: bool = False) -> Compiled | None:
    """An address field, checked now when it holds no template."""
    template = fields.template(name) if required else fields.template(name, None)
    if template is None or not template.is_static:
        return template
    items = template.source if isinstance(template.source, list) else [template.source]
    for item in items:
        if not isinstance(item, str):
            fields.fail(name, "an email address, a list of them, or a template", item)
        try:
            _parse_addresses(item, name)
        except NodeError:
            fields.fail(name, "email addresses such as 'Ann <ann@example.com>'", item)
    return template
