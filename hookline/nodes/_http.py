"""The ``http`` node: an outbound HTTP request, with retries and an address guard.

Fields: ``method`` (default GET), ``url``, ``headers``, ``query``, one of ``json`` /
``form`` / ``body``, ``retry``, ``follow_redirects`` (default true), ``ignore_fail``,
``only_data``; the node's ``timeout`` bounds the whole run, retries included. Every
field is a template compiled at load time.

``files`` sends a ``multipart/form-data`` body (with ``form``'s fields as its text
parts, if any): each entry names a part and renders to a file, such as
``{{$context.files.upload}}`` (anything with ``base64``, and optionally ``filename`` and
``content_type``), or to text (sent as a ``text/plain`` part); a list sends several parts
of that name.

Values rendered into ``url`` are encoded for where they stand, decided at load time:

- ``url: "{{$nodes.x.next}}"`` (the whole URL) or ``"{{$env.API}}/users"`` (a value at
  the very start: the base) is used as it is;
- in the host (``"https://{{$env.HOST}}/..."``) a value is percent-encoded but for
  ``:`` and ``[]``, so it can give a host and port, never a path or a user;
- in the path (``"/users/{{$context.params.name}}/profile"``) a value is one segment:
  ``/``, ``?``, ``#`` and the rest are percent-encoded (``../admin`` is sent as
  ``..%2Fadmin``; ``.`` and ``..`` as ``%2E``, ``%2E%2E``);
- in the query (after ``?``) or fragment a value is one value: ``&``, ``=`` and ``#``
  are percent-encoded, so it cannot add a parameter. ``query:`` entries are always
  encoded this way.

``{{ $context.data.path | safe }}`` inserts a trusted value as it is (a path with
several segments, for instance): never mark a value the sender controls.

The result is ``{status, headers, data}`` (header names lower-cased; ``data`` is the
parsed JSON body when the answer says JSON, its text otherwise, null when empty), or
only ``data`` with ``only_data``. A status outside 2xx after the last attempt, or a
connection that never succeeds, fails the job unless ``ignore_fail`` is set (the result
then carries the status, or ``error`` when there was no answer).

A refused address (not public, not in ``http_node.allow_hosts``; checked on every
redirect hop too) always fails the job, ``ignore_fail`` or not: it is the operator's
policy, not a receiver that is down, and a workflow that carried on past it could turn
the refusal into a probe of which names resolve to internal addresses. The job log
names the host and the address it resolved to; the job's error (which a sync webhook's
sender may read) names neither.

Requests carry an ``Idempotency-Key`` derived from the execution id, the node key and
the current loop indexes, the same for every retry and for a re-run after a crash, so
the receiver can tell a repeat from a new request; a key set in ``headers`` wins.
Redirects are followed here, at most five, each hop checked by the address guard.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import trio

from ..definition import JSON, Compiled, Fields, compile_url
from ..errors import AddressRefused, NodeError, TemplateError
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register
from ._ssrf import AddressGuard, describe_refusal

if TYPE_CHECKING:
    # httpx is imported where a request is made (or an http node is loaded): it costs
    # more to import than the engine, and many programs never call out.
    import httpx

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_REDIRECTS = 5
MAX_RESPONSE = 10 * 1024 * 1024
RETRY_ON = (429, 502, 503, 504)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_UNSAFE = re.compile(r"[\r\n\x00]")


@attrs.frozen
class Retry:
    """How failed attempts are retried: ``attempts`` in all (1: no retry), waiting
    ``backoff`` doubled per attempt up to ``max_backoff``, with jitter (a random half to
    all of it). Statuses in ``retry_on`` and connection errors are retried; a
    ``Retry-After`` answer is waited for, unless longer than ``max_backoff``."""

    attempts: int = 1
    backoff: float = 1.0
    max_backoff: float = 30.0
    retry_on: frozenset[int] = frozenset(RETRY_ON)

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (from 1), with jitter."""
        full = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(full / 2, full)


@attrs.frozen
class HttpNode:
    """A request to send; see the module docstring for the fields."""

    url: Compiled
    method: str = "GET"
    headers: tuple[tuple[str, Compiled], ...] = ()
    query: tuple[tuple[str, Compiled], ...] = ()
    json: Compiled | None = None
    form: tuple[tuple[str, Compiled], ...] | None = None
    body: Compiled | None = None
    files: tuple[tuple[str, Compiled], ...] | None = None
    retry: Retry = Retry()
    follow_redirects: bool = True
    ignore_fail: bool = False
    only_data: bool = False
    # `retry` is this node's own (statuses, Retry-After): not the common per-node retry.
    handles_retry: ClassVar[bool] = True

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        return await self.send(job, functools.partial(self._request, job))

    async def send(
        self,
        job: Job,
        build: Callable[[httpx.AsyncClient], httpx.Request],
        *,
        shown: str | None = None,
    ) -> NodeResult:
        """Send the request ``build`` makes (given the engine's client) as this node
        sends its own: the address guard on every hop, this node's ``retry``,
        ``ignore_fail`` and ``only_data``. The ``chat`` and ``sms`` nodes send through
        here. ``shown`` names the target in logs and errors instead of the URL (for a
        URL whose path is a credential, such as a chat webhook's)."""
        import httpx

        http = job.services.http
        if http is None:
            raise NodeError("no HTTP client is configured for http nodes")
        client = await http.client() if isinstance(http, SharedHttpClient) else http
        guard = _guard(tuple(job.services.http_allow_hosts))
        request = build(client)
        shown = _shown(request.url) if shown is None else shown
        for attempt in range(1, self.retry.attempts + 1):
            try:
                response, content = await self._exchange(job, client, guard, request)
            except AddressRefused as refused:
                # The host and its addresses go to the job log, for the operator; the
                # error (which a sync sender may read) names neither.
                job.log(f"{request.method} {shown}: {describe_refusal(refused)}")
                raise
            except httpx.TransportError as exc:
                problem = f"{request.method} {shown} failed: {_describe(exc)}"
                if attempt == self.retry.attempts:
                    return self._failed(job, problem)
                delay = self.retry.delay(attempt)
            else:
                status = response.status_code
                if status not in self.retry.retry_on or attempt == self.retry.attempts:
                    return self._answered(job, request, response, content, shown)
                problem = f"{request.method} {shown} answered {status}"
                wait = _retry_after(response)
                if wait is not None and wait > self.retry.max_backoff:
                    job.log(f"{problem}; Retry-After {wait:g}s is past max_backoff, giving up")
                    return self._answered(job, request, response, content, shown)
                delay = self.retry.delay(attempt) if wait is None else wait
            job.log(
                f"{problem} (attempt {attempt} of {self.retry.attempts}); retry in {delay:.2f}s"
            )
            await trio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns")

    def _request(self, job: Job, client: httpx.AsyncClient) -> httpx.Request:
        import httpx

        url = job.render(self.url)
        if not isinstance(url, str) or not url:
            raise NodeError(f"url: expected a URL, got {url!r}")
        headers = _pairs(job, self.headers, "headers")
        if not any(name.lower() == "idempotency-key" for name, _ in headers):
            headers.append(("Idempotency-Key", idempotency_key(job)))
        options: dict[str, Any] = {}
        if self.json is not None:
            options["json"] = job.render(self.json)
        elif self.files is not None:
            options["files"] = _files(job, self.files)
            if self.form is not None:
                options["data"] = _group(_pairs(job, self.form, "form"))
        elif self.form is not None:
            options["data"] = _group(_pairs(job, self.form, "form"))
        elif self.body is not None:
            body = job.render(self.body)
            if body is not None and not isinstance(body, str):
                raise NodeError(f"body: expected text (use json: for data), got {body!r}")
            options["content"] = body
        query = _group(_pairs(job, self.query, "query"))
        try:
            target = httpx.URL(url)
            if query:
                # httpx's params= would replace a query written in the URL; merge instead.
                target = target.copy_merge_params(query)
            return client.build_request(
                self.method, target, headers=headers, timeout=job.node.timeout, **options
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError, ValueError) as exc:
            raise NodeError(f"cannot build the request to {url!r}: {exc}") from None

    async def _exchange(
        self, job: Job, client: httpx.AsyncClient, guard: AddressGuard, request: httpx.Request
    ) -> tuple[httpx.Response, bytes]:
        """Send ``request``, following redirects (each hop checked); return the last
        answer and its body (the response is closed)."""
        for hop in range(MAX_REDIRECTS + 1):
            await _check(guard, client, request.url)
            response = await client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if not (self.follow_redirects and response.status_code in _REDIRECTS and location):
                    return response, await _read(response)
                if hop == MAX_REDIRECTS:
                    raise NodeError(f"{_shown(request.url)}: more than {MAX_REDIRECTS} redirects")
                request = _redirected(client, request, response.status_code, location)
                job.log(f"redirected ({response.status_code}) to {_shown(request.url)}")
            finally:
                await response.aclose()
        raise AssertionError("unreachable: the last hop returns or raises")

    def _answered(
        self,
        job: Job,
        request: httpx.Request,
        response: httpx.Response,
        content: bytes,
        shown: str,
    ) -> NodeResult:
        status = response.status_code
        data = _data(response, content)
        if not 200 <= status < 300:
            problem = f"{request.method} {shown} answered {status}"
            if response.reason_phrase:
                problem += f" {response.reason_phrase}"
            if not self.ignore_fail:
                snippet = content[:200].decode("utf-8", "replace").strip()
                raise NodeError(f"{problem}: {snippet}" if snippet else problem)
            job.log(f"{problem} (ignored: ignore_fail)")
        if self.only_data:
            return NodeResult(output=data)
        headers: dict[str, JSON] = {}
        for name, value in response.headers.multi_items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return NodeResult(output={"status": status, "headers": headers, "data": data})

    def _failed(self, job: Job, problem: str) -> NodeResult:
        if not self.ignore_fail:
            raise NodeError(problem)
        job.log(f"{problem} (ignored: ignore_fail)")
        if self.only_data:
            return NodeResult(output=None)
        return NodeResult(output={"status": None, "headers": {}, "data": None, "error": problem})


class SharedHttpClient:
    """An engine's one outbound client, shared by every ``http`` node so that
    connection limits hold across all executions; built the first time a node asks
    (:meth:`client`), closed with :meth:`aclose` when the engine stops.

    Building it loads the CA bundle in a worker thread, so the event loop never waits
    for it, and an engine that runs no ``http`` node never loads it. ``allow_hosts``
    is checked here (a bad entry raises :class:`ValueError` at once, not at the first
    request).
    """

    def __init__(
        self,
        allow_hosts: Iterable[str] = (),
        *,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        timeout: float = 30.0,
        verify: bool | str = True,
    ) -> None:
        self.allow_hosts = tuple(allow_hosts)
        AddressGuard.from_allow_hosts(self.allow_hosts)
        self._limits = (max_connections, max_keepalive_connections)
        self._timeout = timeout
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        self._building = trio.Lock()
        self._closed = False

    async def client(self) -> httpx.AsyncClient:
        """The client, built now if this is the first call. Raises :class:`NodeError`
        once the engine closed it."""
        if self._client is None:
            async with self._building:
                if self._closed:
                    raise NodeError("the engine has stopped: no more outbound requests")
                if self._client is None:
                    import httpx

                    from ._transport import new_http_client, ssl_context

                    # Loaded in a thread: tens of ms the event loop would otherwise wait.
                    context = await trio.to_thread.run_sync(ssl_context, self._verify)
                    self._client = new_http_client(
                        self.allow_hosts,
                        limits=httpx.Limits(
                            max_connections=self._limits[0],
                            max_keepalive_connections=self._limits[1],
                        ),
                        timeout=self._timeout,
                        verify=context,
                    )
        elif self._closed:
            raise NodeError("the engine has stopped: no more outbound requests")
        return self._client

    async def aclose(self) -> None:
        """Close the client (if it was built); later :meth:`client` calls raise."""
        self._closed = True
        if self._client is not None:
            await self._client.aclose()

    @property
    def started(self) -> bool:
        """Whether the client was built (an ``http`` node needed it)."""
        return self._client is not None


def idempotency_key(job: Job) -> str:
    """The ``Idempotency-Key`` of a job: stable across retries and re-runs of the same
    node in the same execution (and loop iteration), different otherwise."""
    scopes = job.variables.get("scopes") or {}
    indexes = {key: scope.get("index") for key, scope in scopes.items() if isinstance(scope, dict)}
    seed = json.dumps([job.execution_id, job.node.key, indexes], sort_keys=True, default=str)
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=16)
def _guard(allow_hosts: tuple[str, ...]) -> AddressGuard:
    try:
        return AddressGuard.from_allow_hosts(allow_hosts)
    except ValueError as exc:
        raise NodeError(f"http_node.allow_hosts: {exc}") from None


async def _check(guard: AddressGuard, client: httpx.AsyncClient, url: httpx.URL) -> None:
    import httpx

    from ._transport import is_guarded

    if url.scheme not in ("http", "https"):
        raise NodeError(f"{_shown(url)}: only http and https URLs can be requested")
    if not url.host:
        raise NodeError(f"{_shown(url)}: the URL has no host")
    if guard.check_literal(url.host) or is_guarded(client):
        return  # a guarded client checks names where it connects
    try:
        await guard.resolve(url.host, url.port or (443 if url.scheme == "https" else 80))
    except OSError as exc:
        raise httpx.ConnectError(f"cannot resolve {url.host}: {exc}") from None


def _redirected(
    client: httpx.AsyncClient, request: httpx.Request, status: int, location: str
) -> httpx.Request:
    import httpx

    try:
        url = request.url.join(location)
    except httpx.InvalidURL as exc:
        raise NodeError(f"{_shown(request.url)}: bad redirect location: {exc}") from None
    method, content = request.method, request.content
    headers = httpx.Headers(request.headers)
    del headers["host"]
    if status in (301, 302, 303) and method not in ("GET", "HEAD"):
        # As browsers do: the body is dropped and the request becomes a GET.
        method, content = "GET", b""
        for name in ("content-type", "content-length", "transfer-encoding"):
            headers.pop(name, None)
    if (url.scheme, url.host, url.port) != (request.url.scheme, request.url.host, request.url.port):
        # Credentials were meant for the first origin only.
        headers.pop("authorization", None)
        headers.pop("cookie", None)
    return client.build_request(
        method, url, headers=headers, content=content or None, extensions=request.extensions
    )


async def _read(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE:
            raise NodeError(f"{_shown(response.url)}: the answer is larger than 10MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _data(response: httpx.Response, content: bytes) -> Any:
    if not content:
        return None
    text = content.decode(response.charset_encoding or "utf-8", "replace")
    if "json" in response.headers.get("content-type", "").lower():
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _pairs(
    job: Job, templates: tuple[tuple[str, Compiled], ...], field: str
) -> list[tuple[str, str]]:
    """Render (name, template) pairs to text; null is left out, a list repeats the name."""
    pairs: list[tuple[str, str]] = []
    for name, template in templates:
        value = job.render(template)
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            text = _text(item)
            if field == "headers" and _UNSAFE.search(text):
                raise NodeError(f"headers.{name}: a header value cannot contain a line break")
            pairs.append((name, text))
    return pairs


def _files(
    job: Job, templates: tuple[tuple[str, Compiled], ...]
) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Render ``files`` entries to httpx's multipart parts; null is left out."""
    parts: list[tuple[str, tuple[str, bytes, str]]] = []
    for name, template in templates:
        value = job.render(template)
        items = value if isinstance(value, list) else [value]
        parts.extend((name, _file(name, item)) for item in items if item is not None)
    return parts


def _file(name: str, value: object) -> tuple[str, bytes, str]:
    if isinstance(value, str):
        return name, value.encode(), "text/plain; charset=utf-8"
    encoded = value.get("base64") if isinstance(value, Mapping) else None
    if not isinstance(value, Mapping) or not isinstance(encoded, str):
        raise NodeError(
            f"files.{name}: expected a file such as {{{{$context.files.{name}}}}} (an object "
            f"with base64, filename, content_type) or text, got {_text(value)[:80]}"
        )
    try:
        content = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise NodeError(f"files.{name}: base64 is not valid base64") from None
    filename, content_type = value.get("filename"), value.get("content_type")
    return (
        filename if isinstance(filename, str) and filename else name,
        content,
        content_type if isinstance(content_type, str) else "application/octet-stream",
    )


def _group(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _shown(url: httpx.URL) -> str:
    """The URL without credentials or query, which may hold secrets (API keys)."""
    return str(url.copy_with(query=None, fragment=None, username=None, password=None))


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _parse_retry(fields: Fields) -> Retry:
    if not fields.has("retry"):
        fields.value("retry", None)
        return Retry()
    if isinstance(fields.value("retry"), int):
        return Retry(attempts=fields.integer("retry", low=1, high=20))
    sub = fields.sub("retry")
    statuses = sub.sequence("retry_on", list(RETRY_ON))
    for index, status in enumerate(statuses):
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            sub.fail(f"retry_on[{index}]", "an HTTP status from 100 to 599", status)
    retry = Retry(
        attempts=sub.integer("attempts", 3, low=1, high=20),
        backoff=sub.duration("backoff", 1.0, positive=False),
        max_backoff=sub.duration("max_backoff", 30.0),
        retry_on=frozenset(statuses),
    )
    sub.done()
    return retry


@register("http")
def parse(fields: Fields, nodes: NodeListParser) -> HttpNode:
    written = fields.string("url", expected="an http:// or https:// URL, or a template")
    try:
        url = compile_url(written)
    except TemplateError as exc:
        fields.fail("url", f"a valid template: {exc}")
    if url.is_static:
        import httpx

        try:
            parsed = httpx.URL(url.source) if isinstance(url.source, str) else None
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            fields.fail("url", "an http:// or https:// URL, or a template", url.source)
    method = fields.string("method", "GET").upper()
    if method not in METHODS:
        fields.fail("method", "one of " + ", ".join(METHODS), method)
    headers = fields.templates("headers")
    for name, _ in headers:
        if _HEADER_NAME.fullmatch(name) is None:
            fields.fail(f"headers.{name}", "a header name (letters, digits, '-')", name)
    bodies = [name for name in ("json", "form", "body") if fields.has(name)]
    if len(bodies) > 1:
        fields.fail(bodies[1], f"only one of json, form and body (also {bodies[0]})")
    files = fields.templates("files") if fields.has("files") else None
    if files is None:
        fields.value("files", None)
    elif bodies and bodies[0] != "form":
        fields.fail("files", f"form fields beside it, not {bodies[0]} (files is the body)")
    form = fields.templates("form") if fields.has("form") else None
    if form is None:
        fields.value("form", None)
    return HttpNode(
        url=url,
        method=method,
        headers=headers,
        query=fields.templates("query"),
        json=fields.template("json", None),
        form=form,
        body=fields.template("body", None),
        files=files,
        retry=_parse_retry(fields),
        follow_redirects=fields.boolean("follow_redirects", default=True),
        ignore_fail=fields.boolean("ignore_fail", default=False),
        only_data=fields.boolean("only_data", default=False),
    )
