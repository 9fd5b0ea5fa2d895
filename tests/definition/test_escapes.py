"""Values rendered into URLs and HTML are escaped for where they stand; ``| safe`` opts out."""

from __future__ import annotations

import pytest

from hookline.definition import compile_html, compile_url
from hookline.definition._escapes import UrlPart, url_part
from hookline.definition._templates import compile_value
from hookline.errors import TemplateError

VALUES = {"context": {"v": "a/b?c=d&e#f", "n": 5, "tag": "<img src=x onerror=alert(1)>"}}


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("{{$context.v}}", "a/b?c=d&e#f"),  # the whole URL: as it is
        ("{{$context.v}}/x", "a/b?c=d&e#f/x"),  # a base at the start: as it is
        ("http://h/{{$context.v}}/x", "http://h/a%2Fb%3Fc%3Dd%26e%23f/x"),
        ("http://h/x?q={{$context.v}}&n={{$context.n}}", "http://h/x?q=a%2Fb%3Fc%3Dd%26e%23f&n=5"),
        ("http://h/x#{{$context.v}}", "http://h/x#a%2Fb%3Fc%3Dd%26e%23f"),
        ("http://{{$context.v}}/x", "http://a%2Fb%3Fc%3Dd%26e%23f/x"),
        ("http://h/{{ $context.v | safe }}", "http://h/a/b?c=d&e#f"),
    ],
)
def test_url_values_are_encoded_for_their_part(template: str, rendered: str) -> None:
    assert compile_url(template).render(VALUES) == rendered


def test_the_part_of_each_value_is_known_at_load() -> None:
    assert url_part(()) is UrlPart.BASE
    assert url_part(("https://",)) is UrlPart.HOST
    assert url_part(("https://h:",)) is UrlPart.HOST
    assert url_part(("https://h/a/",)) is UrlPart.PATH
    assert url_part((None, "/users/")) is UrlPart.PATH
    assert url_part(("https://h/a?x=", None, "&y=")) is UrlPart.QUERY
    assert url_part(("https://h/a?x=1#",)) is UrlPart.FRAGMENT


def test_html_values_are_escaped_unless_marked_safe() -> None:
    template = compile_html('<p title="{{$context.tag}}">{{$context.tag}}</p>{{$context.tag|safe}}')
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    assert template.render(VALUES) == (
        f'<p title="{escaped}">{escaped}</p><img src=x onerror=alert(1)>'
    )
    assert compile_html("{{$context.tag}}").render(VALUES) == escaped
    assert compile_html("{{$context.n}}").render(VALUES) == "5"


@pytest.mark.parametrize("template", ["{{$context.v | raw}}", "{{$context.v |}}"])
def test_an_unknown_marker_is_refused(template: str) -> None:
    with pytest.raises(TemplateError, match="expected 'safe' after '\\|'"):
        compile_url(template)


def test_safe_is_refused_where_nothing_is_escaped() -> None:
    with pytest.raises(TemplateError, match="nothing to mark"):
        compile_value({"text": "{{$context.v | safe}}"})
