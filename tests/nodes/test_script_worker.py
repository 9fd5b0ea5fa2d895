"""One script worker, driven in this process without its pipes: the context each run
gets is made between requests and used once, and what a script does to the prelude's
built-ins cannot hide its outcome.

The pool's tests (test_script_pool.py) run the same worker in its own process, with
its limits."""

from __future__ import annotations

import json
import resource
from typing import Any

import pytest

from hookline.nodes import _script_worker as script_worker
from hookline.nodes._js import compile_script, describe_error
from hookline.nodes._script_worker import Worker

MIB = 1024 * 1024


@pytest.fixture
def caps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The CPU caps the worker sets, kept from this test process: a real one would
    kill it (SIGXCPU) once it has used a few more seconds of CPU."""
    set_limits: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda which, limits: set_limits.append(limits))
    return set_limits


@pytest.fixture
def worker(caps: list[tuple[int, int]]) -> Worker:
    made = Worker()
    made.prepare()  # as the worker's main loop does before it says it is ready
    return made


def run(worker: Worker, body: str, *, memory: int = 64 * MIB, **inputs: Any) -> dict[str, Any]:
    """Run ``body`` as the main loop does (the answer, then prepare), the answer read
    back."""
    script = compile_script(body)
    request = {
        "id": 1,
        "sid": script.sid,
        "source": script.body,
        "memory": memory,
        "time": 2.0,
        "max_result": MIB,
        "inputs": json.dumps(inputs or {"context": {}}),
    }
    answer = json.loads(worker.handle(request))
    worker.prepare()
    assert isinstance(answer, dict)
    return answer


def test_a_run_takes_the_context_made_before_it_and_the_next_run_gets_another(
    worker: Worker,
) -> None:
    made = worker._next
    assert made is not None  # ready before any request came
    answer = run(worker, "globalThis.left = 'behind'; Array.prototype.push = null; return 1;")
    assert answer["value"] == 1
    assert worker._next is not None
    assert worker._next is not made
    assert worker._spent is None  # the used context is freed once the answer is out
    answer = run(worker, "const a = []; a.push(1); return [typeof left, a];")
    assert answer["value"] == ["undefined", [1]]


def test_a_script_replacing_then_and_join_still_has_its_result_reported(
    worker: Worker,
) -> None:
    answer = run(
        worker,
        """
        Promise.prototype.then = function () { return 'forged'; };
        Array.prototype.join = () => 'forged';
        Reflect.apply = () => 'forged';
        return {kept: true};
        """,
    )
    assert answer["error"] is None
    assert answer["value"] == {"kept": True}


def test_a_script_hiding_its_error_behind_a_setter_still_fails_with_it(worker: Worker) -> None:
    answer = run(
        worker,
        """
        Object.defineProperty(Object.prototype, 'error', {set() {}});
        Object.defineProperty(Object.prototype, 'value', {set() {}});
        throw new TypeError('seen anyway');
        """,
    )
    assert answer["error"]["name"] == "TypeError"
    assert answer["error"]["message"] == "seen anyway"


def test_a_thrown_value_that_is_not_an_error_is_reported_as_it_was(worker: Worker) -> None:
    assert run(worker, "throw {code: 7};")["error"] == {"thrown": '{"code":7}'}
    assert run(worker, "throw 'plain';")["error"] == {"thrown": "plain"}


def test_returning_nothing_is_a_null_result_not_an_unsettled_promise(worker: Worker) -> None:
    answer = run(worker, "const x = 1;")
    assert answer["error"] is None
    assert "value" not in answer  # the pool reads that as null


def test_globals_larger_than_the_memory_limit_stop_the_run_at_that_limit(
    worker: Worker,
) -> None:
    big = {"context": {"data": "x" * (8 * MIB)}}
    answer = run(worker, "return context.data.length;", memory=4 * MIB, **big)
    assert answer["limit"] == "memory"
    assert run(worker, "return 2;")["value"] == 2  # the worker goes on


def test_a_context_that_cannot_be_made_ahead_is_made_by_the_run(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker._next = None
    fresh = worker._fresh

    def fail() -> Any:
        raise MemoryError

    monkeypatch.setattr(worker, "_fresh", fail)
    worker.prepare()  # does not raise: the next run will say why it cannot run
    assert worker._next is None
    monkeypatch.setattr(worker, "_fresh", fresh)
    assert run(worker, "return 3;")["value"] == 3


def test_the_cpu_cap_is_set_again_only_when_it_moves(
    worker: Worker, caps: list[tuple[int, int]]
) -> None:
    for _ in range(5):
        run(worker, "return 1;")
    assert len(caps) == 1  # runs of a few ms: the cap, in whole seconds, stays
    soft, _ = caps[0]
    assert soft >= 2 + 2  # the 2 s time limit, and at least a second of room


def test_the_runner_is_loaded_from_bytecode_and_leaves_no_global_behind(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pinned binding's layout is the one the loader knows: were it not, every run
    # would compile the runner's text again (twice the CPU of a short run).
    assert worker._load_runner is not None
    texts: list[str] = []
    made = worker._fresh()
    evaluate = type(made[0]).eval

    def evaluate_noted(self: Any, text: str) -> Any:
        texts.append(text)
        return evaluate(self, text)

    monkeypatch.setattr(type(made[0]), "eval", evaluate_noted)
    worker._next = None
    worker.prepare()
    assert texts == []  # the context came with its control, no text compiled
    answer = run(
        worker,
        "console.log(typeof __hl_control, typeof __hl_run); return context.data * 2;",
        context={"data": 21},
    )
    assert (answer["value"], answer["lines"]) == (42, ["undefined function"])
    answer = run(worker, "\n  throw new TypeError('no ' + typeof __hl_control);")
    assert describe_error(answer["error"]).startswith(
        "TypeError: no undefined (line 2, column 38)\n    at <script> (script:2:38)"
    )


@pytest.mark.parametrize(
    ("name", "value"), [("_CONTEXT_SIZE", 12345), ("_KNOWN_BINDING", "quickjs_ng-9.99.")]
)
def test_without_the_known_binding_layout_the_runner_text_is_evaluated(
    caps: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch, name: str, value: object
) -> None:
    monkeypatch.setattr(script_worker, name, value)
    fallback = Worker()
    assert fallback._load_runner is None
    fallback.prepare()
    answer = run(fallback, "\n  throw new TypeError('no ' + typeof __hl_control);")
    assert describe_error(answer["error"]).startswith(
        "TypeError: no undefined (line 2, column 38)\n    at <script> (script:2:38)"
    )


def test_a_runner_load_that_fails_falls_back_to_its_text_in_another_context(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[Any] = []

    def half_loaded(context: Any) -> None:
        # No control, part of the runner run: as when JS_EvalFunction throws midway.
        context.eval("Object.defineProperty(globalThis, 'console', {get: () => 1});")
        loaded.append(context)

    monkeypatch.setattr(worker, "_load_runner", half_loaded)
    worker._next = None
    worker.prepare()
    assert worker._next is not None
    assert worker._next[0] is not loaded[0]
    answer = run(worker, "console.log('from the text'); return 1;")
    assert (answer["value"], answer["lines"]) == (1, ["from the text"])
