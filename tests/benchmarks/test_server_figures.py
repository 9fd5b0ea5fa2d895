"""The server's own view of a phase from two /metrics scrapes, and the ledger against
the client's count: sent = accepted + refused + lost, a difference never hidden."""

from __future__ import annotations

import pytest

from benchmarks._commands import redacted
from benchmarks._results import Latency, LoadResult
from benchmarks._server_figures import figures, ledger, parse

BEFORE = """
hookline_deliveries_total{workflow="bench-async-ingest",verdict="accepted"} 10
hookline_deliveries_total{workflow="other",verdict="accepted"} 500
hookline_executions_finished_total{workflow="bench-async-ingest",status="succeeded"} 10
hookline_store_commit_seconds_bucket{le="0.005"} 4
hookline_store_commit_seconds_bucket{le="0.01"} 5
hookline_store_commit_seconds_bucket{le="+Inf"} 5
hookline_store_commit_seconds_count 5
hookline_store_commit_seconds_sum 0.02
hookline_workflow_queue_depth{workflow="bench-async-ingest"} 0
hookline_executions_running{workflow="bench-async-ingest"} 0
hookline_actor_restarts_total{supervisor="engine",actor="store"} 1
"""

AFTER = """
hookline_deliveries_total{workflow="bench-async-ingest",verdict="accepted"} 110
hookline_deliveries_total{workflow="bench-async-ingest",verdict="duplicate"} 5
hookline_deliveries_total{workflow="bench-async-ingest",verdict="rejected"} 3
hookline_deliveries_total{workflow="other",verdict="accepted"} 900
hookline_executions_finished_total{workflow="bench-async-ingest",status="succeeded"} 105
hookline_executions_finished_total{workflow="bench-async-ingest",status="failed"} 2
hookline_store_commit_seconds_bucket{le="0.005"} 14
hookline_store_commit_seconds_bucket{le="0.01"} 104
hookline_store_commit_seconds_bucket{le="+Inf"} 105
hookline_store_commit_seconds_count 105
hookline_store_commit_seconds_sum 0.72
hookline_workflow_queue_depth{workflow="bench-async-ingest"} 0
hookline_executions_running{workflow="bench-async-ingest"} 0
hookline_actor_restarts_total{supervisor="engine",actor="store"} 2
"""


def _client(sent: int, completed: int, non_2xx: int) -> LoadResult:
    return LoadResult("open", "test", 1.0, 4, completed, Latency(), non_2xx=non_2xx, sent=sent)


def test_the_figures_are_what_the_server_recorded_for_the_workflow_between_scrapes() -> None:
    server = figures(parse(BEFORE), parse(AFTER), "bench-async-ingest", queue_peak=7)
    assert server.deliveries == {"accepted": 100, "duplicate": 5, "rejected": 3}
    assert server.executions_finished == {"succeeded": 95, "failed": 2}
    assert server.commits == 100
    assert server.commit_mean_ms == pytest.approx(7.0)
    assert server.commit_p99_ms_at_most == 10.0  # the bucket holding the 99th commit
    assert server.queue_depth_peak == 7
    assert server.restarts == 1
    assert server.unfinished_executions == 0


def test_a_balanced_ledger_counts_duplicates_as_accepted_and_non_2xx_as_refused() -> None:
    server = figures(parse(BEFORE), parse(AFTER), "bench-async-ingest", queue_peak=0)
    # 108 sent: 105 answered 2xx (100 accepted + 5 replays), 3 refused with 403
    balanced = ledger(server, _client(sent=108, completed=108, non_2xx=3))
    assert (balanced.sent, balanced.accepted, balanced.refused, balanced.lost) == (108, 105, 3, 0)
    assert balanced.balanced
    assert (
        balanced.ledger_line() == "ledger: sent 108 = accepted 105 + refused 3 + lost 0 (balanced)"
    )


def test_requests_the_server_never_recorded_are_lost_and_said_so() -> None:
    server = figures(parse(BEFORE), parse(AFTER), "bench-async-ingest", queue_peak=0)
    unbalanced = ledger(server, _client(sent=120, completed=110, non_2xx=3))
    assert unbalanced.lost == 12
    assert not unbalanced.balanced
    line = unbalanced.ledger_line()
    assert "lost 12 (NOT BALANCED)" in line
    assert "the client counted 107 2xx answers, the server recorded 105 accepted" in line


def test_the_admin_key_is_never_written_into_a_command_line() -> None:
    argv = ["x", "--target", "http://h", "--key", "s3cret", "--key=s3cret2"]
    assert "s3cret" not in " ".join(redacted(argv))
    assert redacted(argv)[:4] == ["x", "--target", "http://h", "--key"]
