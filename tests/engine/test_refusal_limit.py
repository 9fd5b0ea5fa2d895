"""The refusal recording limit: token buckets per client, per path and in all, no clock.

Issue 13, finding 2: refused requests were all stored whole; recording them is now
rationed, and these decisions are pure (the caller passes the time).
"""

from __future__ import annotations

from hookline.engine._refusal_limit import BucketRate, RefusalLimit, RefusalPolicy, TokenBuckets


def policy(**fields: BucketRate) -> RefusalPolicy:
    rates = {
        "per_client": BucketRate(per_second=1.0, burst=3.0),
        "per_path": BucketRate(per_second=100.0, burst=100.0),
        "total": BucketRate(per_second=100.0, burst=100.0),
    }
    rates.update(fields)
    return RefusalPolicy(**rates)  # type: ignore[arg-type]


def test_a_bucket_starts_full_empties_and_refills_at_its_rate() -> None:
    buckets = TokenBuckets(BucketRate(per_second=2.0, burst=4.0))
    assert buckets.available("a", 0.0) == 4.0
    for _ in range(4):
        buckets.take("a", 0.0)
    assert buckets.available("a", 0.0) == 0.0
    assert buckets.available("a", 0.25) == 0.5
    assert buckets.available("a", 1.0) == 2.0
    assert buckets.available("a", 100.0) == 4.0  # never above the burst
    assert buckets.available("b", 0.0) == 4.0


def test_a_client_past_its_burst_is_counted_not_recorded() -> None:
    limit = RefusalLimit(policy())
    decided = [limit.admit("203.0.113.9", "hooks", 0.0) for _ in range(10)]
    assert decided == [True] * 3 + [False] * 7
    assert (limit.recorded, limit.unrecorded) == (3, 7)
    # Another client is not held back by the first.
    assert limit.admit("198.51.100.1", "hooks", 0.0)
    # One second later the first has one token again.
    assert limit.admit("203.0.113.9", "hooks", 1.0)
    assert not limit.admit("203.0.113.9", "hooks", 1.0)


def test_the_path_and_the_total_bound_many_clients() -> None:
    limit = RefusalLimit(policy(per_path=BucketRate(per_second=1.0, burst=5.0)))
    decided = [limit.admit(f"10.0.0.{i}", "hooks", 0.0) for i in range(20)]
    assert decided.count(True) == 5
    assert limit.admit("10.0.0.99", "other", 0.0)  # another path has its own bucket

    total = RefusalLimit(policy(total=BucketRate(per_second=1.0, burst=8.0)))
    decided = [total.admit(f"10.0.{i}.1", f"path{i}", 0.0) for i in range(50)]
    assert decided.count(True) == 8
    # Over 60 s, a sender with a new address and path each time gets about 60 more.
    later = [total.admit(f"10.1.{i}.1", f"p{i}", i * 0.1) for i in range(600)]
    assert 55 <= later.count(True) <= 61


def test_refused_tokens_are_not_taken_from_the_other_buckets() -> None:
    limit = RefusalLimit(policy(per_client=BucketRate(per_second=0.001, burst=1.0)))
    assert limit.admit("a", "hooks", 0.0)
    for _ in range(50):
        assert not limit.admit("a", "hooks", 0.0)
    # The client's refusals past its limit cost the path nothing.
    assert all(limit.admit(f"b{i}", "hooks", 0.0) for i in range(99))


def test_remembered_buckets_are_capped() -> None:
    buckets = TokenBuckets(BucketRate(per_second=1.0, burst=1.0), max_keys=100)
    for i in range(1000):
        buckets.take(f"client{i}", 0.0)
    assert len(buckets) == 100
    assert buckets.available("client999", 0.0) == 0.0
    assert buckets.available("client0", 0.0) == 1.0  # forgotten: starts full again
