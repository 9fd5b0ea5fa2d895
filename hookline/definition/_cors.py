"""A workflow's CORS policy (``trigger.cors``) and the headers it answers with.

Pure code: :func:`parse_cors` validates the YAML at load time (errors name the field),
:func:`cors_preflight_headers` and :func:`cors_answer_headers` decide the ``Access-Control-*``
headers of a preflight and of any other answer. The HTTP layer only attaches them.

An origin is allowed when it is listed exactly (scheme, host and port, as browsers send
``Origin``) or the list holds ``"*"``. A request from an origin that is not allowed
gets no CORS headers at all, so the browser keeps the answer from the page. Credentials
(cookies) are never allowed: webhooks authenticate by signature or token.
"""

from __future__ import annotations

import re

import attrs

from ._fields import Fields

__all__ = ["CorsPolicy", "cors_answer_headers", "cors_preflight_headers", "parse_cors"]

Header = tuple[str, str]

# scheme://host[:port], nothing after: what a browser puts in Origin.
_ORIGIN = re.compile(r"(?i)[a-z][a-z0-9+.-]*://[^/?#\s:]+(:[0-9]{1,5})?")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DEFAULT_HEADERS = ("content-type",)
_ORIGIN_EXPECTED = "an origin such as 'https://app.example.com' (scheme, host, port), or '*'"


@attrs.frozen
class CorsPolicy:
    """``origins`` as written (``"*"`` for any); ``headers`` the request headers a page
    may send (lower case); ``methods`` the methods it may use; ``max_age`` how long
    (seconds) a browser may keep a preflight's answer (None: the browser's default)."""

    origins: frozenset[str]
    methods: tuple[str, ...]
    headers: tuple[str, ...] = _DEFAULT_HEADERS
    max_age: int | None = None

    def allows(self, origin: str | None) -> bool:
        return origin is not None and ("*" in self.origins or origin.lower() in self.origins)


def parse_cors(fields: Fields, methods: tuple[str, ...]) -> CorsPolicy:
    """The policy in ``fields`` (the ``cors`` mapping); ``methods`` (the trigger's) are
    the default ``methods``, and listing another one is an error."""
    written = fields.strings("origins")
    if not written:
        fields.fail("origins", "a non-empty list of origins, or ['*']", written)
    origins: set[str] = set()
    for index, entry in enumerate(written):
        origin = entry.strip().rstrip("/")
        if origin != "*" and _ORIGIN.fullmatch(origin) is None:
            fields.fail(f"origins[{index}]", _ORIGIN_EXPECTED, origin)
        origins.add(origin.lower())
    written_methods = fields.strings("methods", methods)
    if not written_methods:
        fields.fail("methods", "a non-empty list of the trigger's methods", written_methods)
    for index, method in enumerate(written_methods):
        if method.upper() not in methods:
            expected = "one of the trigger's methods: " + ", ".join(methods)
            fields.fail(f"methods[{index}]", expected, method)
    chosen = tuple(dict.fromkeys(method.upper() for method in written_methods))
    headers = fields.strings("headers", _DEFAULT_HEADERS)
    for index, name in enumerate(headers):
        if _TOKEN.fullmatch(name) is None:
            fields.fail(f"headers[{index}]", "a header name (letters, digits, '-')", name)
    max_age = None
    if fields.has("max_age"):
        max_age = int(fields.duration("max_age", positive=False))
    policy = CorsPolicy(
        origins=frozenset(origins),
        methods=chosen,
        headers=tuple(dict.fromkeys(name.lower() for name in headers)),
        max_age=max_age,
    )
    fields.done()
    return policy


def cors_preflight_headers(policy: CorsPolicy, origin: str | None) -> list[Header]:
    """The headers of a preflight's 204 from ``origin``: none for an origin the policy
    does not allow."""
    if not policy.allows(origin):
        return [("Vary", "Origin")]
    headers = cors_answer_headers(policy, origin)
    headers.append(("Access-Control-Allow-Methods", ", ".join(policy.methods)))
    if policy.headers:
        headers.append(("Access-Control-Allow-Headers", ", ".join(policy.headers)))
    if policy.max_age is not None:
        headers.append(("Access-Control-Max-Age", str(policy.max_age)))
    return headers


def cors_answer_headers(policy: CorsPolicy, origin: str | None) -> list[Header]:
    """The CORS headers of any other answer to ``origin`` (none when not allowed).

    A listed origin is echoed, with ``Vary: Origin`` so a cache keeps answers apart;
    ``"*"`` is answered as ``*``."""
    if not policy.allows(origin):
        return [("Vary", "Origin")] if "*" not in policy.origins else []
    assert origin is not None
    if "*" in policy.origins:
        return [("Access-Control-Allow-Origin", "*")]
    return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
