"""Parse a webhook body according to its ``Content-Type``, without I/O.

The result becomes ``$context.data``, ``$context.form`` and ``$context.files``
(``$context.raw`` and ``raw_base64`` are worked out from the bytes when read: see
:mod:`hookline.engine._request_context`). Which parser runs is decided by the media type
alone:

==========================================================  ==========================
media type                                                  ``data``
==========================================================  ==========================
``application/json``, ``application/*+json``, ``text/json``  the JSON value (empty: None)
``application/xml``, ``text/xml``, ``application/*+xml``     the document as a mapping
                                                            (:func:`~hookline.definition.
                                                            parse_xml`; entities: 400)
``application/x-www-form-urlencoded``                       ``{name: str | [str, ...]}``;
                                                            a form whose only field is
                                                            ``payload`` holding a JSON
                                                            object: that object
``multipart/form-data``                                     text fields as for forms;
                                                            files go to ``files``
``text/*``                                                  the text
anything else, or none                                      None (the caller keeps the
                                                            raw bytes)
==========================================================  ==========================

For both kinds of form, ``form`` is the fields as sent (for the ``payload`` form too, so
``$context.form.payload`` is still the JSON text); for other bodies it is None. A file
part is kept whole as a :class:`~hookline.engine._request_context.FileInfo`: the body
is within ``max_body``, so its files are too.

A form (multipart or URL-encoded) of more than ``max_parts`` parts (default
:data:`MAX_FORM_PARTS`) is refused with :class:`~hookline.errors.PayloadTooLarge`
(413): :func:`check_form_parts` counts them in one pass of C code before anything is
parsed. Multipart parsing is pure Python, so :func:`body_steps` does it in small
steps, and :func:`parse_body_cooperatively` lets other tasks run between them: one
body never holds the event loop for more than a few milliseconds.

Only :class:`~hookline.errors.MalformedBody` and
:class:`~hookline.errors.PayloadTooLarge` are ever raised, and their detail never
echoes the body.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Generator, Iterable, Mapping

import attrs
import trio
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
)

from ..definition import xml_steps
from ..engine._request_context import FileInfo
from ..errors import MalformedBody, PayloadTooLarge

__all__ = [
    "MAX_FORM_PARTS",
    "ParsedBody",
    "body_steps",
    "check_form_parts",
    "collect_fields",
    "parse_body",
    "parse_body_cooperatively",
]

# The parts (fields and files) a form may have; more: 413. werkzeug's own default.
MAX_FORM_PARTS = 1000
# Multipart bodies are fed to the decoder this many bytes at a time (a whole body at
# once makes each part's bookkeeping cost the size of what is left: quadratic)...
_SLICE = 16 * 1024
# ...and :func:`body_steps` yields after each slice and after this many events.
_EVENTS_PER_STEP = 32


@attrs.frozen
class ParsedBody:
    """A parsed request body.

    ``data`` is the parsed value (a JSON value, an XML document's mapping, a dict of
    form fields, text, or None); ``files`` holds multipart file parts by field name,
    content included; ``form`` is a form body's fields as sent (None for other
    bodies). The mappings encode as msgpack and JSON.
    """

    data: object
    files: Mapping[str, FileInfo]
    form: Mapping[str, str | list[str]] | None = None


def parse_body(
    raw: bytes, content_type: str | None, *, max_parts: int = MAX_FORM_PARTS
) -> ParsedBody:
    """Parse ``raw`` as ``content_type`` says (see the module docstring), in one go.

    Raises :class:`~hookline.errors.MalformedBody` when a JSON body is not valid
    JSON, or a multipart body has no boundary or does not parse; and
    :class:`~hookline.errors.PayloadTooLarge` for a form of more than ``max_parts``
    parts. Never raised for a media type it does not parse: those give ``data`` None.
    """
    steps = body_steps(raw, content_type, max_parts=max_parts)
    while (parsed := _advance(steps)) is None:
        pass
    return parsed


async def parse_body_cooperatively(
    raw: bytes, content_type: str | None, *, max_parts: int = MAX_FORM_PARTS
) -> ParsedBody:
    """:func:`parse_body`, letting other tasks run between its steps."""
    steps = body_steps(raw, content_type, max_parts=max_parts)
    while (parsed := _advance(steps)) is None:
        await trio.lowlevel.checkpoint()
    return parsed


def _advance(steps: Generator[None, None, ParsedBody]) -> ParsedBody | None:
    """Do one step of ``steps``: the parsed body once it is done, else None."""
    try:
        next(steps)
    except StopIteration as done:
        parsed: ParsedBody = done.value
        return parsed
    return None


def body_steps(
    raw: bytes, content_type: str | None, *, max_parts: int = MAX_FORM_PARTS
) -> Generator[None, None, ParsedBody]:
    """Parse ``raw`` as :func:`parse_body` does, yielding after each bounded piece of
    work (a slice of a multipart body, or a few dozen of its parts); the parsed body
    is the generator's return value. Raises as :func:`parse_body` does."""
    media_type, params = _media_type(content_type)
    _check_parts(raw, media_type, params.get("boundary"), max_parts)
    charset = params.get("charset")
    files: Mapping[str, FileInfo] = {}
    form = None
    data: object = None
    if _is_json(media_type):
        data = _parse_json(raw, charset)
    elif _is_xml(media_type):
        data = yield from _parse_xml(raw, charset)
    elif media_type == "application/x-www-form-urlencoded":
        text = _decode(raw, charset)
        form = collect_fields(urllib.parse.parse_qsl(text, keep_blank_values=True))
        data = _payload_object(form)
    elif media_type == "multipart/form-data":
        form, files = yield from _parse_multipart(raw, params.get("boundary"), max_parts)
        data = form
    elif media_type.startswith("text/"):
        data = _decode(raw, charset)
    return ParsedBody(data=data, files=files, form=form)


def check_form_parts(raw: bytes, content_type: str | None, max_parts: int = MAX_FORM_PARTS) -> None:
    """Raise :class:`~hookline.errors.PayloadTooLarge` when a form body has more than
    ``max_parts`` parts: multipart delimiters or ``&``-separated fields, counted
    without parsing. Other bodies pass."""
    media_type, params = _media_type(content_type)
    _check_parts(raw, media_type, params.get("boundary"), max_parts)


def _check_parts(raw: bytes, media_type: str, boundary: str | None, max_parts: int) -> None:
    if media_type == "multipart/form-data" and boundary:
        delimiter = b"--" + boundary.encode("latin-1", "replace")
        # Every part opens with a delimiter on a line of its own; the close is one more.
        count = raw.count(b"\r\n" + delimiter) + raw.startswith(delimiter)
        parts = count - 1
    elif media_type == "application/x-www-form-urlencoded":
        parts = raw.count(b"&") + 1
    else:
        return
    if parts > max_parts:
        raise _too_many_parts(max_parts)


def _too_many_parts(max_parts: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the form has more than {max_parts} parts, the limit of this server")


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        return "", {}
    media_type, params = parse_options_header(content_type)
    return media_type.strip().lower(), params


def _is_json(media_type: str) -> bool:
    return media_type in {"application/json", "text/json"} or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _is_xml(media_type: str) -> bool:
    return media_type in {"application/xml", "text/xml"} or (
        media_type.startswith("application/") and media_type.endswith("+xml")
    )


def _parse_xml(raw: bytes, charset: str | None) -> Generator[None, None, object]:
    source: str | bytes = raw
    if charset and charset.lower().replace("_", "-") not in {"utf-8", "utf8"}:
        # The header's charset wins over the document's own declaration (RFC 7303).
        try:
            source = raw.decode(charset)
        except LookupError as exc:
            raise MalformedBody("The body's charset is not a known text encoding.") from exc
        except UnicodeError as exc:
            raise MalformedBody("The body is not valid text in its charset.") from exc
    return (yield from xml_steps(source))


def _payload_object(form: dict[str, str | list[str]]) -> object:
    """A form whose only field is ``payload`` holding a JSON object (GitHub's form
    content type, Slack's interactive components) is that object; any other form is
    itself. A ``payload`` that is not a JSON object leaves the form as it is."""
    payload = form.get("payload")
    if len(form) != 1 or not isinstance(payload, str) or not payload.lstrip().startswith("{"):
        return form
    try:
        value = _parse_json(payload.encode("utf-8", "surrogatepass"), None)
    except MalformedBody:
        return form
    return value if isinstance(value, dict) else form


def _decode(raw: bytes, charset: str | None) -> str:
    if charset and charset.lower().replace("_", "-") not in {"utf-8", "utf8"}:
        try:
            return raw.decode(charset, errors="replace")
        except (LookupError, ValueError):
            # An unknown or non-text codec name from the sender: UTF-8 is the web's default.
            pass
    return raw.decode("utf-8", errors="replace")


def _parse_json(raw: bytes, charset: str | None) -> object:
    if not raw.strip():
        return None
    try:
        source: str | bytes = raw
        if charset and charset.lower().replace("_", "-") not in {"utf-8", "utf8"}:
            source = raw.decode(charset)
        value = json.loads(source, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from exc
    except LookupError as exc:
        raise MalformedBody("The body's charset is not a known text encoding.") from exc
    except UnicodeError as exc:
        raise MalformedBody("The body is not valid text in its charset.") from exc
    except RecursionError as exc:
        raise MalformedBody("The JSON body is nested too deeply.") from exc
    except ValueError as exc:
        # For example an integer literal past Python's digit limit.
        raise MalformedBody("The body is not valid JSON: a value is out of range.") from exc
    # A lone surrogate (an escape such as \ud800 with no pair, or its bytes) is no
    # Unicode text: nothing could store or send it on (issue 13, finding 4). Only a
    # body holding an escape or such bytes (or another charset) needs the check.
    if (b"\\u" in raw or b"\xed" in raw or source is not raw) and _lone_surrogate(value):
        raise MalformedBody(
            "The body is not valid JSON text: a string holds a lone surrogate "
            "(U+D800 to U+DFFF), which is not a Unicode character."
        )
    return value


def _lone_surrogate(value: object) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except RecursionError:
        return False  # no answer; the store still refuses such a value op by op
    return False


def _no_constant(name: str) -> float:
    # NaN and Infinity are not JSON (RFC 8259), though Python reads them: a value the
    # engine could not write back as JSON (an echo would answer `{"pong":NaN}`).
    raise MalformedBody(f"The body is not valid JSON: {name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: read as Infinity
        raise MalformedBody("The body is not valid JSON: a number is out of range.")
    return value


def collect_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, str | list[str]]:
    """Form fields: a name given once maps to its value, a repeated name to a list."""
    fields: dict[str, str | list[str]] = {}
    for name, value in pairs:
        current = fields.get(name)
        if current is None:
            fields[name] = value
        elif isinstance(current, list):
            current.append(value)
        else:
            fields[name] = [current, value]
    return fields


def _parse_multipart(
    raw: bytes, boundary: str | None, max_parts: int
) -> Generator[None, None, tuple[dict[str, str | list[str]], Mapping[str, FileInfo]]]:
    if not boundary:
        raise MalformedBody("The multipart body has no boundary in its Content-Type.")
    try:
        return (yield from _decode_parts(raw, boundary.encode(), max_parts))
    except (MalformedBody, PayloadTooLarge):
        raise
    except (ValueError, AttributeError, TypeError, IndexError) as exc:
        # werkzeug signals a broken body with ValueError (UnicodeDecodeError for
        # undecodable part headers); a few truncated shapes surface as the others.
        raise MalformedBody("The multipart body does not parse.") from exc


def _decode_parts(
    raw: bytes, boundary: bytes, max_parts: int
) -> Generator[None, None, tuple[dict[str, str | list[str]], Mapping[str, FileInfo]]]:
    decoder = MultipartDecoder(boundary)
    fields: list[tuple[str, str]] = []
    files: dict[str, FileInfo] = {}
    part: Field | File | None = None
    chunks: list[bytes] = []
    parts = 0
    view = memoryview(raw)
    offset = 0
    events = 0
    ended = False
    while True:
        event = decoder.next_event()
        if isinstance(event, NeedData):
            if ended:  # pragma: no cover - werkzeug raises instead
                raise MalformedBody("The multipart body ends before its closing boundary.")
            if offset >= len(raw):
                # Fed everything: werkzeug raises for a body without its closing boundary.
                decoder.receive_data(None)
                ended = True
            else:
                decoder.receive_data(bytes(view[offset : offset + _SLICE]))
                offset += _SLICE
                yield
            continue
        events += 1
        if events % _EVENTS_PER_STEP == 0:
            yield
        if isinstance(event, Epilogue):
            break
        if isinstance(event, Field | File):
            parts += 1
            if parts > max_parts:
                raise _too_many_parts(max_parts)
            if not event.name:
                raise MalformedBody("A multipart part has no field name.")
            part, chunks = event, []
        elif isinstance(event, Data) and part is not None:
            chunks.append(event.data)
            if not event.more_data:
                if isinstance(part, File):
                    # A repeated file field keeps its first file, like a repeated header.
                    if part.name not in files:
                        content_type = part.headers.get("content-type")
                        files[part.name] = FileInfo(part.filename, content_type, b"".join(chunks))
                else:
                    fields.append((part.name, b"".join(chunks).decode("utf-8", "replace")))
                part = None
    return collect_fields(fields), files
