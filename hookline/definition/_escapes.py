"""Where a value lands in a URL or in HTML, and how it is escaped there.

:func:`compile_url` compiles an ``http`` node's ``url``. Each ``{{...}}`` is placed by the
literal text before it, at load time:

- at the very start (``"{{$env.API}}/users"``, or the whole ``"{{$nodes.x.next}}"``):
  the URL's base (scheme, host, perhaps a path), inserted as it is;
- in the host part (``"https://{{$env.HOST}}/..."``): percent-encoded but for ``:`` (a
  port) and ``[]`` (IPv6), so it cannot add a path, a query or a user;
- in the path (after the host, before ``?``): percent-encoded as one segment, ``/``
  included (``../x`` becomes ``..%2Fx``; a value of ``.`` or ``..`` becomes ``%2E``...);
- in the query (after ``?``) or the fragment (after ``#``): percent-encoded as one value,
  so ``&``, ``=`` and ``#`` cannot add parameters or cut the URL.

:func:`compile_html` compiles an ``email`` node's ``html``: every value is HTML-escaped.

In both, ``{{ ... | safe }}`` inserts a value as it is.
"""

from __future__ import annotations

import enum
import html
from urllib.parse import quote

from ._templates import Compiled, Escape, compile_escaped

__all__ = ["UrlPart", "compile_html", "compile_url", "url_part"]


class UrlPart(enum.Enum):
    """Where an expression sits in a URL template."""

    BASE = "base"
    HOST = "host"
    PATH = "path"
    QUERY = "query"
    FRAGMENT = "fragment"


def url_part(before: tuple[str | None, ...]) -> UrlPart:
    """The part of a URL an expression is in, given the parts of the template before it
    (literal text as strings, earlier expressions as ``None``)."""
    if not before:
        return UrlPart.BASE
    # An earlier expression stands for text we cannot see: "\0" keeps it apart.
    literal = "".join("\0" if part is None else part for part in before)
    if "#" in literal:
        return UrlPart.FRAGMENT
    if "?" in literal:
        return UrlPart.QUERY
    scheme = literal.find("://")
    if scheme >= 0 and "/" not in literal[scheme + 3 :]:
        return UrlPart.HOST
    return UrlPart.PATH


def _segment(text: str) -> str:
    encoded = quote(text, safe="")
    # "." and ".." are dot segments even when encoded by halves: encode every dot.
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def _value(text: str) -> str:
    return quote(text, safe="")


def _host(text: str) -> str:
    return quote(text, safe=":[]")


_URL_ESCAPES: dict[UrlPart, Escape | None] = {
    UrlPart.BASE: None,
    UrlPart.HOST: _host,
    UrlPart.PATH: _segment,
    UrlPart.QUERY: _value,
    UrlPart.FRAGMENT: _value,
}


def compile_url(text: str) -> Compiled:
    """Compile a URL template, each value encoded for the part it is in (see the module
    docstring). Raises :class:`hookline.errors.TemplateError` for a bad template."""
    return compile_escaped(text, lambda before: _URL_ESCAPES[url_part(before)])


def _html(text: str) -> str:
    return html.escape(text, quote=True)


def compile_html(text: str) -> Compiled:
    """Compile an HTML template: every value is HTML-escaped (``<`` as ``&lt;``, quotes
    too, so values are safe in text and in quoted attributes) unless marked ``| safe``.
    Raises :class:`hookline.errors.TemplateError` for a bad template."""
    return compile_escaped(text, lambda before: _html)
