"""Credentials ``verify`` consumed: kept out of ``$context`` and of stored records.

Each verify scheme declares what it reads as a credential or signature: the headers in
its ``secret_headers`` (``Authorization`` for ``bearer``/``basic``/``jwt``, the
``header`` scheme's own name such as ``X-Api-Key``, ``X-Hub-Signature-256``...) and, in
an optional ``secret_query`` attribute, query parameters (see
:class:`~hookline.verify.Verification`). Once a request is routed, the ingress replaces
those values by ``[redacted]`` in the headers and query the delivery carries, so no node
reads them, no execution record or job output stores them, and no refused delivery
keeps them. The checks themselves still see the request as received. A trigger that
needs them sets ``expose_credentials: true`` (issue 13, finding 9).
"""

from __future__ import annotations

from typing import Any

from ..engine._delivery import REDACTED

__all__ = ["without_credentials"]


def without_credentials(
    headers: dict[str, str],
    query: dict[str, Any],
    secret_headers: frozenset[str],
    secret_query: frozenset[str],
) -> tuple[dict[str, str], dict[str, Any]]:
    """``headers`` and ``query`` with the named ones' values ``[redacted]`` (every
    value of a repeated parameter). The mappings given are returned as they are when
    nothing is to be redacted; otherwise new ones, the given ones untouched."""
    if secret_headers and not secret_headers.isdisjoint(headers):
        headers = {
            name: REDACTED if name in secret_headers else value for name, value in headers.items()
        }
    if secret_query and not secret_query.isdisjoint(query):
        query = {
            name: _redacted(value) if name in secret_query else value
            for name, value in query.items()
        }
    return headers, query


def _redacted(value: Any) -> Any:
    return [REDACTED] * len(value) if isinstance(value, list) else REDACTED
