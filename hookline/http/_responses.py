"""Quart responses built from hookline's answers and problems."""

from __future__ import annotations

import json
from typing import Any

from quart import Response
from werkzeug.datastructures import Headers

from ..definition import problem_body, problem_headers, rejection_problem
from ..errors import Rejected
from ..store._records import Answer


def answer_response(answer: Answer) -> Response:
    return Response(answer.body, status=answer.status, headers=Headers(list(answer.headers)))


def rejection_response(rejection: Rejected) -> Response:
    status, headers, body = rejection_problem(rejection)
    return Response(body, status=status, headers=Headers(headers))


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    retry_after: float | None = None,
    allow: tuple[str, ...] = (),
    **extra: object,
) -> Response:
    body = problem_body(status, title, detail, type="about:blank", **extra)
    headers = problem_headers(retry_after=retry_after, allow=allow)
    return Response(body, status=status, headers=Headers(headers))


def json_response(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return Response(body, status=status, content_type="application/json")
