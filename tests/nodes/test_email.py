"""The email node: what arrives at a real SMTP server on 127.0.0.1, and what fails.

aiosmtpd's Controller runs the server in its own thread; TLS uses a throwaway CA made
by trustme, trusted by the node through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import email
import email.policy
import functools
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from hookline._config import SmtpConfig
from hookline.definition import Fields
from hookline.engine._job import JobTicket, RunningJob
from hookline.engine._node_actor import NodeActor
from hookline.errors import DefinitionError, NodeError
from hookline.nodes._base import NodeServices, NodeSpec
from hookline.nodes._registry import parse_node

REFUSED = "ghost@example.com"


@attrs.define
class Received:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage
    login: bytes | None


@attrs.define
class Mailbox:
    """The test server's handler: keeps what arrived, refuses one recipient."""

    received: list[Received] = attrs.Factory(list)

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address == REFUSED:
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        login = session.auth_data.login if session.authenticated else None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, login))
        return "250 OK"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"bot", b"s3cret")
    return AuthResult(success=ok, handled=False, auth_data=data)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@attrs.define
class SmtpServer:
    mailbox: Mailbox
    config: SmtpConfig


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    return authority, bundle


def serve(
    request: pytest.FixtureRequest, ca: tuple[trustme.CA, Path], mode: str, **config: Any
) -> SmtpServer:
    mailbox = Mailbox()
    port = free_port()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca[0].issue_cert("127.0.0.1").configure_cert(tls)
    options: dict[str, Any] = {}
    if mode == "starttls":
        options = {"tls_context": tls, "require_starttls": True, "auth_required": True}
    elif mode == "ssl":
        options = {"ssl_context": tls, "auth_required": True, "auth_require_tls": False}
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=authenticate, **options
    )
    controller.start()
    request.addfinalizer(controller.stop)
    return SmtpServer(
        mailbox,
        SmtpConfig(host="127.0.0.1", port=port, sender="Hooks <hooks@example.com>", **config),
    )


@pytest.fixture
def smtp(request: pytest.FixtureRequest, ca: tuple[trustme.CA, Path]) -> SmtpServer:
    return serve(request, ca, "plain")


@pytest.fixture
def trusted(ca: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca[1]))


def parse(**fields: Any) -> NodeSpec:
    data = {"key": "mail", "type": "email", "subject": "Hi", "text": "Hello", **fields}
    return parse_node(Fields(data, source="w.yaml"))


def job(
    spec: NodeSpec, config: SmtpConfig | None, roots: dict[str, Any] | None = None
) -> RunningJob:
    return RunningJob("ex-1", spec, roots or {}, services=NodeServices(smtp=config))


async def test_a_templated_message_arrives_with_both_parts_and_bcc_only_in_the_envelope(
    smtp: SmtpServer,
) -> None:
    spec = parse(
        to="{{$context.data.email}}",
        cc=["Ops <ops@example.com>", "lead@example.com"],
        bcc="audit@example.com",
        reply_to="help@example.com",
        subject="Welcome, {{$context.data.name}}",
        text="Hi {{$context.data.name}}, thanks.",
        html="<p>Hi <b>{{$context.data.name}}</b></p>",
    )
    roots = {"context": {"data": {"email": "Ann <ann@example.com>", "name": "Ann"}}}
    result = await spec.config.run(job(spec, smtp.config, roots))
    [got] = smtp.mailbox.received
    everyone = ["ann@example.com", "ops@example.com", "lead@example.com", "audit@example.com"]
    assert got.sender == "hooks@example.com"
    assert got.recipients == everyone
    message = got.message
    assert (message["From"], message["To"]) == (
        "Hooks <hooks@example.com>",
        "Ann <ann@example.com>",
    )
    assert message["Cc"] == "Ops <ops@example.com>, lead@example.com"
    assert message["Reply-To"] == "help@example.com"
    assert message["Bcc"] is None
    assert "audit@example.com" not in message.as_string()
    assert message["Subject"] == "Welcome, Ann"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().strip() == "Hi Ann, thanks."
    assert html.get_content().strip() == "<p>Hi <b>Ann</b></p>"
    assert result.output == {"message_id": message["Message-ID"], "accepted": everyone}


async def test_html_alone_is_sent_as_html(smtp: SmtpServer) -> None:
    spec = parse_node(
        Fields(
            {
                "key": "m",
                "type": "email",
                "to": "a@example.com",
                "subject": "s",
                "html": "<i>x</i>",
            },
            source="w.yaml",
        )
    )
    await spec.config.run(job(spec, smtp.config))
    assert smtp.mailbox.received[0].message.get_content_type() == "text/html"


async def test_refused_recipients_are_logged_and_all_refused_fails(smtp: SmtpServer) -> None:
    spec = parse(to=["ann@example.com", REFUSED])
    running = job(spec, smtp.config)
    result = await spec.config.run(running)
    assert result.output["accepted"] == ["ann@example.com"]
    assert running.lines == [f"{REFUSED} refused by the server: 550 no such user"]
    with pytest.raises(NodeError, match="refused every recipient"):
        await parse(to=REFUSED).config.run(job(parse(to=REFUSED), smtp.config))
    assert len(smtp.mailbox.received) == 1


# Implicit TLS is TLS, but aiosmtpd only counts STARTTLS and warns.
NO_TLS_WARNING = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@NO_TLS_WARNING
@pytest.mark.parametrize("mode", ["starttls", "ssl"])
@pytest.mark.usefixtures("trusted")
async def test_tls_and_login(
    request: pytest.FixtureRequest, ca: tuple[trustme.CA, Path], mode: str
) -> None:
    server = serve(
        request,
        ca,
        mode,
        starttls=mode == "starttls",
        ssl=mode == "ssl",
        username="bot",
        password="s3cret",
    )
    spec = parse(to="ann@example.com")
    await spec.config.run(job(spec, server.config))
    assert server.mailbox.received[0].login == b"bot"
    wrong = attrs.evolve(server.config, password="guess")
    with pytest.raises(NodeError, match="refused the login: 535"):
        await spec.config.run(job(spec, wrong))
    assert len(server.mailbox.received) == 1


@NO_TLS_WARNING
async def test_an_untrusted_certificate_fails(
    request: pytest.FixtureRequest, ca: tuple[trustme.CA, Path]
) -> None:
    server = serve(request, ca, "ssl", ssl=True)
    spec = parse(to="ann@example.com")
    with pytest.raises(NodeError, match="CERTIFICATE_VERIFY_FAILED"):
        await spec.config.run(job(spec, server.config))


async def test_header_injection_is_refused_and_nothing_sent(smtp: SmtpServer) -> None:
    spec = parse(to="ann@example.com", subject="{{$context.data.s}}")
    with pytest.raises(NodeError, match="bad header value"):
        await spec.config.run(
            job(spec, smtp.config, {"context": {"data": {"s": "x\r\nBcc: evil@example.com"}}})
        )
    bad = parse(to="{{$context.data.to}}")
    with pytest.raises(NodeError, match="line break"):
        await bad.config.run(
            job(bad, smtp.config, {"context": {"data": {"to": "a@b.c\r\nBcc: e@f.g"}}})
        )
    assert smtp.mailbox.received == []


async def test_webhook_html_is_escaped_unless_marked_safe(smtp: SmtpServer) -> None:
    # Issue 13, finding 8: this name landed unescaped in the html part.
    spec = parse(
        to="ann@example.com",
        html="<p>Hi {{$context.data.name}}</p>{{ $nodes.page.output | safe }}",
    )
    roots = {
        "context": {"data": {"name": "<img src=x onerror=alert(1)>"}},
        "nodes": {"page": {"output": "<hr>"}},
    }
    await spec.config.run(job(spec, smtp.config, roots))
    html = smtp.mailbox.received[0].message.get_body(("html",))
    assert html is not None
    assert html.get_content().strip() == "<p>Hi &lt;img src=x onerror=alert(1)&gt;</p><hr>"


@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to"])
async def test_a_templated_address_with_two_addresses_fails_and_nothing_is_sent(
    smtp: SmtpServer, field: str
) -> None:
    # Issue 13, finding 8: one templated value became two recipients.
    fields = {"to": "ann@example.com", field: "{{$context.data.email}}"}
    spec = parse(**fields)
    roots = {"context": {"data": {"email": "x@example.com, y@evil.example"}}}
    with pytest.raises(NodeError, match=f"{field}: a templated address holds one address, got 2"):
        await spec.config.run(job(spec, smtp.config, roots))
    assert smtp.mailbox.received == []


async def test_a_rendered_list_of_addresses_and_a_written_comma_list_are_kept(
    smtp: SmtpServer,
) -> None:
    spec = parse(to="{{$context.data.emails}}", cc="ops@example.com, lead@example.com")
    roots = {"context": {"data": {"emails": ["x@example.com", "Y <y@example.com>"]}}}
    result = await spec.config.run(job(spec, smtp.config, roots))
    assert result.output["accepted"] == [
        "x@example.com",
        "y@example.com",
        "ops@example.com",
        "lead@example.com",
    ]


async def test_no_server_or_no_config_fails_clearly() -> None:
    spec = parse(to="ann@example.com")
    with pytest.raises(NodeError, match="no SMTP server is configured"):
        await spec.config.run(job(spec, None))
    with pytest.raises(NodeError, match=r"sending mail through 127\.0\.0\.1:\d+ failed"):
        await spec.config.run(job(spec, SmtpConfig(host="127.0.0.1", port=free_port())))


# -- a server that never answers: timeout and cancellation --------------------------------


async def silent_server(nursery: trio.Nursery, closed: list[float]) -> int:
    """Accepts connections and never says a word; records when each is closed."""

    async def handle(stream: trio.SocketStream) -> None:
        while await stream.receive_some():
            pass
        closed.append(time.monotonic())

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    return int(listeners[0].socket.getsockname()[1])


@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_a_silent_server_ends_the_job_and_frees_the_connection(how: str) -> None:
    closed: list[float] = []
    async with trio.open_nursery() as nursery:
        port = await silent_server(nursery, closed)
        spec = parse(to="ann@example.com", timeout="300ms" if how == "timeout" else "30s")
        actor = NodeActor("wf", spec)
        await nursery.start(actor.run)
        ticket = JobTicket(job(spec, SmtpConfig(host="127.0.0.1", port=port)))
        await actor.mailbox.send(ticket)
        await trio.sleep(0.1)
        ended = time.monotonic()
        if how == "cancel":
            ticket.cancel()
        await ticket.wait()
        # Real sockets and a worker thread: a generous bound on the real clock (the
        # 100 ms cancel promise is shown on trio's clock in tests/engine).
        assert time.monotonic() - ended < (1.0 if how == "cancel" else 1.5)
        with trio.fail_after(2):  # the worker thread let go of the socket, not in 30s
            while not closed:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert ticket.status == ("timed_out" if how == "timeout" else "cancelled")


# -- load-time validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path", "expected"),
    [
        ({"to": None}, "to", "the field is missing"),
        ({"to": "a@example.com", "subject": None}, "subject", "the field is missing"),
        ({"to": "a@example.com", "text": None}, "text", "a text or html body"),
        ({"to": "not an address"}, "to", "email addresses"),
        ({"to": "a@example.com", "cc": [5]}, "cc", "an email address"),
        ({"to": "a@example.com", "attach": "x"}, "attach", "a known field"),
        ({"to": "a@example.com", "html": ["x"]}, "html", "HTML text"),
        ({"to": "a@example.com", "text": "{{$context.n | safe}}"}, "text", "nothing to mark"),
    ],
)
def test_bad_config_is_refused_at_load(fields: dict[str, Any], path: str, expected: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse(**fields)
    assert caught.value.path == path
    assert expected in caught.value.expected
