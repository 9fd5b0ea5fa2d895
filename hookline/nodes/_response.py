"""The ``response`` node: answer a sync webhook now, while the workflow goes on.

The answer's body follows its rendered value: a string is sent as
``text/plain; charset=utf-8``, anything else (object, list, number, null) as JSON; a
``Content-Type`` header in ``headers`` overrides either. No ``body`` sends an empty one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from ..definition import JSON, Compiled, Fields
from ..errors import NodeError
from ..store._records import Answer
from ._base import Job, NodeResult, NodeSpec
from ._registry import NodeListParser, register

_HEADER_NAME = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_UNSAFE = re.compile(r"[\r\n\x00]")


@attrs.frozen
class ResponseNode:
    """The answer to send: ``status`` (an int, or a template rendering to one),
    ``headers`` (name, template) pairs and an optional ``body`` template."""

    inline: ClassVar[bool] = True  # never waits: runs in its execution's driver
    status: int | Compiled = 200
    headers: tuple[tuple[str, Compiled], ...] = ()
    body: Compiled | None = None

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        status = self._status(job)
        headers: list[tuple[str, str]] = []
        for name, template in self.headers:
            value = _header_value(name, job.render(template))
            if value is not None:
                headers.append((name, value))
        body = None if self.body is None else job.render(self.body)
        data, content_type = _encode(body, present=self.body is not None)
        answer_headers = list(headers)
        if content_type and not any(name.lower() == "content-type" for name, _ in headers):
            answer_headers.append(("content-type", content_type))
        output: dict[str, JSON] = {"status": status, "headers": dict(headers), "body": body}
        answer = Answer(status=status, headers=tuple(answer_headers), body=data)
        return NodeResult(output=output, answer=answer)

    def _status(self, job: Job) -> int:
        if isinstance(self.status, int):
            return self.status
        rendered = job.render(self.status)
        try:
            status = int(str(rendered).strip())
        except ValueError:
            raise NodeError(f"status: expected an HTTP status code, got {rendered!r}") from None
        if not 100 <= status <= 599:
            raise NodeError(f"status: expected an HTTP status from 100 to 599, got {status}")
        return status


def _header_value(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    # A line break in a header value would let request data forge more headers.
    if _UNSAFE.search(text):
        raise NodeError(f"headers.{name}: a header value cannot contain a line break")
    return text


def _encode(body: Any, *, present: bool) -> tuple[bytes, str | None]:
    if not present:
        return b"", None
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    try:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        if "JSON compliant" not in str(exc):
            raise NodeError(f"body: cannot be sent as JSON ({exc})") from None
        # NaN or Infinity (from a code node, an http answer...) has no JSON spelling:
        # answering {"pong":NaN} would send the caller what JSON parsers refuse.
        raise NodeError("body: NaN and Infinity cannot be sent as JSON numbers") from None
    except TypeError as exc:
        raise NodeError(f"body: cannot be sent as JSON ({exc})") from None
    return text.encode(), "application/json"


@register("response")
def parse(fields: Fields, nodes: NodeListParser) -> ResponseNode:
    status: int | Compiled
    written = fields.value("status", None)
    if isinstance(written, str):
        status = fields.template("status")
        if status.is_static:
            # "201" written as a string: check it now rather than at every request.
            if not re.fullmatch(r"[0-9]{3}", written.strip()) or not 100 <= int(written) <= 599:
                fields.fail("status", "an HTTP status from 100 to 599, or a template", written)
            status = int(written)
    else:
        status = fields.integer("status", 200, low=100, high=599)
    headers = fields.templates("headers")
    for name, _ in headers:
        if re.fullmatch(_HEADER_NAME, name) is None:
            fields.fail(f"headers.{name}", "a header name (letters, digits, '-')", name)
    return ResponseNode(status=status, headers=headers, body=fields.template("body", None))
