"""XML as a JSON mapping, parsed safely: the one place hookline reads XML.

Parsing goes through defusedxml, which refuses entity declarations (no "billion
laughs", no quadratic blowup) and external entities and references (no file or
network reads): such a document is refused like a malformed one. The mapping follows
xmltodict's conventions:

- the result has one key, the root element's name: ``<a>1</a>`` is ``{"a": "1"}``;
- an element with neither attributes nor child elements is its text, stripped of
  surrounding whitespace, or None when that is empty (``<a/>``, ``<a> </a>``);
- any other element is a mapping: ``"@name"`` for each attribute, one key per child
  element name (a name repeated among siblings becomes a list, in document order), and
  ``"#text"`` for its own text (all its text outside child elements, joined and
  stripped) when that is not empty;
- every value is a string (or None): XML carries no types;
- names keep the prefix written in the document (``atom:link``); a name in the default
  namespace is written without one. Namespace declarations (``xmlns``) are not kept as
  attributes. Comments and processing instructions are dropped; CDATA is text.

Nesting depth is bounded by nothing but the body's size: the mapping is built without
recursion.
"""

from __future__ import annotations

import io
from collections.abc import Generator
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from ..errors import MalformedBody
from ._json import JSON

__all__ = ["parse_xml", "xml_steps"]

ATTRIBUTE_PREFIX = "@"
TEXT_KEY = "#text"
# :func:`xml_steps` yields after this many parser events (a few milliseconds of work).
_EVENTS_PER_STEP = 512


def parse_xml(source: bytes | str) -> dict[str, JSON]:
    """``source`` (a whole XML document) as a mapping, by the module's conventions.

    Bytes are decoded as the document's XML declaration says (UTF-8 without one).
    Raises :class:`~hookline.errors.MalformedBody` (400) when it is not well-formed
    XML, declares entities, or refers to external ones; the detail never echoes the
    document.
    """
    steps = xml_steps(source)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            mapping: dict[str, JSON] = done.value
            return mapping


def xml_steps(source: bytes | str) -> Generator[None, None, dict[str, JSON]]:
    """:func:`parse_xml` in bounded steps: yields after every few hundred elements so
    a caller can let other tasks run; the mapping is the generator's return value."""
    if isinstance(source, str):
        # A str carries no encoding of its own; an encoding declaration would mislead expat.
        source = source.encode("utf-8")
        source = _drop_declared_encoding(source)
    prefixes: dict[str, str] = {}
    # One frame per open element: its mapping of attributes and children, and its texts.
    stack: list[tuple[dict[str, JSON], list[str]]] = []
    root: dict[str, JSON] = {}
    try:
        events = iterparse(
            io.BytesIO(source),
            events=("start", "end", "start-ns"),
            forbid_dtd=False,
            forbid_entities=True,
            forbid_external=True,
        )
        for count, (event, item) in enumerate(events, 1):
            if count % _EVENTS_PER_STEP == 0:
                yield
            if event == "start-ns":
                prefix, uri = item
                prefixes[uri] = prefix
            elif event == "start":
                assert isinstance(item, Element)
                attributes: dict[str, JSON] = {
                    ATTRIBUTE_PREFIX + _name(key, prefixes): value
                    for key, value in item.attrib.items()
                }
                stack.append((attributes, []))
            else:
                assert isinstance(item, Element)
                mapping, _ = stack.pop()
                value = _value(item, mapping)
                parent = stack[-1][0] if stack else root
                _add(parent, _name(item.tag, prefixes), value)
                # The element's children are in the mapping now; keep only its tail.
                tail = item.tail
                item.clear()
                item.tail = tail
    except DefusedXmlException as exc:
        raise MalformedBody(
            "The XML body declares or refers to entities, which are refused."
        ) from exc
    except ParseError as exc:
        line, column = exc.position
        raise MalformedBody(
            f"The body is not well-formed XML (line {line}, column {column})."
        ) from exc
    except (ValueError, LookupError) as exc:
        raise MalformedBody("The body is not XML in an encoding this server reads.") from exc
    if not root:  # pragma: no cover - expat refuses a document without an element
        raise MalformedBody("The body is not well-formed XML (no element).")
    return root


def _drop_declared_encoding(source: bytes) -> bytes:
    if not source.startswith(b"<?xml"):
        return source
    end = source.find(b"?>")
    if end < 0:
        return source
    return b'<?xml version="1.0"?>' + source[end + 2 :]


def _name(tag: str, prefixes: dict[str, str]) -> str:
    if not tag.startswith("{"):
        return tag
    uri, _, local = tag[1:].partition("}")
    prefix = prefixes.get(uri, "")
    return f"{prefix}:{local}" if prefix else local


def _value(element: Element, mapping: dict[str, JSON]) -> JSON:
    texts = [element.text or ""]
    texts.extend(child.tail or "" for child in element)
    text = "".join(texts).strip()
    if not mapping:
        return text or None
    if text:
        mapping[TEXT_KEY] = text
    return mapping


def _add(parent: dict[str, JSON], name: str, value: JSON) -> None:
    # An element's value is never a list, so a list here is a repeated name's.
    if name not in parent:
        parent[name] = value
        return
    current = parent[name]
    if isinstance(current, list):
        current.append(value)
    else:
        parent[name] = [current, value]
