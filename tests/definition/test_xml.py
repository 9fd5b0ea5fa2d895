"""XML bodies as mappings (xmltodict's conventions), with entities refused."""

from __future__ import annotations

import pytest

from hookline.definition import parse_xml
from hookline.errors import MalformedBody


def test_wecom_style_message_becomes_a_flat_mapping() -> None:
    body = (
        b"<xml><ToUserName><![CDATA[corp]]></ToUserName><AgentID>1000002</AgentID>"
        b"<Encrypt><![CDATA[c2VjcmV0]]></Encrypt></xml>"
    )
    assert parse_xml(body) == {
        "xml": {"ToUserName": "corp", "AgentID": "1000002", "Encrypt": "c2VjcmV0"}
    }


def test_attributes_text_repeats_and_empty_elements() -> None:
    body = '<order id="7"> note <item sku="a">2</item><item>3</item><gift/></order>'
    assert parse_xml(body) == {
        "order": {
            "@id": "7",
            "item": [{"@sku": "a", "#text": "2"}, "3"],
            "gift": None,
            "#text": "note",
        }
    }


def test_namespaces_keep_the_documents_prefixes() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="urn:g">'
        b'<entry g:rank="1"><g:price>3</g:price></entry></feed>'
    )
    assert parse_xml(body) == {"feed": {"entry": {"@g:rank": "1", "g:price": "3"}}}


def test_declared_encoding_is_honoured() -> None:
    assert parse_xml(
        '<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>'.encode("latin-1")
    ) == {"a": "\xe9"}
    assert parse_xml('<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>') == {"a": "\xe9"}


@pytest.mark.parametrize(
    "body",
    [
        # billion laughs, cut short: any entity declaration is refused
        b'<!DOCTYPE a [<!ENTITY x "lol"><!ENTITY y "&x;&x;&x;">]><a>&y;</a>',
        b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
        b'<!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><a/>',
    ],
)
def test_entities_are_refused_without_being_read(body: bytes) -> None:
    with pytest.raises(MalformedBody, match="entities") as caught:
        parse_xml(body)
    assert "passwd" not in str(caught.value)


@pytest.mark.parametrize("body", [b"", b"<a><b></a>", b"<a/><b/>", b"not xml"])
def test_malformed_documents_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedBody, match="well-formed"):
        parse_xml(body)


def test_deep_nesting_needs_no_recursion() -> None:
    depth = 5000
    mapping = parse_xml(b"<a>" * depth + b"x" + b"</a>" * depth)
    for _ in range(depth - 1):
        inner = mapping["a"]
        assert isinstance(inner, dict)
        mapping = inner
    assert mapping == {"a": "x"}
