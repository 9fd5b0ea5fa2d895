import json

import pytest

from hookline.definition._problem import problem_body, problem_headers, rejection_problem
from hookline.errors import (
    MalformedBody,
    MethodNotAllowed,
    QueueFull,
    Unavailable,
    WorkflowNotFound,
)


def test_problem_body_has_the_rfc9457_members_and_extensions():
    body = json.loads(problem_body(500, "Workflow failed", "node x failed", execution_id="e1"))
    assert body == {
        "type": "about:blank",
        "title": "Workflow failed",
        "status": 500,
        "detail": "node x failed",
        "execution_id": "e1",
    }


def test_problem_body_keeps_non_ascii_text():
    body = problem_body(400, "Bad", "café", type="https://example.com/p")
    assert json.loads(body)["detail"] == "café"
    assert json.loads(body)["type"] == "https://example.com/p"


@pytest.mark.parametrize(
    ("retry_after", "expected"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (30.0, "30")]
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(retry_after, expected):
    headers = dict(problem_headers(retry_after=retry_after))
    assert headers["retry-after"] == expected
    assert headers["content-type"] == "application/problem+json"


def test_headers_without_options_carry_only_the_content_type():
    assert problem_headers() == [("content-type", "application/problem+json")]


def test_allow_lists_the_methods():
    assert dict(problem_headers(allow=["GET", "POST"]))["allow"] == "GET, POST"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_retry_after_must_be_finite(bad):
    with pytest.raises(ValueError, match="finite"):
        problem_headers(retry_after=bad)


def test_method_not_allowed_answers_405_with_allow():
    status, headers, body = rejection_problem(
        MethodNotAllowed("no GET here", allow=("POST", "PUT"))
    )
    assert status == 405
    assert dict(headers)["allow"] == "POST, PUT"
    parsed = json.loads(body)
    assert parsed["status"] == 405
    assert parsed["detail"] == "no GET here"
    assert parsed["type"].endswith("/method-not-allowed")


@pytest.mark.parametrize(("exc", "status"), [(QueueFull("full"), 429), (Unavailable("off"), 503)])
def test_retryable_rejections_carry_retry_after(exc, status):
    got_status, headers, body = rejection_problem(exc)
    assert got_status == status
    assert int(dict(headers)["retry-after"]) >= 1
    assert json.loads(body)["status"] == status


def test_explicit_retry_after_overrides_the_class_default():
    _, headers, _ = rejection_problem(Unavailable("stopping", retry_after=12.5))
    assert dict(headers)["retry-after"] == "13"


@pytest.mark.parametrize("exc", [WorkflowNotFound("none"), MalformedBody("bad json")])
def test_plain_rejections_have_no_retry_after_nor_allow(exc):
    status, headers, body = rejection_problem(exc, instance="/api/webhooks/x")
    names = {name for name, _ in headers}
    assert names == {"content-type"}
    parsed = json.loads(body)
    assert parsed["status"] == status == exc.status
    assert parsed["title"] == exc.title
    assert parsed["instance"] == "/api/webhooks/x"
