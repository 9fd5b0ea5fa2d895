"""CORS on the webhook route: a workflow's ``trigger.cors`` applied to its answers.

The decisions are :mod:`hookline.definition._cors`'s; this module finds the workflow a
browser's request is for and attaches the headers. A workflow without ``cors`` is not
touched: its OPTIONS requests keep their 405, and no answer gets CORS headers.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is routed by the method
it asks about, answered 204 and not recorded as a delivery: it carries no body and
starts nothing. Any other answer (accepted or refused) of a workflow with ``cors``
carries ``Access-Control-Allow-Origin`` when the request's ``Origin`` is allowed, so a
page can read a 401 or 429 as well as a 202.
"""

from __future__ import annotations

from ..definition import cors_answer_headers, cors_preflight_headers
from ..engine._engine import Engine
from ..errors import Rejected
from ..store._records import Answer
from ._scope import Scope, first_header

__all__ = ["cors_answer", "preflight_answer"]


def preflight_answer(engine: Engine, scope: Scope, webhook_path: str) -> Answer | None:
    """The 204 answer to a CORS preflight for a workflow with ``cors``; None for any
    other OPTIONS request (it is then answered as before)."""
    requested = first_header(scope, b"access-control-request-method")
    if requested is None:
        return None
    try:
        workflow, _ = engine.route(webhook_path, requested.strip().upper())
    except Rejected:
        return None
    policy = workflow.trigger.cors
    if policy is None:
        return None
    headers = cors_preflight_headers(policy, first_header(scope, b"origin"))
    headers.append(("Allow", ", ".join((*workflow.trigger.methods, "OPTIONS"))))
    return Answer(204, tuple(headers), b"")


def cors_answer(engine: Engine, scope: Scope, webhook_path: str, answer: Answer) -> Answer:
    """``answer`` with the CORS headers of the workflow the request was for, when the
    request has an ``Origin`` and that workflow has ``cors``; else ``answer`` itself."""
    origin = first_header(scope, b"origin")
    if origin is None:
        return answer
    try:
        workflow, _ = engine.route(webhook_path, scope["method"])
    except Rejected:
        return answer
    policy = workflow.trigger.cors
    if policy is None:
        return answer
    added = cors_answer_headers(policy, origin)
    if not added:
        return answer
    return Answer(answer.status, (*answer.headers, *added), answer.body)
