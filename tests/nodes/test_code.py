"""The code node: JavaScript with context and nodes, its log, its errors and its limits.

Scripts run in real worker processes (the per-run default pool when no engine lends
one), so these tests use the real clock (a MockClock would jump while a worker runs),
with bounds of a second or more.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import trio

from hookline.definition import Fields
from hookline.engine._job import JobTicket, RunningJob
from hookline.engine._node_actor import NodeActor
from hookline.errors import DefinitionError, NodeError
from hookline.nodes._base import NodeResult, NodeSpec
from hookline.nodes._registry import parse_node
from hookline.nodes._script_pool import ScriptPoolConfig, default_pool


def parse(code: str, **fields: Any) -> NodeSpec:
    return parse_node(
        Fields({"key": "js", "type": "code", "code": code, **fields}, source="w.yaml")
    )


def job(spec: NodeSpec, roots: dict[str, Any] | None = None) -> RunningJob:
    return RunningJob("ex-1", spec, roots or {})


async def run(code: str, roots: dict[str, Any] | None = None, **fields: Any) -> NodeResult:
    spec = parse(code, **fields)
    return await spec.config.run(job(spec, roots))


async def test_the_brief_example_runs_unchanged_with_context_and_nodes() -> None:
    code = """
      const branch = context.data.ref.replace('refs/heads/', '');
      return { branch, by: nodes.who.name, item: scopes.each.item, n: context.data.n * 2 };
    """
    roots = {
        "context": {"data": {"ref": "refs/heads/main", "n": 21}},
        "nodes": {"who": {"name": "ann"}},
        "scopes": {"each": {"item": "x", "index": 0, "length": 1}},
    }
    result = await run(code, roots)
    assert result.output == {"branch": "main", "by": "ann", "item": "x", "n": 42}


async def test_await_works_and_undefined_gives_null() -> None:
    assert (await run("return await Promise.resolve([1, 2]);")).output == [1, 2]
    assert (await run("const x = 1;")).output is None


async def test_console_lines_go_to_the_job_log() -> None:
    spec = parse("console.log('hello', {a: 1}, [2]); console.error('bad', 3); return 1;")
    running = job(spec)
    await spec.config.run(running)
    assert running.lines == ['hello {"a":1} [2]', "error: bad 3"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("\n  throw new TypeError('boom');", "TypeError: boom (line 2, column 13)"),
        ("const o = null;\nreturn o.x;", "TypeError: cannot read property 'x' of null (line 2"),
        ("throw 'plain';", "Uncaught plain"),
        ("return 10n;", "TypeError: the result cannot be turned into JSON"),
    ],
)
async def test_errors_fail_the_job_with_the_javascript_message(code: str, message: str) -> None:
    with pytest.raises(NodeError) as caught:
        await run(code)
    assert str(caught.value).startswith(message)


async def test_a_thrown_error_names_the_line_and_column_in_the_script_and_its_stack() -> None:
    code = "const a = 1;\nfunction check(x) {\n  if (!x.ok) throw new Error('not ok');\n}\n"
    code += "check({});"
    with pytest.raises(NodeError) as caught:
        await run(code)
    assert str(caught.value).splitlines() == [
        "Error: not ok (line 3, column 24)",
        "    at check (script:3:24)",
        "    at <script> (script:5:1)",
    ]


async def test_an_error_inside_the_standard_library_points_at_the_scripts_line() -> None:
    with pytest.raises(NodeError) as caught:
        await run("\n\nreturn Buffer.from('x', 'utf16le');")
    assert str(caught.value).startswith("TypeError: Unknown encoding: utf16le")
    assert "(line 3, column" in str(caught.value).splitlines()[0]


async def test_log_lines_before_an_error_are_kept() -> None:
    spec = parse("console.log('step 1'); throw new Error('step 2 failed');")
    running = job(spec)
    with pytest.raises(NodeError, match="Error: step 2 failed"):
        await spec.config.run(running)
    assert running.lines == ["step 1"]


@pytest.mark.parametrize(
    "code",
    [
        "require('fs')",
        "return fetch('http://example.com')",
        "return new XMLHttpRequest()",
        "return WebAssembly.Module",
        "return process.env",
        "return await import('fs')",
        "return std.open('/etc/passwd', 'r')",
        "return os.exec(['ls'])",
        "return setTimeout(() => 1, 10)",
    ],
)
async def test_there_is_no_file_system_or_network(code: str) -> None:
    with pytest.raises(NodeError):
        await run(code)


async def test_nothing_is_shared_between_runs() -> None:
    roots = {"context": {"data": {"n": 1}}}
    first = await run("globalThis.kept = 1; context.data.n = 99; return context.data.n;", roots)
    assert first.output == 99
    assert roots == {"context": {"data": {"n": 1}}}  # the caller's data is untouched
    second = await run("return [typeof kept, context.data.n];", roots)
    assert second.output == ["undefined", 1]


async def test_an_infinite_loop_fails_at_its_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(NodeError, match="time limit of 300ms"):
        await run("while (true) {}", timeout="300ms")
    assert time.monotonic() - started < 3


async def test_catastrophic_regex_backtracking_is_stopped_too() -> None:
    started = time.monotonic()
    with pytest.raises(NodeError, match="time limit"):
        await run("return /(a+)+$/.test('a'.repeat(40) + 'b');", timeout="300ms")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "code",
    [
        "const a = []; while (true) a.push(new Array(100000).fill(1));",
        "const a = []; while (true) a.push(new ArrayBuffer(1e8));",
        "let s = 'x'; while (true) s = s + s;",
    ],
)
async def test_a_memory_bomb_fails(code: str) -> None:
    with pytest.raises(NodeError, match=r"memory limit of 16MiB|string too long"):
        await run(code, memory="16MiB", timeout="3s")


@pytest.mark.parametrize(
    "code",
    [
        "return new Uint8Array(3e8).fill(7).length;",  # issue 13, finding 10
        "return new Array(1e8).fill(1.5).length;",
    ],
)
async def test_typed_arrays_and_large_fills_stop_at_the_memory_limit(code: str) -> None:
    started = time.monotonic()
    with pytest.raises(NodeError, match="memory limit of 16MiB"):
        await run(code, memory="16MiB", timeout="2s")
    assert time.monotonic() - started < 4  # within twice the time limit


# -- in the NodeActor: timeouts, cancellation, concurrency ------------------------------


async def send(actor: NodeActor, spec: NodeSpec) -> JobTicket:
    ticket = JobTicket(job(spec))
    await actor.mailbox.send(ticket)
    return ticket


async def test_a_looping_job_is_recorded_as_failed_within_its_limit_while_others_finish() -> None:
    # Generous bounds: the machine may be busy, and this is about isolation, not speed.
    looping = NodeActor("wf", parse("while (true) {}", timeout="3s"))
    quick = NodeActor("wf", parse("return 1 + 1;"))
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await trio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with trio.open_nursery() as nursery:
        await nursery.start(looping.run)
        await nursery.start(quick.run)
        nursery.start_soon(tick)
        started = time.monotonic()
        stuck = await send(looping, looping.node)
        done = await send(quick, quick.node)
        await done.wait()
        assert done.status == "succeeded"
        assert done.result is not None
        assert done.result.output == 2
        assert not stuck.done  # still looping while the other job finished
        await stuck.wait()
        elapsed = time.monotonic() - started
        nursery.cancel_scope.cancel()
    assert stuck.status in {"timed_out", "failed"}
    assert "3s" in (stuck.error or "")
    assert elapsed < 8.0
    assert max(gaps) < 0.5  # the trio loop kept running (a JS loop never blocks it)


async def test_cancelling_a_running_script_stops_it_at_once() -> None:
    actor = NodeActor("wf", parse("while (true) {}", timeout="20s"))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        ticket = await send(actor, actor.node)
        pool = default_pool()
        with trio.fail_after(10):
            while pool.statistics().idle == pool.statistics().workers:
                await trio.sleep(0.01)  # until the script is running in a worker
        cancelled = time.monotonic()
        ticket.cancel()
        await ticket.wait()
        # A generous bound on the real clock (the 100 ms cancel promise is shown on
        # trio's clock in tests/engine): the worker is killed, not waited for.
        assert time.monotonic() - cancelled < 1.0
        assert pool.statistics().workers == pool.statistics().idle  # none busy
        nursery.cancel_scope.cancel()
    assert ticket.status == "cancelled"


# -- load-time validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path", "expected"),
    [
        ({"code": None}, "code", "the field is missing"),
        ({"code": "   "}, "code", "JavaScript code"),
        ({"code": 5}, "code", "JavaScript code"),
        ({"code": "return 1", "memory": "1KiB"}, "memory", "from 4MiB to 1GiB"),
        ({"code": "return 1", "memory": "lots"}, "memory", "a size"),
        ({"code": "return 1", "timeout": "soon"}, "timeout", "a duration"),
        ({"code": "return 1", "language": "python"}, "language", "a known field"),
        ({"code": "return {a: 1"}, "code", "JavaScript that compiles; SyntaxError"),
        ({"code": "\n\n  x = = 2"}, "code", "(line 3, column 7)"),
        ({"code": "}); while (true) {} (function () {"}, "code", "closes the function"),
    ],
)
def test_bad_config_is_refused_at_load(fields: dict[str, Any], path: str, expected: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_node(Fields({"key": "js", "type": "code", **fields}, source="w.yaml"))
    assert caught.value.path == path
    assert expected in caught.value.expected


def test_the_time_limit_defaults_to_the_pools_or_follows_the_timeout() -> None:
    assert parse("return 1").config.time_limit is None  # type: ignore[attr-defined]
    assert parse("return 1", timeout="2s").config.time_limit == 2.0  # type: ignore[attr-defined]
    assert ScriptPoolConfig().timeout == 5.0
