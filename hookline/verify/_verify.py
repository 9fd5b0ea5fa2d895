"""A workflow's ``verify`` list, compiled once at load time and run on each request.

:func:`compile_verifiers` turns the loosely validated ``Verifier(scheme, options)``
entries (``env:`` secrets already resolved) into a :class:`Verification`, checking each
scheme's options and refusing a bad one with a
:class:`~hookline.errors.DefinitionError` that names the field path, such as
``workflows/github.yaml: trigger.verify[0].github.secret: expected ...``.

:meth:`Verification.verify` runs every check on a :class:`SignedRequest`; all must
pass (DESIGN.md section 6). It is pure: the ingress route builds the request, passes
the time, and turns the raised error into the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ..definition import Fields
from ._credentials import Basic, Bearer, SharedHeader, gitlab
from ._dingtalk import DingTalk
from ._dingtalk_events import DingTalkEvents
from ._feishu import Feishu
from ._generic_hmac import GenericHmac
from ._jwt_scheme import Jwt
from ._plugin_schemes import plugin_schemes
from ._schemes import GitHub, Shopify, Slack, StandardWebhooks, Stripe
from ._signed import Check, SignedRequest, Verified
from ._twilio import Twilio
from ._wecom import WeCom

__all__ = ["SCHEMES", "SignedRequest", "Verification", "Verified", "Verifier", "compile_verifiers"]


@attrs.frozen
class Verifier:
    """One ``verify`` entry: a scheme name and its raw options (checked when compiled)."""

    scheme: str
    options: Any


SCHEMES: Mapping[str, Callable[[Fields], Check]] = {
    "github": GitHub.compile,
    "gitlab": gitlab,
    "stripe": Stripe.compile,
    "slack": Slack.compile,
    "standard_webhooks": StandardWebhooks.compile,
    "shopify": Shopify.compile,
    "twilio": Twilio.compile,
    "dingtalk": DingTalk.compile,
    "wecom": WeCom.compile,
    "feishu": Feishu.compile,
    "dingtalk_events": DingTalkEvents.compile,
    "hmac": GenericHmac.compile,
    "basic": Basic.compile,
    "bearer": Bearer.compile,
    "header": SharedHeader.compile,
    "jwt": Jwt.compile,
}
"""Each ``verify`` scheme name and the function that compiles its options."""


@attrs.frozen
class Verification:
    """The compiled checks of one workflow, run in the order they were written.

    An empty one lets every request through. ``secret_headers`` names the lower-case
    headers that carry a secret or signature under these checks, ``secret_query`` the
    query parameters: what a request's checks consume is redacted from ``$context`` and
    from stored records unless the trigger sets ``expose_credentials: true``
    (:mod:`hookline.http._consumed`).

    Where a scheme declares what it consumes: its ``secret_headers`` (required by
    :class:`Check`), and a ``secret_query`` attribute, a frozenset of query parameter
    names, for a scheme that reads a credential or signature from the query string
    (optional: a scheme without it consumes no query parameter).
    """

    checks: tuple[Check, ...] = ()

    @property
    def secret_headers(self) -> frozenset[str]:
        return frozenset().union(*(check.secret_headers for check in self.checks))

    @property
    def secret_query(self) -> frozenset[str]:
        return frozenset().union(
            *(getattr(check, "secret_query", frozenset()) for check in self.checks)
        )

    def verify(self, request: SignedRequest, now: float) -> Verified:
        """Run every check against ``request`` at ``now`` (Unix seconds).

        Returns what the checks established: a ``jwt`` check's claims, a body a check
        decrypted, a handshake's answer (given only when every check passed). Raises
        :class:`~hookline.errors.Unauthenticated` (401) when a credential, signature or
        signed header is missing, and :class:`~hookline.errors.Forbidden` (403) when one
        is wrong, unparseable or outside its time window; the first failing check
        decides. Never raises anything else for any request.
        """
        verified = Verified()
        for check in self.checks:
            found = check.check(request, now)
            if isinstance(found, Verified):
                verified = verified.merged(found)
            elif found is not None:
                verified = verified.merged(Verified(claims=found))
        return verified


def compile_verifiers(entries: Iterable[Verifier], *, source: str, path: str) -> Verification:
    """Compile ``entries`` (found at ``path``, such as ``trigger.verify``, in ``source``).

    Raises :class:`~hookline.errors.DefinitionError` naming the field for an unknown
    scheme, a missing or mistyped option, or an option no scheme knows.
    """
    checks = []
    for index, entry in enumerate(entries):
        fields = Fields(entry.options, source=source, path=f"{path}[{index}].{entry.scheme}")
        compile_check = SCHEMES.get(entry.scheme) or plugin_schemes().get(entry.scheme)
        if compile_check is None:
            known = (*SCHEMES, *plugin_schemes())
            fields.fail("", "a scheme, one of " + ", ".join(known), entry.scheme)
        checks.append(compile_check(fields))
        fields.done()
    return Verification(checks=tuple(checks))
