"""Parse a webhook body according to its ``Content-Type``, without I/O.

The result becomes ``$context.data``, ``$context.files`` and ``$context.raw``. Which
parser runs is decided by the media type alone:

==========================================================  ==========================
media type                                                  ``data``
==========================================================  ==========================
``application/json``, ``application/*+json``, ``text/json``  the JSON value (empty: None)
``application/x-www-form-urlencoded``                       ``{name: str | [str, ...]}``
``multipart/form-data``                                     text fields as for forms;
                                                            files go to ``files``
``text/*``                                                  the text
anything else, or none                                      None (the caller keeps the
                                                            raw bytes)
==========================================================  ==========================

Only :class:`~hookline.errors.MalformedBody` is ever raised, and its detail never
echoes the body.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable, Mapping

import attrs
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
)

from ..errors import MalformedBody

__all__ = ["ParsedBody", "collect_fields", "parse_body"]


@attrs.frozen
class ParsedBody:
    """A parsed request body.

    ``data`` is the parsed value (a JSON value, a dict of form fields, text, or
    None); ``files`` describes multipart file parts by field name as
    ``{"filename", "content_type", "size"}`` (their content is not kept); ``text``
    is the body decoded as text (its declared charset, else UTF-8) with undecodable
    bytes replaced. The mappings are plain dicts so they encode as msgpack and JSON.
    """

    data: object
    files: Mapping[str, Mapping[str, object]]
    text: str


def parse_body(raw: bytes, content_type: str | None) -> ParsedBody:
    """Parse ``raw`` as ``content_type`` says (see the module docstring).

    Raises :class:`~hookline.errors.MalformedBody` when a JSON body is not valid
    JSON, or a multipart body has no boundary or does not parse. Never raised for
    a media type it does not parse: those give ``data`` None.
    """
    media_type, params = _media_type(content_type)
    text = _decode(raw, params.get("charset"))
    files: Mapping[str, Mapping[str, object]] = {}
    data: object = None
    if _is_json(media_type):
        data = _parse_json(raw, params.get("charset"))
    elif media_type == "application/x-www-form-urlencoded":
        data = collect_fields(urllib.parse.parse_qsl(text, keep_blank_values=True))
    elif media_type == "multipart/form-data":
        data, files = _parse_multipart(raw, params.get("boundary"))
    elif media_type.startswith("text/"):
        data = text
    return ParsedBody(data=data, files=files, text=text)


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        return "", {}
    media_type, params = parse_options_header(content_type)
    return media_type.strip().lower(), params


def _is_json(media_type: str) -> bool:
    return media_type in {"application/json", "text/json"} or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


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
        return json.loads(source)
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
    raw: bytes, boundary: str | None
) -> tuple[dict[str, str | list[str]], Mapping[str, Mapping[str, object]]]:
    if not boundary:
        raise MalformedBody("The multipart body has no boundary in its Content-Type.")
    try:
        return _decode_parts(raw, boundary.encode())
    except MalformedBody:
        raise
    except (ValueError, AttributeError, TypeError, IndexError) as exc:
        # werkzeug signals a broken body with ValueError (UnicodeDecodeError for
        # undecodable part headers); a few truncated shapes surface as the others.
        raise MalformedBody("The multipart body does not parse.") from exc


def _decode_parts(
    raw: bytes, boundary: bytes
) -> tuple[dict[str, str | list[str]], Mapping[str, Mapping[str, object]]]:
    decoder = MultipartDecoder(boundary)
    decoder.receive_data(raw)
    decoder.receive_data(None)
    fields: list[tuple[str, str]] = []
    files: dict[str, Mapping[str, object]] = {}
    part: Field | File | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = decoder.next_event()
        if isinstance(event, Epilogue):
            break
        if isinstance(event, NeedData):  # pragma: no cover - werkzeug raises instead
            raise MalformedBody("The multipart body ends before its closing boundary.")
        if isinstance(event, Field | File):
            if not event.name:
                raise MalformedBody("A multipart part has no field name.")
            part, chunks, size = event, [], 0
        elif isinstance(event, Data) and part is not None:
            if isinstance(part, File):
                size += len(event.data)
            else:
                chunks.append(event.data)
            if not event.more_data:
                if isinstance(part, File):
                    # A repeated file field keeps its first file, like a repeated header.
                    files.setdefault(
                        part.name,
                        {
                            "filename": part.filename,
                            "content_type": part.headers.get("content-type"),
                            "size": size,
                        },
                    )
                else:
                    fields.append((part.name, b"".join(chunks).decode("utf-8", "replace")))
                part = None
    return collect_fields(fields), files
