"""hookline inside someone else's trio program, through the public API only: errors
come out as themselves, a cancelled scope stops the engine cleanly, and what it left
resumes on the next start."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import hookline
from hookline.testing import TEST_EPOCH, trio_wall_clock

NAPPER = hookline.load_workflow_text(
    textwrap.dedent(
        """
        key: napper
        concurrency: {max: 1}
        nodes:
          - {key: nap, type: delay, duration: 1s}
          - {key: after, type: set, values: {n: "{{$context.data.n}}"}}
        """
    ),
    source="napper.yaml",
)


async def wait_running(engine: hookline.Engine, key: str, count: int) -> None:
    with trio.fail_after(10):
        while next(w for w in engine.statistics().workflows if w.workflow == key).running < count:
            await trio.sleep(0.01)


# -- errors raised in the block ----------------------------------------------------------


async def test_an_error_raised_in_the_block_comes_out_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[hookline.Engine] = []
    with pytest.raises(ValueError, match="mine") as info:  # noqa: PT012
        async with hookline.open_engine([NAPPER]) as engine:
            seen.append(engine)
            await engine.submit("napper", data={"n": 1})
            raise ValueError("mine")
    assert type(info.value) is ValueError
    assert not seen[0].statistics().accepting


async def test_an_error_keeps_the_context_it_was_raised_in(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(RuntimeError) as info:  # noqa: PT012
        async with hookline.open_engine([NAPPER]):
            try:
                raise KeyError("first")
            except KeyError:
                raise RuntimeError("second")  # noqa: B904 (the implicit context is the point)
    assert isinstance(info.value.__context__, KeyError)


# -- cancellation of the surrounding scope -----------------------------------------------


async def test_a_cancelled_scope_stops_the_engine_cleanly_and_the_work_resumes(
    tmp_path: Path,
) -> None:
    # SQLite runs in a thread: real time, no autojump clock.
    url = f"sqlite:///{tmp_path / 'hookline.db'}"
    with trio.CancelScope() as scope:
        async with hookline.open_engine([NAPPER], store=url) as engine:
            first = await engine.submit("napper", data={"n": 1})
            second = await engine.submit("napper", data={"n": 2})  # queued behind it
            await wait_running(engine, "napper", 1)
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert not engine.statistics().accepting

    async with hookline.open_engine([NAPPER], store=url) as engine:
        assert engine.statistics().resumed == 2
        outcomes = []
        with trio.fail_after(10):
            for admission in (first, second):
                handle = engine.handle(admission.execution_id)
                assert handle is not None
                outcomes.append(await handle.wait_finished())
    assert [(o.status, o.output) for o in outcomes] == [
        ("succeeded", {"n": 1}),
        ("succeeded", {"n": 2}),
    ]


async def test_a_deadline_around_the_engine_stops_it_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.move_on_after(1.5) as scope:
        async with hookline.open_engine([NAPPER], shutdown_timeout=60) as engine:
            admissions = [await engine.submit("napper", data={"n": n}) for n in range(3)]
            await trio.sleep_forever()
    assert scope.cancelled_caught
    # Cancelled: the engine did not wait out its shutdown_timeout for what ran.
    assert trio.current_time() < 10
    outcomes = [await a.handle.wait_finished() for a in admissions if a.handle is not None]
    # The first finished; the one running and the one queued stay resumable.
    assert [o.status for o in outcomes] == ["succeeded", "cancelled", "cancelled"]


# -- what a crash is called --------------------------------------------------------------


async def test_a_crash_is_named_by_its_error_in_logs_and_statistics(
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A bug in a node's actor: the only way to crash an actor without patching is a bug.
    crash = crash_node_actors(monkeypatch, 1)
    async with hookline.open_engine([NAPPER]) as engine:
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        [workflow] = engine.statistics().workflows
    [child] = [c for c in workflow.supervisor.children if c.restarts]
    assert child.last_error == "ValueError: boom"
    assert workflow.supervisor.restarts == 1
    crash_lines = [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]
    expected = f"supervisor workflow:napper: child {child.name} crashed: ValueError: boom"
    assert crash_lines == [expected]
    assert "Trio nursery" not in caplog.text


def crash_node_actors(monkeypatch: pytest.MonkeyPatch, times: int) -> trio.Event:
    """Make node actors crash (a bug, raised from a task of their own, so trio wraps it
    in a group of one) on their first ``times`` runs, once the returned event is set."""
    from hookline.engine._node_actor import NodeActor

    original = NodeActor.run
    go = trio.Event()
    crashes = [times]

    async def run(self: NodeActor, *, task_status: trio.TaskStatus[None]) -> None:
        if crashes[0] > 0:
            crashes[0] -= 1
            task_status.started()
            await go.wait()

            async def boom() -> None:
                raise ValueError("boom")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(boom)
        await original(self, task_status=task_status)

    monkeypatch.setattr(NodeActor, "run", run)
    return go


@pytest.mark.parametrize(
    ("restart", "escalated"),
    [(None, False), (hookline.RestartPolicy(intensity=1, period=10.0), True)],
)
async def test_the_restart_policy_is_the_engines_and_shows_in_statistics(
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    restart: hookline.RestartPolicy | None,
    escalated: bool,
) -> None:
    crash = crash_node_actors(monkeypatch, 2)
    async with hookline.open_engine([NAPPER], restart=restart) as engine:
        crash.set()  # two crashes at once
        await trio.testing.wait_all_tasks_blocked()
        stats = engine.statistics()
        assert (await engine.run("napper", data={"n": 1})).status == "succeeded"
    policy = restart or hookline.RestartPolicy()
    [workflow] = stats.workflows
    for supervisor in (stats.supervisor, workflow.supervisor):
        assert (supervisor.intensity, supervisor.period) == (policy.intensity, policy.period)
    [child] = stats.supervisor.children
    if escalated:
        # More than 1 restart in 10 s: the workflow's supervisor gave up, the engine's
        # root supervisor restarted it (within its own intensity).
        assert stats.supervisor.restarts == 1
        assert child.last_error is not None
        assert "more than 1 restarts in 10.0s" in child.last_error
    else:
        assert stats.supervisor.restarts == 0
        assert workflow.supervisor.restarts == 2


# -- waiting for room in a full queue ----------------------------------------------------

NARROW = hookline.load_workflow_text(
    textwrap.dedent(
        """
        key: narrow
        concurrency: {max: 1, queue: 1}
        nodes:
          - {key: nap, type: delay, duration: 10s}
          - {key: after, type: set, values: {n: "{{$context.data.n}}"}}
        """
    ),
    source="narrow.yaml",
)


async def test_submit_with_wait_waits_for_room_instead_of_queue_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with hookline.open_engine([NARROW]) as engine:
        admissions = [await engine.submit("narrow", data={"n": 1})]
        await wait_running(engine, "narrow", 1)
        admissions.append(await engine.submit("narrow", data={"n": 2}))  # the queue's one
        with pytest.raises(hookline.errors.QueueFull):
            await engine.submit("narrow", data={"n": 3})
        started = trio.current_time()
        # Room frees up when the first ends and the second leaves the queue.
        admissions.append(await engine.submit("narrow", data={"n": 3}, wait=True))
        assert trio.current_time() - started == pytest.approx(10, abs=0.5)
        outcomes = [await a.handle.wait_finished() for a in admissions if a.handle is not None]
    assert [(o.status, o.output) for o in outcomes] == [
        ("succeeded", {"n": 1}),
        ("succeeded", {"n": 2}),
        ("succeeded", {"n": 3}),
    ]


async def test_waiters_get_room_first_come_first_served(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with hookline.open_engine([NARROW]) as engine:
        await engine.submit("narrow", data={"n": 0})
        await wait_running(engine, "narrow", 1)
        await engine.submit("narrow", data={"n": 1})
        order: list[int] = []

        async def submit(n: int) -> None:
            admission = await engine.submit("narrow", data={"n": n}, wait=True)
            order.append(n)
            assert admission.handle is not None
            await admission.handle.wait_finished()

        async with trio.open_nursery() as nursery:
            for n in (2, 3, 4):
                nursery.start_soon(submit, n)
                await trio.testing.wait_all_tasks_blocked()
    assert order == [2, 3, 4]


async def test_a_wait_for_room_ends_unavailable_when_the_engine_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with hookline.open_engine([NARROW]) as engine:
        await engine.submit("narrow", data={"n": 1})
        await wait_running(engine, "narrow", 1)
        await engine.submit("narrow", data={"n": 2})

        async def stop() -> None:
            await trio.sleep(1)  # the running one needs 10 s: the submit below waits
            engine.stop_intake()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop)
            with pytest.raises(hookline.errors.Unavailable, match="shutting down"):
                await engine.submit("narrow", data={"n": 3}, wait=True)
        assert trio.current_time() < 5


async def test_a_wait_for_room_ends_unavailable_when_the_workflow_is_disabled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    disabled = hookline.load_workflow_text(
        NARROW.text.replace("key: narrow", "key: narrow\nenabled: false"), source="narrow.yaml"
    )
    async with hookline.open_engine([NARROW]) as engine:
        await engine.submit("narrow", data={"n": 1})
        await wait_running(engine, "narrow", 1)
        await engine.submit("narrow", data={"n": 2})

        async def disable() -> None:
            await trio.sleep(1)  # the running one needs 10 s: the submit below waits
            await engine.apply([disabled])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(disable)
            with pytest.raises(hookline.errors.Unavailable, match="replaced"):
                await engine.submit("narrow", data={"n": 3}, wait=True)
        assert trio.current_time() < 5


# -- one workflow's statistics ----------------------------------------------------------


async def nap(call: hookline.NodeCall) -> object:
    await trio.sleep(float(call.params["seconds"]))
    return {"slept": call.params["seconds"]}


ENDINGS = hookline.load_workflow_text(
    textwrap.dedent(
        """
        key: endings
        timeout: 2s
        concurrency: {max: 10}
        nodes:
          - key: how
            type: switch
            cases:
              - if: {equal: ["{{$context.data.end}}", "fail"]}
                nodes: [{key: stop, type: end, status: failed}]
            default:
              - {key: first, type: nap, seconds: "{{$context.data.nap}}"}
              - {key: second, type: nap, seconds: "{{$context.data.nap}}"}
        """
    ),
    source="endings.yaml",
    nodes={"nap": nap},
)


async def test_workflow_statistics_count_each_ending_apart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with hookline.open_engine([ENDINGS, NAPPER], nodes={"nap": nap}) as engine:
        endings = [
            await engine.submit("endings", data={"end": end, "nap": seconds})
            for end, seconds in [("ok", 0.1), ("fail", 0), ("slow", 1.5), ("cancel", 0.5)]
        ]
        await trio.sleep(0.2)
        assert await engine.cancel(endings[3].execution_id)
        statuses = [(await a.handle.wait_finished()).status for a in endings if a.handle]
        assert statuses == ["succeeded", "failed", "timed_out", "cancelled"]
        stats = engine.workflow_statistics("endings")
        assert stats == next(w for w in engine.statistics().workflows if w.workflow == "endings")
        assert engine.workflow_statistics("napper") is not None
        with pytest.raises(hookline.errors.WorkflowNotFound):
            engine.workflow_statistics("nowhere")
    assert stats is not None
    assert (stats.completed, stats.failed, stats.cancelled, stats.timed_out) == (4, 1, 1, 1)


async def test_a_disabled_workflow_has_no_statistics(
    autojump_clock: trio.testing.MockClock,
) -> None:
    disabled = hookline.load_workflow_text(
        NAPPER.text.replace("key: napper", "key: napper\nenabled: false"), source="napper.yaml"
    )
    async with hookline.open_engine([disabled]) as engine:
        assert engine.workflow_statistics("napper") is None


# -- the engine's wall clock -------------------------------------------------------------

CLOCKED = hookline.load_workflow_text(
    textwrap.dedent(
        """
        key: clocked
        nodes:
          - {key: stamp, type: set, values: {now: "{{$system.now}}"}}
          - {key: wait, type: delay, duration: 90s}
          - key: later
            type: set
            values: {first: "{{$nodes.stamp.now}}", until: "{{$nodes.wait.until}}",
                     now: "{{$system.now}}"}
        """
    ),
    source="clocked.yaml",
)


async def test_the_engine_clock_drives_system_now_delays_and_record_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    epoch = TEST_EPOCH  # 2026-01-01T00:00:00Z
    async with hookline.open_engine([CLOCKED], clock=trio_wall_clock()) as engine:
        await trio.sleep(10)
        outcome = await engine.run("clocked")
        record = await engine.store.get_execution(outcome.execution_id)
        assert record is not None
        assert record.delivery_id is not None
        delivery = await engine.store.get_delivery(record.delivery_id)
        jobs = await engine.store.list_jobs(outcome.execution_id)
    # The same run gives the same times, every time: they follow trio's clock.
    assert outcome.output == {
        "first": "2026-01-01T00:00:10.000Z",
        "until": epoch + 100,
        "now": "2026-01-01T00:01:40.000Z",
    }
    assert (record.started_at, record.finished_at) == (epoch + 10, epoch + 100)
    assert delivery is not None
    assert delivery.received_at == epoch + 10
    assert [(j.node, j.started_at, j.finished_at) for j in jobs] == [
        ("stamp", epoch + 10, epoch + 10),
        ("wait", epoch + 10, epoch + 100),
        ("later", epoch + 100, epoch + 100),
    ]


# -- TLS certificates load on first use -------------------------------------------------


class Hello(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"hello": "world"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hello_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hello"
    server.shutdown()
    server.server_close()


async def test_an_engine_without_http_nodes_never_builds_its_http_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with hookline.open_engine([NAPPER]) as engine:
        assert (await engine.run("napper", data={"n": 1})).status == "succeeded"
        # The client (and the SSL context with its CA bundle) is built for the first
        # http node that runs, not when the engine starts.
        assert not engine.services.http.started


async def test_the_first_http_node_builds_the_shared_client(hello_url: str) -> None:
    caller = hookline.load_workflow_text(
        f"key: caller\nnodes:\n- {{key: call, type: http, url: '{hello_url}', only_data: true}}",
        source="caller.yaml",
    )
    async with hookline.open_engine([caller], http_allow_hosts=["127.0.0.1"]) as engine:
        http = engine.services.http
        assert not http.started
        outcomes = [await engine.run("caller") for _ in range(2)]
        assert http.started
        assert engine.services.http is http  # one client for every execution
    assert [(o.status, o.output) for o in outcomes] == [("succeeded", {"hello": "world"})] * 2
    with pytest.raises(hookline.errors.NodeError, match="stopped"):
        await http.client()  # closed with the engine


# -- what importing hookline costs -------------------------------------------------------

# Loaded only when used: the HTTP server, V8, prometheus; and the libraries that cost
# more to import than the engine itself (outbound HTTP, SQLite migrations, JWT).
HEAVY = {
    "quart",
    "hypercorn",
    "quickjs",
    "prometheus_client",
    "httpx",
    "sqlite_utils",
    "jwt",
    "psycopg",
}


def python(code: str, cache: Path) -> subprocess.CompletedProcess[str]:
    # Compiled bytecode, as an installed package has (this environment may turn writing
    # it off), kept out of the source tree.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )


def test_import_hookline_loads_no_server_v8_or_prometheus(tmp_path: Path) -> None:
    loaded = f"sorted(m for m in sys.modules if m.split('.')[0] in {sorted(HEAVY)!r})"
    assert python(f"import hookline, sys; print({loaded})", tmp_path).stdout.strip() == "[]"
    # Used, they load: the names are there all along.
    used = python(
        f"import hookline, sys; hookline.create_app, hookline.serve; print({loaded})", tmp_path
    )
    assert "quart" in used.stdout
    assert "hypercorn" in used.stdout


def test_import_hookline_costs_at_most_four_imports_of_trio(tmp_path: Path) -> None:
    python("import hookline", tmp_path)  # compiles the bytecode once
    times: dict[str, list[float]] = {"trio": [], "hookline": []}
    for _ in range(5):
        # Interleaved, so that both see the same load on a busy machine.
        for module, seen in times.items():
            started = time.perf_counter()
            python(f"import {module}", tmp_path)
            seen.append(time.perf_counter() - started)
    ratio = statistics.median(times["hookline"]) / statistics.median(times["trio"])
    assert ratio <= 4, f"import hookline took {ratio:.1f}x import trio: {times}"
