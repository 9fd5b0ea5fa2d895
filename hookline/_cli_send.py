"""``hookline send``: sign a test webhook the way a provider would, send it, show the answer.

A thin shell over :func:`send_webhook`, which signs with :func:`hookline._signing.sign`
and sends with httpx. The exit status is 0 for a 2xx answer and 1 for anything else,
a refused connection included, so scripts can tell whether the hook took it.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from pathlib import Path

import click
import httpx

from ._signing import SCHEMES, sign

__all__ = ["read_data", "send_command", "send_webhook"]

_METHODS = ("POST", "PUT", "PATCH", "DELETE", "GET", "HEAD")


def send_webhook(
    url: str,
    *,
    scheme: str,
    secret: str,
    body: bytes,
    method: str = "POST",
    content_type: str | None = "application/json",
    headers: Sequence[tuple[str, str]] = (),
    options: Mapping[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Response:
    """Sign ``body`` for ``scheme`` with ``secret`` and send it to ``url``.

    ``headers`` are added after the signature's (a test may override one); ``options``
    are the scheme's settings as :func:`~hookline._signing.sign` takes them; ``verify``
    the TLS trust (a context holding a test CA, or False). Raises :class:`ValueError`
    for an unknown scheme or a missing option, and :class:`httpx.HTTPError` when no
    answer came.
    """
    signed = sign(
        scheme, secret=secret, body=body, url=url, content_type=content_type, options=options
    )
    sent = httpx.Headers()
    # WeCom and Feishu send the body encrypted, in their own envelope.
    content_type = signed.content_type or content_type
    if content_type is not None:
        sent["content-type"] = content_type
    sent.update(signed.headers)
    for name, value in headers:
        sent[name] = value
    content = body if signed.body is None else signed.body
    with httpx.Client(verify=verify, timeout=timeout, transport=transport) as client:
        return client.request(method, signed.url, content=content, headers=sent)


def read_data(data: str) -> bytes:
    """``--data``: ``@path`` reads a file, ``@-`` standard input, anything else is the
    body itself. Raises :class:`click.BadParameter` for an unreadable file."""
    if not data.startswith("@"):
        return data.encode()
    if data == "@-":
        return sys.stdin.buffer.read()
    try:
        return Path(data[1:]).read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {data[1:]}: {exc.strerror}") from None


def _pairs(values: Sequence[str], separator: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, found, rest = value.partition(separator)
        if not found or not name.strip():
            raise click.BadParameter(f"expected {what}, got {value!r}")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def _reason(response: httpx.Response) -> str:
    # HTTP/2 and some HTTP/1.1 servers (hypercorn) send no reason phrase.
    if response.reason_phrase:
        return response.reason_phrase
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return ""


@click.command("send")
@click.argument("url")
@click.option("--scheme", required=True, type=click.Choice(SCHEMES), help="How to sign.")
@click.option("--secret", required=True, help="The signing secret, token or password.")
@click.option("--data", "data", default="", help="The body: text, @file, or @- for stdin.")
@click.option("--header", "header", multiple=True, help="An extra header, 'Name: value'.")
@click.option("--method", default="POST", type=click.Choice(_METHODS, case_sensitive=False))
@click.option("--content-type", default="application/json", show_default=True)
@click.option(
    "--option",
    "option",
    multiple=True,
    help="A scheme option, 'name=value' (hmac: header=...; wecom: encoding_aes_key=...).",
)
@click.option("--cacert", type=click.Path(dir_okay=False, exists=True), help="CA file for TLS.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for an answer.")
def send_command(
    *,
    url: str,
    scheme: str,
    secret: str,
    data: str,
    header: tuple[str, ...],
    method: str,
    content_type: str,
    option: tuple[str, ...],
    cacert: str | None,
    timeout: float,
) -> None:
    """Sign a test webhook as provider SCHEME does and send it to URL.

    Prints the answer's status line and body; exits 0 for a 2xx answer, 1 otherwise.
    """
    verify: ssl.SSLContext | bool = True
    if cacert is not None:
        verify = ssl.create_default_context(cafile=cacert)
    try:
        response = send_webhook(
            url,
            scheme=scheme,
            secret=secret,
            body=read_data(data),
            method=method.upper(),
            content_type=content_type or None,
            headers=_pairs(header, ":", "'Name: value'"),
            options=dict(_pairs(option, "=", "'name=value'")),
            verify=verify,
            timeout=timeout,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except httpx.HTTPError as exc:
        click.echo(f"error: no answer from {url}: {exc}", err=True)
        raise click.exceptions.Exit(1) from None
    click.echo(f"{response.status_code} {_reason(response)}")
    if response.content:
        click.echo(response.text)
    raise click.exceptions.Exit(0 if response.is_success else 1)
