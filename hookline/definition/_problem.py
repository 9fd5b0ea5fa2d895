"""RFC 9457 problem details: the body and headers of every error answer.

Pure functions, no I/O: the ingress route and the admin API turn a
:class:`~hookline.errors.Rejected` (or any status, title and detail) into the
``(status, headers, body)`` triple they answer with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from ..errors import MethodNotAllowed, Rejected, Unauthenticated

__all__ = ["PROBLEM_CONTENT_TYPE", "problem_body", "problem_headers", "rejection_problem"]

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(
    status: int, title: str, detail: str, *, type: str = "about:blank", **extra: object
) -> bytes:
    """Encode a problem details object as UTF-8 JSON bytes.

    The members are ``type``, ``title``, ``status`` and ``detail``, then each of
    ``extra`` (extension members such as ``execution_id`` or ``instance``). An extra
    that is not JSON-serialisable raises :class:`TypeError`: that is a bug in the
    caller, not something a sender can cause.
    """
    document: dict[str, object] = {"type": type, "title": title, "status": status}
    document["detail"] = detail
    document.update(extra)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def problem_headers(
    *,
    retry_after: float | None = None,
    allow: Sequence[str] = (),
    www_authenticate: str | None = None,
) -> list[tuple[str, str]]:
    """The headers of a problem answer.

    Always ``content-type: application/problem+json``; ``retry-after`` as a whole
    number of seconds (rounded up, at least 1, because ``Retry-After: 0`` invites an
    immediate retry storm) when ``retry_after`` is given; ``allow`` as a
    comma-separated list when methods are given; ``www-authenticate`` (the challenge
    of a 401) when given. Raises :class:`ValueError` for a
    ``retry_after`` that is not a finite number.
    """
    headers = [("content-type", PROBLEM_CONTENT_TYPE)]
    if retry_after is not None:
        if not math.isfinite(retry_after):
            raise ValueError(f"retry_after must be a finite number of seconds, got {retry_after}")
        headers.append(("retry-after", str(max(1, math.ceil(retry_after)))))
    if allow:
        headers.append(("allow", ", ".join(allow)))
    if www_authenticate:
        headers.append(("www-authenticate", www_authenticate))
    return headers


def rejection_problem(exc: Rejected, **extra: object) -> tuple[int, list[tuple[str, str]], bytes]:
    """The complete answer to a refused delivery: ``(status, headers, body)``.

    Uses the rejection's ``status``, ``title``, ``detail``, ``type`` and
    ``retry_after``; a :class:`~hookline.errors.MethodNotAllowed` adds ``Allow``, an
    :class:`~hookline.errors.Unauthenticated` with a challenge ``WWW-Authenticate``.
    ``extra`` becomes extension members of the body.
    """
    allow = exc.allow if isinstance(exc, MethodNotAllowed) else ()
    challenge = exc.challenge if isinstance(exc, Unauthenticated) else None
    headers = problem_headers(retry_after=exc.retry_after, allow=allow, www_authenticate=challenge)
    body = problem_body(exc.status, exc.title, exc.detail, type=exc.type, **extra)
    return exc.status, headers, body
