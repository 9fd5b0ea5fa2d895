import pytest

from hookline.definition._router import Router, compile_path, paths_collide
from hookline.errors import MethodNotAllowed, WorkflowNotFound


def make_router():
    return Router(
        [
            ("github/{repo}", ("POST",), "github-any"),
            ("github/special", ("POST",), "github-special"),
            ("devices/{device}/readings", ("POST", "PUT"), "readings"),
            ("files/{name}.json", ("PUT",), "file"),
            ("status", ("GET", "HEAD"), "status"),
            ("status", ("POST",), "status-post"),
            ("café", ("POST",), "cafe"),
        ]
    )


def test_literal_route_beats_a_parametrised_one():
    router = make_router()
    assert router.match("github/special", "POST") == ("github-special", {})
    assert router.match("github/other", "POST") == ("github-any", {"repo": "other"})


def test_params_are_percent_decoded_and_stay_in_one_segment():
    router = make_router()
    assert router.match("github/org%2Frepo", "POST") == ("github-any", {"repo": "org/repo"})
    assert router.match("devices/d%20%C3%A9/readings", "PUT") == (
        "readings",
        {"device": "d é"},
    )


def test_param_inside_a_segment():
    assert make_router().match("files/report.json", "PUT") == ("file", {"name": "report"})


def test_encoded_and_plain_spellings_of_a_literal_path_match():
    router = make_router()
    assert router.match("caf%C3%A9", "POST")[0] == "cafe"
    assert router.match("café", "POST")[0] == "cafe"
    assert router.match("st%61tus", "GET")[0] == "status"


def test_methods_are_case_insensitive_and_split_across_routes():
    router = make_router()
    assert router.match("status", "get")[0] == "status"
    assert router.match("status", "POST")[0] == "status-post"


@pytest.mark.parametrize(
    "path", ["github", "github/a/b", "github/", "nothing", "files/.json", "devices//readings"]
)
def test_unknown_paths_are_404(path):
    with pytest.raises(WorkflowNotFound) as info:
        make_router().match(path, "POST")
    assert info.value.status == 404


def test_wrong_method_is_405_with_every_method_of_the_path():
    with pytest.raises(MethodNotAllowed) as info:
        make_router().match("status", "DELETE")
    assert info.value.status == 405
    assert info.value.allow == ("GET", "HEAD", "POST")


def test_head_is_not_implied_by_get():
    router = Router([("x", ("GET",), "x")])
    with pytest.raises(MethodNotAllowed) as info:
        router.match("x", "HEAD")
    assert info.value.allow == ("GET",)


def test_a_parametrised_route_answers_a_method_the_literal_one_lacks():
    router = Router([("hooks/ping", ("POST",), "ping"), ("hooks/{name}", ("GET",), "get-any")])
    assert router.match("hooks/ping", "GET") == ("get-any", {"name": "ping"})


def test_first_segment_param_routes_are_found_too():
    router = Router([("{tenant}/events", ("POST",), "t"), ("acme/{kind}", ("POST",), "a")])
    assert router.match("other/events", "POST") == ("t", {"tenant": "other"})
    assert router.match("acme/events", "POST") == ("a", {"kind": "events"})


def test_compile_path_escapes_literals_and_names_groups():
    pattern = compile_path("a.b/{id}+x")
    match = pattern.match("a.b/42+x")
    assert match is not None
    assert match.groupdict() == {"id": "42"}
    assert pattern.match("aXb/42+x") is None
    assert pattern.match("a.b/4/2+x") is None


@pytest.mark.parametrize(
    "template", ["", "/a", "a//b", "a/", "a/{", "a/}", "{1x}", "{a}/{a}", "{a}{b}", "{}"]
)
def test_bad_templates_are_refused(template):
    with pytest.raises(ValueError, match="template"):
        compile_path(template)
    with pytest.raises(ValueError, match="template"):
        Router([(template, ("POST",), "t")])


@pytest.mark.parametrize(
    ("a", "b", "collide"),
    [
        ("github/{repo}", "github/{name}", True),
        ("github/{repo}", "github/special", True),
        ("a/{x}", "{y}/b", True),
        ("{a}.json", "v{b}", True),
        ("github/{repo}", "gitlab/{repo}", False),
        ("{a}.json", "{b}.xml", False),
        ("x/{a}", "x/{a}/y", False),
        ("st%61tus", "status", True),
        ("files/{a}", "files/{a}.json", True),
    ],
)
def test_paths_collide(a, b, collide):
    assert paths_collide(a, b) is collide
    assert paths_collide(b, a) is collide


def test_hundreds_of_routes_each_find_their_target():
    routes = [(f"svc{i}/{{id}}/events", ("POST",), i) for i in range(300)]
    routes += [(f"literal/{i}", ("POST",), 1000 + i) for i in range(300)]
    routes += [("{tenant}/catch/{id}", ("POST",), -1)]
    router = Router(routes)
    assert router.match("svc299/abc/events", "POST") == (299, {"id": "abc"})
    assert router.match("x/catch/1", "POST") == (-1, {"tenant": "x", "id": "1"})
    assert router.match("literal/7", "POST") == (1007, {})
    with pytest.raises(WorkflowNotFound):
        router.match("svc300/abc/events", "POST")
