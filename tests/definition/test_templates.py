import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookline.definition._templates import ROOTS, compile_template, compile_value
from hookline.errors import TemplateError

ROOTS_DATA: dict[str, Any] = {
    "context": {
        "data": {
            "ref": "refs/heads/main",
            "n": 5,
            "ratio": 0.5,
            "ok": True,
            "nothing": None,
            "pusher": {"name": "octocat"},
            "commits": [{"id": "a1"}, {"id": "b2"}],
            "tags": ["x", "y"],
            "odd key": {"a.b": 1, 'q"uote': 2, "back\\slash": 3},
        },
        "headers": {"x-github-delivery": "d-1", "content-type": "application/json"},
    },
    "nodes": {"branch": {"branch": "main"}, "7": "seven"},
    "scopes": {"loop": {"item": {"v": 1}, "index": 0, "length": 3}},
    "execution": {"id": "ex-1"},
    "workflow": {"key": "github-push"},
    "system": {"now": "2024-01-01T00:00:00Z"},
    "env": {"DEPLOY_CHANNEL": "#deploys"},
}


def render(text: str) -> Any:
    return compile_template(text).render(ROOTS_DATA)


def test_roots_are_the_documented_variables() -> None:
    assert {"context", "nodes", "scopes", "execution", "workflow", "system", "env"} == ROOTS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{$context.data.ref}}", "refs/heads/main"),
        ("{{$context.data.n}}", 5),
        ("{{ $context.data.n }}", 5),
        ("{{$context.data.ratio}}", 0.5),
        ("{{$context.data.ok}}", True),
        ("{{$context.data.nothing}}", None),
        ("{{$context.data.pusher}}", {"name": "octocat"}),
        ("{{$context.data.tags}}", ["x", "y"]),
        ("{{$context.headers.x-github-delivery}}", "d-1"),
        ("{{$context.data.commits[1].id}}", "b2"),
        ("{{$context.data.commits[-1].id}}", "b2"),
        ("{{$context.data.commits.0.id}}", "a1"),
        ('{{$context.data["odd key"]["a.b"]}}', 1),
        ("{{$context.data['odd key']['q\"uote']}}", 2),
        ('{{$context.data["odd key"]["q\\"uote"]}}', 2),
        ('{{$context.data["odd key"]["back\\\\slash"]}}', 3),
        ('{{$context.data[ "n" ]}}', 5),
        ("{{$nodes.branch.branch}}", "main"),
        ("{{$jobsMapByNodeKey.branch.branch}}", "main"),
        ("{{$nodes.7}}", "seven"),
        ("{{$scopes.loop.item.v}}", 1),
        ("{{$scopes.loop.length}}", 3),
        ("{{$execution.id}}", "ex-1"),
        ("{{$workflow.key}}", "github-push"),
        ("{{$system.now}}", "2024-01-01T00:00:00Z"),
        ("{{$env.DEPLOY_CHANNEL}}", "#deploys"),
        ("{{$workflow}}", {"key": "github-push"}),
    ],
)
def test_a_lone_expression_yields_the_typed_value(text: str, expected: object) -> None:
    assert render(text) == expected
    assert type(render(text)) is type(expected)


@pytest.mark.parametrize(
    "text",
    [
        "{{$context.data.missing}}",
        "{{$context.data.missing.deeper}}",
        "{{$context.data.commits[5].id}}",
        "{{$context.data.commits[-3]}}",
        "{{$context.data.n.x}}",
        "{{$context.data.n[0]}}",
        "{{$context.data.ref[0]}}",
        "{{$context.data.ref.length}}",
        "{{$context.data.nothing.x}}",
        "{{$context.data.tags.x}}",
        '{{$context.data.tags["0"]}}',
    ],
)
def test_a_missing_path_yields_none(text: str) -> None:
    assert render(text) is None


def test_a_root_absent_from_the_variables_yields_none() -> None:
    assert compile_template("{{$env.X}}").render({}) is None
    assert compile_template("[{{$env.X}}]").render({}) == "[]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("push to {{$context.data.ref}}", "push to refs/heads/main"),
        ("n={{$context.data.n}}", "n=5"),
        ("r={{$context.data.ratio}}", "r=0.5"),
        ("ok={{$context.data.ok}}", "ok=true"),
        ("nothing=[{{$context.data.nothing}}]", "nothing=[]"),
        ("missing=[{{$context.data.missing}}]", "missing=[]"),
        ("p={{$context.data.pusher}}", 'p={"name":"octocat"}'),
        ("t={{$context.data.tags}}", 't=["x","y"]'),
        ("{{$nodes.branch.branch}}/{{$execution.id}}", "main/ex-1"),
        (" {{$context.data.n}}", " 5"),
        ("{{$context.data.n}} ", "5 "),
    ],
)
def test_text_around_expressions_interpolates_text(text: str, expected: str) -> None:
    assert render(text) == expected


def test_interpolation_writes_unicode_as_is_and_unknown_objects_as_text() -> None:
    compiled = compile_template("v={{$context.v}}")
    assert compiled.render({"context": {"v": {"name": "Zoë"}}}) == 'v={"name":"Zoë"}'
    assert compiled.render({"context": {"v": b"raw"}}) == "v=raw"
    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert compiled.render({"context": {"v": cyclic}}).startswith("v=")
    assert compiled.render({"context": {"v": {(1, 2): "tuple key"}}}).startswith("v=")


@pytest.mark.parametrize(
    "text", ["plain", "", "a } b", "a }} b", "{ not a template }", "{$context.x}", "$context"]
)
def test_text_without_double_braces_is_static(text: str) -> None:
    compiled = compile_template(text)
    assert compiled.is_static
    assert compiled.render(ROOTS_DATA) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{{$foo.bar}}", "unknown variable '$foo' in '{{$foo.bar}}'; expected one of $context"),
        ("abc {{$context.x", "unterminated '{{' at column 5"),
        ("{{$context.x}", "unterminated"),
        ("{{}}", "empty expression"),
        ("{{   }}", "empty expression"),
        ("{{context.x}}", "expected a variable starting with '$'"),
        ("{{$}}", "expected a variable name after '$'"),
        ("{{$context..x}}", "expected a name after '.'"),
        ("{{$context.}}", "expected a name after '.'"),
        ("{{$context[x]}}", "expected an integer or a quoted key"),
        ("{{$context[0}}", "expected ']'"),
        ("{{$context['a]}}", "unterminated quoted key"),
        ("{{$context.a b}}", "expected '.name', '[index]', a comparison or '}}'"),
        ("{{$context.a + 1}}", "expected '.name', '[index]', a comparison or '}}'"),
        ("ok {{$context.a}} then {{$nope}}", "unknown variable '$nope'"),
    ],
)
def test_bad_templates_fail_at_compile_time_saying_what_and_where(text: str, fragment: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(fragment)):
        compile_template(text)


def test_compile_value_walks_mappings_and_lists() -> None:
    compiled = compile_value(
        {
            "text": "push by {{$context.data.pusher.name}}",
            "n": "{{$context.data.n}}",
            "list": ["{{$execution.id}}", 1, None, {"deep": "{{$env.DEPLOY_CHANNEL}}"}],
            "static": {"keep": [1, 2]},
            "{{$context.data.n}}": "keys are not templates",
        }
    )
    assert not compiled.is_static
    assert compiled.render(ROOTS_DATA) == {
        "text": "push by octocat",
        "n": 5,
        "list": ["ex-1", 1, None, {"deep": "#deploys"}],
        "static": {"keep": [1, 2]},
        "{{$context.data.n}}": "keys are not templates",
    }


def test_compile_value_renders_a_tuple_as_a_list() -> None:
    assert compile_value(("{{$execution.id}}", 2)).render(ROOTS_DATA) == ["ex-1", 2]


@pytest.mark.parametrize("value", [None, 5, 2.5, True, "text", {"a": [1, "b"]}, [], ("a",)])
def test_a_static_value_renders_as_itself_without_copying(value: object) -> None:
    compiled = compile_value(value)
    assert compiled.is_static
    assert compiled.source is value
    assert compiled.render(ROOTS_DATA) is value


def test_compile_value_names_the_place_of_a_nested_error() -> None:
    with pytest.raises(TemplateError, match=r"^text\[1\]: unknown variable '\$x'"):
        compile_value({"text": ["fine", "{{$x}}"]})


def test_compiled_values_compare_by_source() -> None:
    assert compile_value({"a": "{{$context.x}}"}) == compile_value({"a": "{{$context.x}}"})
    assert compile_template("{{$context.x}}") != compile_template("{{$context.y}}")


def test_rendering_reads_the_variables_given_each_time() -> None:
    compiled = compile_template("{{$context.data.n}}")
    assert [compiled.render({"context": {"data": {"n": i}}}) for i in range(3)] == [0, 1, 2]


# Property tests: any leaf of any nested structure can be reached by a path.

keys = st.text(max_size=6)
json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_trees = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def leaf_paths(
    value: object, path: tuple[object, ...] = ()
) -> Iterator[tuple[tuple[object, ...], object]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*path, index))
    else:
        yield path, value


def expression(path: tuple[object, ...], *, negative: bool, lengths: list[int]) -> str:
    parts = []
    for step, length in zip(path, lengths, strict=True):
        if isinstance(step, int):
            parts.append(f"[{step - length if negative else step}]")
        elif isinstance(step, str) and _SEGMENT.fullmatch(step):
            parts.append(f".{step}")
        else:
            escaped = str(step).replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'["{escaped}"]')
    return "{{$context" + "".join(parts) + "}}"


def container_lengths(tree: object, path: tuple[object, ...]) -> list[int]:
    lengths = []
    node: Any = tree
    for step in path:
        lengths.append(len(node))
        node = node[step]
    return lengths


@given(json_trees, st.data(), st.booleans())
def test_a_path_to_any_leaf_renders_that_leaf(
    tree: object, data: st.DataObject, negative: bool
) -> None:
    path, leaf = data.draw(st.sampled_from(list(leaf_paths(tree))))
    text = expression(path, negative=negative, lengths=container_lengths(tree, path))
    assert compile_template(text).render({"context": tree}) == leaf


@given(json_trees, st.data())
def test_interpolating_any_leaf_gives_its_text(tree: object, data: st.DataObject) -> None:
    path, leaf = data.draw(st.sampled_from(list(leaf_paths(tree))))
    text = expression(path, negative=False, lengths=container_lengths(tree, path))
    rendered = compile_template(f"<{text}>").render({"context": tree})
    if leaf is None:
        inner = ""
    elif isinstance(leaf, bool):
        inner = json.dumps(leaf)
    elif isinstance(leaf, str):
        inner = leaf
    elif isinstance(leaf, int | float):
        inner = str(leaf)
    else:  # an empty list or mapping
        inner = json.dumps(leaf)
    assert rendered == f"<{inner}>"


@given(st.text(), json_trees)
def test_any_string_compiles_or_fails_cleanly_and_rendering_never_raises(
    text: str, tree: object
) -> None:
    try:
        compiled = compile_template(text)
    except TemplateError:
        return
    compiled.render({"context": tree, "nodes": tree})


EXPRESSIONS = ["{{$context.a}}", "{{ $context.a[0] }}", "{{$nodes.x['y']}}"]


@given(
    st.lists(st.sampled_from(["text ", "}", "{ ", " ", "ü", *EXPRESSIONS]), max_size=8), json_trees
)
def test_interpolation_never_raises_and_keeps_the_text(parts: list[str], tree: object) -> None:
    text = "".join(parts)
    rendered = compile_template(text).render({"context": {"a": tree}, "nodes": tree})
    if not any(part in EXPRESSIONS for part in parts):
        assert rendered == text
    elif len(parts) > 1:
        assert isinstance(rendered, str)
        for part in parts:
            if part not in EXPRESSIONS:
                assert part in rendered


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{{{$context.data.n}}}", "{5}"), ("{{{{$context.data.n}}}}", "{{5}}")],
)
def test_extra_braces_around_an_expression_are_text(text: str, expected: str) -> None:
    assert render(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{$context.data.ref == 'refs/heads/main' ? 100 : 0}}", 100),
        ('{{ $context.data.ref != "refs/heads/main" ? 100 : 0 }}', 0),
        # Numbers compare as numbers, as in the condition node.
        ("{{$context.data.n >= '5' ? 'big' : 'small'}}", "big"),
        ("{{$context.data.ratio < 0.25 ? -1 : 1e3}}", 1000.0),
        ("{{$context.data.n > $context.data.ratio ? $nodes.branch.branch : null}}", "main"),
        ("{{$context.data.missing == null ? true : false}}", True),
        ("{{$context.data.ok == true ? $context.data.tags : $context.data.commits}}", ["x", "y"]),
        ("plan: {{$context.data.n<=4?'lo':'hi'}}!", "plan: hi!"),
    ],
)
def test_a_comparison_chooses_between_two_values(text: str, expected: object) -> None:
    assert compile_template(text).render(ROOTS_DATA) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{{$context.data.n == 1 ? 2}}", "expected ':'"),
        ("{{$context.data.n == 1 : 2}}", "expected '?'"),
        ("{{$context.data.n == ? 1 : 2}}", "expected a variable, a number, a quoted string"),
        ("{{$context.data.n = 1 ? 1 : 2}}", "a comparison or '}}'"),
        ("{{$context.data.n == 1 ? $nope : 2}}", "unknown variable '$nope'"),
        ("{{$context.data.n == 'open ? 1 : 2}}", "unterminated quoted"),
    ],
)
def test_a_bad_choice_is_refused_at_compile_time(text: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(problem)):
        compile_template(text)
