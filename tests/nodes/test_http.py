"""The http node: requests as written, retries, redirects, failures, timeouts, cancellation.

Real requests go to a small HTTP server on 127.0.0.1 started by the tests (listed in
``allow_hosts``); retry timing runs on ``httpx.MockTransport`` with trio's MockClock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
import trio
import trio.testing

from hookline.definition import Fields
from hookline.engine._job import JobTicket, RunningJob
from hookline.engine._node_actor import NodeActor
from hookline.errors import DefinitionError, NodeError
from hookline.nodes._base import NodeServices, NodeSpec
from hookline.nodes._registry import parse_node
from hookline.nodes._transport import new_http_client


def parse(**fields: Any) -> NodeSpec:
    return parse_node(Fields({"key": "call", "type": "http", **fields}, source="w.yaml"))


def job(
    spec: NodeSpec, services: NodeServices, roots: dict[str, Any] | None = None, ex: str = "ex-1"
) -> RunningJob:
    return RunningJob(ex, spec, roots or {}, services=services)


@attrs.define
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    target: str = ""  # the request line's target, as sent


class Server(ThreadingHTTPServer):
    """Records every request; the path says what to answer (see ``Handler``)."""

    daemon_threads = True

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), Handler)
        self.seen: list[Seen] = []
        self.stop = threading.Event()
        self.arrived = threading.Event()

    def url(self, path: str) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}{path}"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = parse_qs(parts.query)
        seen = Seen(self.command, parts.path, query, dict(self.headers), body, self.path)
        self.server.seen.append(seen)
        self.server.arrived.set()
        if parts.path == "/hang":
            self.server.stop.wait(10)
            return
        if parts.path.startswith("/status/"):
            self._answer(int(parts.path.rsplit("/", 1)[1]), b"nope", "text/plain")
        elif parts.path == "/text":
            self._answer(200, "héllo".encode(), "text/plain; charset=utf-8")
        elif parts.path.startswith("/redirect/"):
            target = parse_qs(parts.query)["to"][0]
            self._answer(int(parts.path.rsplit("/", 1)[1]), b"", "text/plain", Location=target)
        elif parts.path == "/loop":
            self._answer(302, b"", "text/plain", Location="/loop")
        else:
            echo = {
                "method": seen.method,
                "query": seen.query,
                "headers": {k.lower(): v for k, v in seen.headers.items()},
                "body": body.decode(),
            }
            self._answer(200, json.dumps(echo).encode(), "application/json", X_Served="yes")

    do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815


def start(host: str = "127.0.0.1") -> Server:
    server = Server(host)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server


@pytest.fixture
def server() -> Iterator[Server]:
    server = start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
async def services() -> Any:
    async with new_http_client(["127.0.0.1"]) as client:
        yield NodeServices(http=client, http_allow_hosts=("127.0.0.1",))


# -- success ------------------------------------------------------------------------------


async def test_values_in_the_url_cannot_change_its_path_or_add_parameters(
    server: Server, services: NodeServices
) -> None:
    # Issue 13, finding 7: these values made the receiver see
    # GET /admin/delete-all?x=/profile?q=1&admin=true
    spec = parse(
        url=server.url("/api/users/{{$context.params.name}}/profile?q={{$context.data.q}}")
    )
    roots = {
        "context": {"params": {"name": "../../admin/delete-all?x="}, "data": {"q": "1&admin=true#"}}
    }
    await spec.config.run(job(spec, services, roots))
    [seen] = server.seen
    assert (
        seen.target
        == "/api/users/..%2F..%2Fadmin%2Fdelete-all%3Fx%3D/profile?q=1%26admin%3Dtrue%23"
    )
    assert seen.query == {"q": ["1&admin=true#"]}


@pytest.mark.parametrize(
    ("url", "env", "target"),
    [
        # a whole-URL template, and a base at the start, are used as they are
        ("{{$env.URL}}", {"URL": "/a/b?c=d"}, "/a/b?c=d"),
        ("{{$env.URL}}/x/{{$env.N}}", {"URL": "/a/b", "N": ".."}, "/a/b/x/%2E%2E"),
        # `| safe` inserts a trusted value with its slashes
        (
            "{{$env.URL}}/{{$env.P | safe}}?n={{$env.N}}",
            {"URL": "", "P": "a/b", "N": "é"},
            "/a/b?n=%C3%A9",
        ),
    ],
)
async def test_where_a_url_value_stands_decides_its_encoding(
    server: Server, services: NodeServices, url: str, env: dict[str, str], target: str
) -> None:
    base = server.url("")
    env = {**env, "URL": base + env["URL"]}
    spec = parse(url=url)
    await spec.config.run(job(spec, services, {"env": env}))
    assert server.seen[0].target == target


async def test_a_value_in_the_host_cannot_add_a_path_or_a_user(services: NodeServices) -> None:
    spec = parse(url="http://{{$context.data.host}}/x")
    roots = {"context": {"data": {"host": "evil.example/steal?@127.0.0.1"}}}
    with pytest.raises(NodeError, match=r"evil\.example%2fsteal%3f%40127\.0\.0\.1/x failed"):
        await spec.config.run(job(spec, services, roots))


def test_safe_is_refused_where_nothing_is_escaped() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse(url="http://h/x", headers={"X-A": "{{$context.data.a | safe}}"})
    assert caught.value.path == "headers.X-A"
    assert "'| safe'" in caught.value.expected


async def test_a_templated_json_post_is_sent_and_its_answer_parsed(
    server: Server, services: NodeServices
) -> None:
    spec = parse(
        method="post",
        url=server.url("/hooks/{{$context.data.team}}?fixed=1"),
        headers={"X-Team": "{{$context.data.team}}", "Authorization": "Bearer t"},
        query={"n": "{{$context.data.n}}", "tags": ["a", "b"], "none": "{{$context.data.x}}"},
        json={"text": "push by {{$context.data.who}}", "n": "{{$context.data.n}}"},
    )
    roots = {"context": {"data": {"team": "core", "who": "ann", "n": 3}}}
    result = await spec.config.run(job(spec, services, roots))
    assert result.output["status"] == 200
    assert result.output["headers"]["x-served"] == "yes"
    data = result.output["data"]
    assert data["method"] == "POST"
    assert data["query"] == {"fixed": ["1"], "n": ["3"], "tags": ["a", "b"]}
    assert data["headers"]["x-team"] == "core"
    assert data["headers"]["content-type"] == "application/json"
    assert json.loads(data["body"]) == {"text": "push by ann", "n": 3}
    assert server.seen[0].path == "/hooks/core"


async def test_text_answers_stay_text_and_only_data_gives_the_body(
    server: Server, services: NodeServices
) -> None:
    spec = parse(url=server.url("/text"))
    full = await spec.config.run(job(spec, services))
    assert full.output["data"] == "héllo"
    spec = parse(url=server.url("/text"), only_data=True)
    assert (await spec.config.run(job(spec, services))).output == "héllo"


@pytest.mark.parametrize(
    ("body", "sent", "content_type"),
    [
        ({"form": {"a": "{{$context.data.a}}", "b": ["1", "2"]}}, "a=x&b=1&b=2", "urlencoded"),
        (
            {"body": "raw {{$context.data.a}}", "headers": {"Content-Type": "text/csv"}},
            "raw x",
            "csv",
        ),
    ],
)
async def test_form_and_raw_bodies(
    server: Server, services: NodeServices, body: dict[str, Any], sent: str, content_type: str
) -> None:
    spec = parse(method="PUT", url=server.url("/echo"), **body)
    result = await spec.config.run(job(spec, services, {"context": {"data": {"a": "x"}}}))
    assert result.output["data"]["body"] == sent
    assert content_type in result.output["data"]["headers"]["content-type"]


async def test_the_idempotency_key_is_stable_per_execution_node_and_loop_item(
    server: Server, services: NodeServices
) -> None:
    spec = parse(url=server.url("/echo"))

    async def key(ex: str, index: int | None = None) -> str:
        roots = {} if index is None else {"scopes": {"each": {"index": index, "item": "x"}}}
        result = await spec.config.run(job(spec, services, roots, ex=ex))
        return str(result.output["data"]["headers"]["idempotency-key"])

    first = await key("ex-1")
    assert first == await key("ex-1")  # a re-run after a crash sends the same key
    assert len({first, await key("ex-2"), await key("ex-1", 0), await key("ex-1", 1)}) == 4
    own = parse(url=server.url("/echo"), headers={"Idempotency-Key": "mine"})
    result = await own.config.run(job(own, services))
    assert result.output["data"]["headers"]["idempotency-key"] == "mine"


async def test_redirects_are_followed_and_a_303_turns_a_post_into_a_get(
    server: Server, services: NodeServices
) -> None:
    spec = parse(method="POST", url=server.url("/redirect/303?to=/echo"), json={"a": 1})
    running = job(spec, services)
    result = await spec.config.run(running)
    assert result.output["data"]["method"] == "GET"
    assert result.output["data"]["body"] == ""
    assert [seen.path for seen in server.seen] == ["/redirect/303", "/echo"]
    assert any("redirected (303)" in line for line in running.lines)
    keep = parse(method="POST", url=server.url("/redirect/307?to=/echo"), json={"a": 1})
    result = await keep.config.run(job(keep, services))
    assert (result.output["data"]["method"], result.output["data"]["body"]) == ("POST", '{"a":1}')


async def test_a_redirect_loop_fails_after_five_hops(
    server: Server, services: NodeServices
) -> None:
    spec = parse(url=server.url("/loop"))
    with pytest.raises(NodeError, match="more than 5 redirects"):
        await spec.config.run(job(spec, services))
    assert len(server.seen) == 6


# -- failure ------------------------------------------------------------------------------


async def test_a_non_2xx_answer_fails_the_job_unless_ignore_fail(
    server: Server, services: NodeServices
) -> None:
    spec = parse(url=server.url("/status/404?token=secret"))
    with pytest.raises(NodeError) as caught:
        await spec.config.run(job(spec, services))
    assert str(caught.value) == f"GET {server.url('/status/404')} answered 404 Not Found: nope"
    ignoring = parse(url=server.url("/status/404"), ignore_fail=True)
    running = job(ignoring, services)
    result = await ignoring.config.run(running)
    assert (result.output["status"], result.output["data"]) == (404, "nope")
    assert "ignore_fail" in running.lines[-1]
    assert len(server.seen) == 2  # 404 is not retried


async def test_an_unreachable_server_fails_or_is_reported_with_ignore_fail(
    services: NodeServices,
) -> None:
    probe = start()
    url = probe.url("/echo")
    probe.shutdown()
    probe.server_close()  # nothing listens there now
    spec = parse(url=url, retry={"attempts": 2, "backoff": "10ms"})
    running = job(spec, services)
    with pytest.raises(NodeError, match="ConnectError"):
        await spec.config.run(running)
    assert "attempt 1 of 2" in running.lines[0]
    ignoring = parse(url=url, ignore_fail=True)
    result = await ignoring.config.run(job(ignoring, services))
    assert result.output["status"] is None
    assert "ConnectError" in result.output["error"]


async def test_without_a_client_the_job_fails_clearly() -> None:
    spec = parse(url="https://api.example.com/")
    with pytest.raises(NodeError, match="no HTTP client"):
        await spec.config.run(job(spec, NodeServices()))


# -- retries (MockTransport, virtual time) ------------------------------------------------


def mock_services(handler: Callable[[httpx.Request], httpx.Response]) -> NodeServices:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return NodeServices(http=client, http_allow_hosts=("api.test",))


def answers(*responses: httpx.Response | Exception) -> tuple[list[tuple[float, str]], Any]:
    calls: list[tuple[float, str]] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((trio.current_time(), request.headers["idempotency-key"]))
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return calls, handler


async def test_retryable_statuses_back_off_exponentially_with_the_same_key(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls, handler = answers(httpx.Response(503), httpx.Response(502), httpx.Response(200))
    spec = parse(url="https://api.test/x", retry={"attempts": 3, "backoff": "1s"})
    result = await spec.config.run(job(spec, mock_services(handler)))
    assert result.output["status"] == 200
    times = [at for at, _ in calls]
    assert 0.5 <= times[1] - times[0] <= 1.0  # jittered between half and all of 1s
    assert 1.0 <= times[2] - times[1] <= 2.0  # then of 2s
    assert len({key for _, key in calls}) == 1


async def test_retry_after_is_honoured_and_too_long_a_one_is_not_waited_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls, handler = answers(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(429, headers={"Retry-After": "3600"}),
    )
    spec = parse(url="https://api.test/x", retry={"attempts": 5, "max_backoff": "1m"})
    running = job(spec, mock_services(handler))
    with pytest.raises(NodeError, match="answered 429"):
        await spec.config.run(running)
    assert calls[1][0] - calls[0][0] == pytest.approx(7)
    assert len(calls) == 2
    assert "past max_backoff" in running.lines[-1]


async def test_connection_errors_are_retried_and_exhausted_retries_fail(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls, handler = answers(httpx.ConnectError("refused"), httpx.Response(200, json=[1]))
    spec = parse(url="https://api.test/x", retry=2, only_data=True)
    assert (await spec.config.run(job(spec, mock_services(handler)))).output == [1]
    calls, handler = answers(*[httpx.Response(504)] * 3)
    spec = parse(url="https://api.test/x", retry={"retry_on": [504]})
    with pytest.raises(NodeError, match="answered 504"):
        await spec.config.run(job(spec, mock_services(handler)))
    assert len(calls) == 3


# -- timeout and cancellation (the NodeActor that runs jobs in the engine) ---------------


async def start_job(
    nursery: trio.Nursery, spec: NodeSpec, services: NodeServices
) -> tuple[NodeActor, JobTicket]:
    actor = NodeActor("wf", spec)
    await nursery.start(actor.run)
    ticket = JobTicket(job(spec, services))
    await actor.mailbox.send(ticket)
    return actor, ticket


async def test_a_server_that_never_answers_times_the_job_out(
    server: Server, services: NodeServices
) -> None:
    spec = parse(url=server.url("/hang"), timeout="300ms", retry=3)
    async with trio.open_nursery() as nursery:
        started = time.monotonic()
        _, ticket = await start_job(nursery, spec, services)
        await ticket.wait()
        nursery.cancel_scope.cancel()
    assert (ticket.status, ticket.error) == ("timed_out", "timed out after 300ms")
    assert time.monotonic() - started < 3
    assert len(server.seen) == 1


async def test_cancelling_a_waiting_request_ends_the_job_at_once(
    server: Server, services: NodeServices
) -> None:
    spec = parse(url=server.url("/hang"), timeout="30s")
    async with trio.open_nursery() as nursery:
        _, ticket = await start_job(nursery, spec, services)
        await trio.to_thread.run_sync(server.arrived.wait, 5)
        cancelled = time.monotonic()
        ticket.cancel()
        await ticket.wait()
        # A real server: a generous bound on the real clock (the 100 ms cancel promise
        # is shown on trio's clock in tests/engine).
        assert time.monotonic() - cancelled < 1.0
        nursery.cancel_scope.cancel()
    assert ticket.status == "cancelled"


# -- load-time validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path", "expected"),
    [
        ({}, "url", "the field is missing"),
        ({"url": "ftp://x/"}, "url", "an http:// or https:// URL"),
        ({"url": "http://x/", "method": "BREW"}, "method", "one of GET"),
        ({"url": "http://x/", "json": {}, "body": "b"}, "body", "only one of json"),
        ({"url": "http://x/", "headers": {"Bad Name": "v"}}, "headers.Bad Name", "header name"),
        ({"url": "http://x/", "retry": {"attempts": 0}}, "retry.attempts", "from 1 to 20"),
        ({"url": "http://x/", "retry": {"retry_on": [700]}}, "retry.retry_on[0]", "HTTP status"),
        ({"url": "http://x/", "retry": {"backof": "1s"}}, "retry.backof", "a known field"),
        ({"url": "http://x/{{$context.data"}, "url", "a valid template"),
    ],
)
def test_bad_config_is_refused_at_load(fields: dict[str, Any], path: str, expected: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse(**fields)
    assert caught.value.path == path
    assert expected in caught.value.expected
