"""Every exception hookline raises on purpose, in one tree.

::

    HooklineError
    ├── ConfigError                  the server config (hookline.yaml) is invalid
    │   └── DefinitionError          a workflow definition is invalid
    ├── TemplateError                a ``{{...}}`` template does not parse
    ├── Rejected                     a delivery is refused; carries its HTTP answer
    │   ├── WorkflowNotFound         404: no workflow listens on that path
    │   ├── MethodNotAllowed         405: the path exists, not for this method
    │   ├── MalformedBody            400: the body does not parse as its content type says
    │   ├── Unauthenticated          401: a credential, signature or signed header is missing
    │   ├── Forbidden                403: wrong signature or credential, stale timestamp, IP refused
    │   ├── PayloadTooLarge          413: the body exceeds the workflow's ``max_body``
    │   ├── RequestTimeout           408: the body did not arrive within the body timeout
    │   ├── IdempotencyConflict      409: the same key is still being processed
    │   ├── IdempotencyMismatch      422: the same key came with a different body
    │   ├── QueueFull                429: this workflow's queue is full
    │   ├── Unavailable              503: workflow disabled, engine overloaded or stopping
    │   └── ExecutionConflict        409: an execution cannot be retried in its state
    ├── NotFound                     an admin lookup (execution, workflow) found nothing
    ├── NodeError                    a node failed its job (recorded, never a crash)
    │   └── AddressRefused           an http node's target is not a public address
    ├── StoreError                   the store could not read or write
    │   └── StoreClosed              the store was used after it stopped
    └── ActorError
        ├── RestartIntensityExceeded a supervisor restarted children too often and gave up
        └── LeaseLost                the processes sharing the store took this one's work over

Exceptions from libraries (sqlite3, YAML, httpx) are mapped to these at the boundary with
``raise ... from exc``; callers of hookline never need to catch a third-party error.
"""

from __future__ import annotations

__all__ = [
    "ActorError",
    "AddressRefused",
    "ConfigError",
    "DefinitionError",
    "ExecutionConflict",
    "Forbidden",
    "HooklineError",
    "IdempotencyConflict",
    "IdempotencyMismatch",
    "LeaseLost",
    "MalformedBody",
    "MethodNotAllowed",
    "NodeError",
    "NotFound",
    "PayloadTooLarge",
    "QueueFull",
    "Rejected",
    "RequestTimeout",
    "RestartIntensityExceeded",
    "StoreClosed",
    "StoreError",
    "TemplateError",
    "Unauthenticated",
    "Unavailable",
    "WorkflowNotFound",
]


class HooklineError(Exception):
    """The root of every error hookline raises on purpose."""


class ConfigError(HooklineError):
    """The server configuration is invalid.

    The message names the file, the field path and what was expected, for example
    ``hookline.yaml: store.url: expected a URL such as 'sqlite:///var/hookline.db', got 5``.
    """

    def __init__(self, source: str, path: str, expected: str, got: object = None) -> None:
        self.source = source
        self.path = path
        self.expected = expected
        self.got = got
        where = f"{source}: {path}" if path else source
        detail = f"expected {expected}" if got is None else f"expected {expected}, got {got!r}"
        super().__init__(f"{where}: {detail}")


class DefinitionError(ConfigError):
    """A workflow definition does not validate.

    Raised while loading; a bad file never stops the other workflows from loading.
    """


class TemplateError(HooklineError):
    """A ``{{...}}`` template does not parse. Raised at compile time, never per request."""


class Rejected(HooklineError):
    """A delivery was refused before it started an execution.

    ``status`` is the HTTP status to answer, ``title`` a short fixed summary, and
    ``detail`` an explanation that never names a secret or which part of a signature
    differed. ``retry_after`` (seconds) is set for answers that invite a retry.
    ``delivery_recorded`` is true when the store already recorded the refused
    delivery (a duplicate found inside the accepting transaction), so the caller does
    not record it twice.
    """

    status = 400
    title = "Bad request"
    retry_after: float | None = None
    delivery_recorded = False

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def type(self) -> str:
        """The RFC 9457 problem type URI of this rejection."""
        name = type(self).__name__
        slug = "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
        return f"https://hookline.dev/problems/{slug}"


class WorkflowNotFound(Rejected):
    """No workflow listens on the requested path (404)."""

    status = 404
    title = "Not found"


class MethodNotAllowed(Rejected):
    """A workflow listens on the path, but not for this method (405 with ``Allow``)."""

    status = 405
    title = "Method not allowed"

    def __init__(self, detail: str, *, allow: tuple[str, ...]) -> None:
        super().__init__(detail)
        self.allow = allow


class MalformedBody(Rejected):
    """The body does not parse as its ``Content-Type`` says (400)."""

    status = 400
    title = "Malformed body"


class Unauthenticated(Rejected):
    """The request lacks what a ``verify`` check needs: a credential, a signature or a
    signed header such as a timestamp (401).

    ``challenge`` is the ``WWW-Authenticate`` value to answer with (``Basic
    realm="hookline"``, ``Bearer``), or None for signature schemes, which have none. Not
    raised when the header is present but wrong or unparseable: that is :class:`Forbidden`.
    """

    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, *, challenge: str | None = None) -> None:
        super().__init__(detail)
        self.challenge = challenge


class Forbidden(Rejected):
    """The request was refused on what it carries (403): a signature or credential that
    does not match, a header that does not parse, a signed timestamp outside the
    tolerance window, or a client address outside ``ip_allow``.

    The detail names the failed check in general terms only, never which bytes differed.
    """

    status = 403
    title = "Forbidden"


class PayloadTooLarge(Rejected):
    """The body is larger than the workflow's ``max_body`` (413)."""

    status = 413
    title = "Payload too large"


class RequestTimeout(Rejected):
    """The sender did not finish sending the body within the server's body timeout
    (408). Not raised for a slow workflow: that is the sync timeout's 202."""

    status = 408
    title = "Request timeout"


class IdempotencyConflict(Rejected):
    """A delivery with the same idempotency key is still being processed (409)."""

    status = 409
    title = "Delivery in progress"


class IdempotencyMismatch(Rejected):
    """The idempotency key was used before with a different body (422)."""

    status = 422
    title = "Idempotency key reused"


class QueueFull(Rejected):
    """The workflow's queue is full (429 with ``Retry-After``). Nothing was stored."""

    status = 429
    title = "Too many requests"
    retry_after = 1.0


class RateLimited(Rejected):
    """The workflow's ``rate_limit`` refused the delivery (429 with ``Retry-After``: when
    one from the same key would be let through). Recorded, nothing run."""

    status = 429
    title = "Too many requests"


class Unavailable(Rejected):
    """The workflow is disabled, or the engine is overloaded or stopping (503).

    Not raised for a full workflow queue: that is :class:`QueueFull`.
    """

    status = 503
    title = "Service unavailable"
    retry_after = 5.0


class ExecutionConflict(Rejected):
    """An operator asked for something an execution's state does not allow (409): a
    retry of one that is queued, running or succeeded (only failed, timed out and
    cancelled ones can be retried). Not raised for an execution that does not exist:
    that is :class:`NotFound`."""

    status = 409
    title = "Conflict"


class NotFound(HooklineError):
    """An admin lookup (an execution, a workflow) found nothing."""


class NodeError(HooklineError):
    """A node failed its job: bad input, a failed call, an explicit failure.

    Recorded as a failed job with this message; it is never an actor crash.
    """


class AddressRefused(NodeError):
    """An ``http`` node's target is not a public address, and ``http_node.allow_hosts``
    does not list it (the address guard refused to connect).

    The message names neither the host nor what it resolved to: it becomes the job's and
    the execution's error, which a sync webhook's sender may read, and internal DNS
    results are not theirs to learn. ``host`` and ``address`` hold them for the job log.
    """

    def __init__(self, host: str, address: str) -> None:
        super().__init__(
            "refusing to connect: the target is not a public address (the job log names "
            "it); list its host under http_node.allow_hosts to allow it"
        )
        self.host = host
        self.address = address


class StoreError(HooklineError):
    """The store could not read or write (disk full, corrupt file, lock timeout)."""


class StoreClosed(StoreError):
    """The store was used after it stopped. Not a failure of the store itself."""


class ActorError(HooklineError):
    """Base of the actor runtime's own errors."""


class RestartIntensityExceeded(ActorError):
    """A supervisor restarted its children more than its intensity allows within its
    period, stopped them all and escalated to its parent.

    Not raised when a child stops normally or a node fails a job.
    """


class LeaseLost(ActorError):
    """The other processes sharing the store declared this one dead (it missed its
    heartbeats for a whole lease) and took its executions over. The engine stops at
    once, writing nothing more for them: their new owners run them now."""
