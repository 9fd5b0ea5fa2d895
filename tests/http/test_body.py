import base64
import contextlib
import hashlib
import json
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookline.engine._request_context import body_text
from hookline.errors import MalformedBody
from hookline.http._body import parse_body

BOUNDARY = "XyZ123"


def multipart(*parts: str) -> bytes:
    body = "".join(f"--{BOUNDARY}\r\n{part}\r\n" for part in parts) + f"--{BOUNDARY}--\r\n"
    return body.encode()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.github+json",
        "application/cloudevents+json; charset=UTF-8",
        "text/json",
    ],
)
def test_json_content_types_parse_as_json(content_type):
    parsed = parse_body(b'{"ref": "refs/heads/main", "n": [1, 2]}', content_type)
    assert parsed.data == {"ref": "refs/heads/main", "n": [1, 2]}
    assert parsed.files == {}
    assert parsed.form is None


@pytest.mark.parametrize("raw", [b"", b"  \r\n"])
def test_empty_json_body_is_none(raw):
    assert parse_body(raw, "application/json").data is None


def test_malformed_json_names_line_and_column_without_echoing_the_body():
    with pytest.raises(MalformedBody) as info:
        parse_body(b'{\n  "secret-token": oops}', "application/json")
    assert "line 2" in info.value.detail
    assert "column" in info.value.detail
    assert "secret-token" not in info.value.detail
    assert "oops" not in info.value.detail
    assert info.value.status == 400


@pytest.mark.parametrize(
    "raw", [b"[" * 100_000, b"\xff\xfe\xfa{", b"1" * 5000], ids=["deep", "bytes", "bigint"]
)
def test_hostile_json_is_malformed_not_a_crash(raw):
    with pytest.raises(MalformedBody):
        parse_body(raw, "application/json")


def test_json_in_a_declared_charset():
    raw = '{"name": "Zoë"}'.encode("latin-1")
    assert parse_body(raw, "application/json; charset=latin-1").data == {"name": "Zoë"}


def test_form_fields_single_repeated_and_blank():
    parsed = parse_body(
        b"name=Ada+Lovelace&tag=a&tag=b&empty=&email=ada%40example.com",
        "application/x-www-form-urlencoded",
    )
    assert parsed.data == {
        "name": "Ada Lovelace",
        "tag": ["a", "b"],
        "empty": "",
        "email": "ada@example.com",
    }


def test_multipart_text_fields_and_file_descriptions():
    raw = multipart(
        'Content-Disposition: form-data; name="email"\r\n\r\nada@example.com',
        'Content-Disposition: form-data; name="tag"\r\n\r\nx',
        'Content-Disposition: form-data; name="tag"\r\n\r\ny',
        'Content-Disposition: form-data; name="cv"; filename="cv.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-1.4 twelve",
    )
    parsed = parse_body(raw, f"multipart/form-data; boundary={BOUNDARY}")
    assert parsed.data == {"email": "ada@example.com", "tag": ["x", "y"]}
    cv = parsed.files["cv"]
    assert {k: cv[k] for k in ("filename", "content_type", "size")} == {
        "filename": "cv.pdf",
        "content_type": "application/pdf",
        "size": 15,
    }
    assert base64.b64decode(cv["base64"]) == b"%PDF-1.4 twelve"
    assert cv["sha256"] == hashlib.sha256(b"%PDF-1.4 twelve").hexdigest()
    assert "%PDF" not in json.dumps(parsed.data)
    assert parsed.form == parsed.data


def test_multipart_without_boundary_is_malformed():
    with pytest.raises(MalformedBody, match="boundary"):
        parse_body(b"--x\r\n", "multipart/form-data")


@pytest.mark.parametrize(
    "raw",
    [
        b"no boundary anywhere",
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\nunterminated'.encode(),
        f"--{BOUNDARY}\r\nX-Other: 1\r\n\r\nv\r\n--{BOUNDARY}--\r\n".encode(),
    ],
    ids=["no-parts", "unterminated", "no-disposition"],
)
def test_broken_multipart_is_malformed(raw):
    with pytest.raises(MalformedBody):
        parse_body(raw, f"multipart/form-data; boundary={BOUNDARY}")


def test_text_bodies_are_text_with_replacement():
    parsed = parse_body(b"hello \xff", "text/plain")
    assert parsed.data == "hello \ufffd"
    assert body_text(b"hello \xff", "text/plain") == "hello \ufffd"


def test_text_in_a_declared_charset():
    assert parse_body("Grüße".encode("latin-1"), "text/plain; charset=iso-8859-1").data == "Grüße"


@pytest.mark.parametrize("content_type", [None, "", "application/octet-stream", "image/png"])
def test_unknown_or_missing_types_have_no_data_and_raw_text_only_if_utf8(content_type):
    parsed = parse_body(b"\x00\x01abc", content_type)
    assert parsed.data is None
    assert body_text(b"\x00\x01abc", content_type) == "\x00\x01abc"
    # Not text: $context.raw is null rather than mangled (raw_base64 stays exact).
    assert body_text(b"\x89PNG\r\n\x1a\n\xff", content_type) is None


content_types = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain; charset=idna",
            "text/plain; charset=hex",
            "application/json; charset=rot13",
            f"multipart/form-data; boundary={BOUNDARY}",
            "multipart/form-data; boundary=",
            "application/xml",
            "text/xml; charset=latin-1",
        ]
    ),
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                f"--{BOUNDARY}".encode(),
                b"\r\n",
                b"\n",
                b'Content-Disposition: form-data; name="f"',
                b'Content-Disposition: form-data; name="f"; filename="a"',
                b"Content-Disposition: form-data",
                b"--",
                b"\xff",
                b"x",
            ]
        ),
        max_size=20,
    ).map(b"".join),
)


@settings(max_examples=300, deadline=None)
@given(raw=bodies, content_type=content_types)
def test_arbitrary_input_raises_only_malformed_body(raw, content_type):
    # Any other exception escapes and fails the test.
    with contextlib.suppress(MalformedBody):
        parsed = parse_body(raw, content_type)
        assert parsed.form is None or isinstance(parsed.form, dict)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b'{"ping": NaN}', "NaN"),
        (b'{"ping": [Infinity]}', "Infinity"),
        (b'{"ping": -Infinity}', "-Infinity"),
        (b'{"ping": 1e400}', "out of range"),
    ],
)
def test_nan_and_infinity_are_not_json(raw: bytes, named: str) -> None:
    # Issue 13, finding 9: they were read, and echoed back as {"pong":NaN}.
    with pytest.raises(MalformedBody, match=named):
        parse_body(raw, "application/json")
    assert parse_body(b'{"n": 1.5e300}', "application/json").data == {"n": 1.5e300}


@pytest.mark.parametrize(
    "content_type",
    ["application/xml", "text/xml; charset=utf-8", "application/atom+xml", "Application/XML"],
)
def test_xml_bodies_become_mappings(content_type):
    raw = b'<?xml version="1.0"?><order id="7"><item>a</item><item>b</item></order>'
    assert parse_body(raw, content_type).data == {"order": {"@id": "7", "item": ["a", "b"]}}


def test_xml_in_the_headers_charset():
    raw = "<a>Grüße</a>".encode("latin-1")
    assert parse_body(raw, "text/xml; charset=iso-8859-1").data == {"a": "Grüße"}


@pytest.mark.parametrize(
    "raw",
    [
        b'<!DOCTYPE a [<!ENTITY b "x"><!ENTITY c "&b;&b;&b;&b;">]><a>&c;</a>',
        b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/hostname">]><a>&x;</a>',
        b"<a><b></a>",
    ],
    ids=["entity-expansion", "external-entity", "malformed"],
)
def test_hostile_or_broken_xml_is_malformed(raw):
    with pytest.raises(MalformedBody) as info:
        parse_body(raw, "application/xml")
    assert info.value.status == 400


def test_a_form_whose_only_field_is_a_json_payload_is_that_object():
    payload = json.dumps({"ref": "refs/heads/main", "commits": [{"id": "a"}]})
    raw = urllib.parse.urlencode({"payload": payload}).encode()
    parsed = parse_body(raw, "application/x-www-form-urlencoded")
    assert parsed.data == {"ref": "refs/heads/main", "commits": [{"id": "a"}]}
    assert parsed.form == {"payload": payload}


@pytest.mark.parametrize(
    "fields",
    [
        {"payload": "[1, 2]"},
        {"payload": "{not json"},
        {"payload": '{"a": 1}', "other": "x"},
        {"text": '{"a": 1}'},
    ],
    ids=["array", "not-json", "two-fields", "other-name"],
)
def test_other_forms_stay_forms(fields):
    raw = urllib.parse.urlencode(fields).encode()
    parsed = parse_body(raw, "application/x-www-form-urlencoded")
    assert parsed.data == fields
    assert parsed.form == fields


def test_multipart_file_text_only_for_text_content():
    raw = multipart(
        'Content-Disposition: form-data; name="notes"; filename="n.txt"\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\nhéllo",
        'Content-Disposition: form-data; name="img"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n\x89PNG\xff",
    )
    # multipart() encodes str as UTF-8; the PNG part must be raw bytes.
    raw = raw.replace("\x89PNG\xff".encode(), b"\x89PNG\xff")
    files = parse_body(raw, f"multipart/form-data; boundary={BOUNDARY}").files
    assert files["notes"]["text"] == "héllo"
    assert files["img"]["text"] is None
    assert base64.b64decode(files["img"]["base64"]) == b"\x89PNG\xff"
    assert files["img"]["size"] == 5
