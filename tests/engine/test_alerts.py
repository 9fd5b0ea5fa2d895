"""Alert decisions, driven with explicit times: a notice when a condition starts to
hold, none while it holds, a recovery when it stops."""

from __future__ import annotations

from hookline.engine._alerts import AlertBook, AlertRule, Gauges

FAILING = AlertRule("failing", "failure_rate", 0.5, window=60, min_executions=4)
QUEUED = AlertRule("backlog", "queue_depth", 100, window=30, workflow="github")
STALE = AlertRule("stale", "oldest_queued", 120, window=0)


def test_failure_rate_fires_once_then_recovers_when_failures_leave_the_window() -> None:
    book = AlertBook([FAILING])
    for at, failed in [(1, True), (2, True), (3, False)]:
        book.record("github", at, failed=failed)
    assert book.evaluate(5, {}) == []  # three ended: fewer than min_executions
    book.record("github", 6, failed=True)
    (fired,) = book.evaluate(7, {})
    assert (fired.state, fired.workflow, fired.value) == ("firing", "github", 0.75)
    assert "FIRING failing: workflow github failure rate 75%" in fired.text()
    book.record("github", 8, failed=True)
    assert book.evaluate(9, {}) == []  # still failing: not repeated
    (state,) = book.states()
    assert (state.firing, state.since) == (True, 7)
    (recovered,) = book.evaluate(70, {})  # everything ended more than 60 s ago
    assert recovered.state == "resolved"
    assert book.evaluate(80, {}) == []


def test_each_workflow_is_judged_alone() -> None:
    book = AlertBook([FAILING])
    for at in range(4):
        book.record("bad", at, failed=True)
        book.record("good", at, failed=False)
    notices = book.evaluate(5, {})
    assert [(n.workflow, n.state) for n in notices] == [("bad", "firing")]


def test_queue_depth_must_stay_above_the_threshold_for_the_window() -> None:
    book = AlertBook([QUEUED])
    deep = {"github": Gauges(queue_depth=150)}
    assert book.evaluate(0, deep) == []
    assert book.evaluate(10, {"github": Gauges(queue_depth=50)}) == []  # dipped: starts over
    assert book.evaluate(20, deep) == []
    assert book.evaluate(40, deep) == []
    (fired,) = book.evaluate(50, deep)
    assert (fired.state, fired.value) == ("firing", 150)
    assert book.evaluate(60, deep) == []
    (recovered,) = book.evaluate(70, {"github": Gauges(queue_depth=3)})
    assert (recovered.state, recovered.value) == ("resolved", 3)


def test_oldest_queued_age_with_no_window_fires_at_once_for_any_workflow() -> None:
    book = AlertBook([STALE])
    (fired,) = book.evaluate(0, {"a": Gauges(oldest_queued=300), "b": Gauges(oldest_queued=5)})
    assert (fired.workflow, fired.state) == ("a", "firing")
    assert "oldest queued 300s" in fired.text()
    (recovered,) = book.evaluate(1, {"a": Gauges()})
    assert "RESOLVED stale" in recovered.text()
