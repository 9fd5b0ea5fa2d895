"""How many refused requests are recorded: token buckets per client, per path and in all.

A refused request (401, 403, 404, 405, 408, 413, 400...) costs its sender nothing but
was stored whole for days: 50 bad-signature requests of 1 MB grew the database by 52 MB
in 0.4 s (issue 13, finding 2). Recording is therefore rationed. Each refusal takes one
token from three buckets: its client's, its path's (the workflow it was meant for; one
shared bucket for requests that matched none) and a global one. It is recorded only when
all three have a token; otherwise it is only counted. The global bucket bounds what any
sender, however many addresses it uses, can make the store keep.

Pure code: every decision takes ``now`` (seconds, any monotonic clock) from the caller,
so tests drive it without a clock. The buckets it remembers are capped (``max_keys``):
the least recently seen is forgotten first, so spoofed addresses cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

__all__ = ["BucketRate", "RefusalLimit", "RefusalPolicy", "TokenBuckets"]


@attrs.frozen
class BucketRate:
    """``per_second`` tokens refill each second, up to ``burst`` held at once."""

    per_second: float
    burst: float


@attrs.frozen
class RefusalPolicy:
    """What is kept of refused requests (``server.refused`` in hookline.yaml).

    ``keep_body``: bytes of a refused body kept (the rest is dropped; its size and
    SHA-256 are recorded in the reason). ``per_client``, ``per_path``, ``total``: how
    many refusals are recorded (the rest are counted in ``/metrics``).
    """

    keep_body: int = 4096
    per_client: BucketRate = BucketRate(per_second=1.0, burst=30.0)
    per_path: BucketRate = BucketRate(per_second=5.0, burst=150.0)
    total: BucketRate = BucketRate(per_second=20.0, burst=600.0)
    max_keys: int = 10_000


class TokenBuckets:
    """One token bucket per key, all with the same rate; a new key starts full."""

    def __init__(self, rate: BucketRate, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        # key -> (tokens at `at`, at); most recently used last.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def available(self, key: str, now: float) -> float:
        """The tokens ``key`` holds at ``now``."""
        found = self._buckets.get(key)
        if found is None:
            return self.rate.burst
        tokens, at = found
        return min(self.rate.burst, tokens + max(0.0, now - at) * self.rate.per_second)

    def take(self, key: str, now: float) -> None:
        """Take one token from ``key`` at ``now`` (its level may go below one: call
        :meth:`available` first to decide)."""
        tokens = self.available(key, now) - 1.0
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


class RefusalLimit:
    """Decides, refusal by refusal, whether it is recorded, and counts those that are
    not. ``admit`` takes a token from each bucket only when all three have one."""

    def __init__(self, policy: RefusalPolicy) -> None:
        self.policy = policy
        self._clients = TokenBuckets(policy.per_client, policy.max_keys)
        self._paths = TokenBuckets(policy.per_path, policy.max_keys)
        self._total = TokenBuckets(policy.total, 1)
        self.recorded = 0
        self.unrecorded = 0

    def admit(self, client: str, path: str, now: float) -> bool:
        """Whether a refusal of ``client`` on ``path`` at ``now`` is recorded."""
        if (
            self._clients.available(client, now) < 1.0
            or self._paths.available(path, now) < 1.0
            or self._total.available("", now) < 1.0
        ):
            self.unrecorded += 1
            return False
        self._clients.take(client, now)
        self._paths.take(path, now)
        self._total.take("", now)
        self.recorded += 1
        return True
