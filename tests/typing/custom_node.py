"""An embedding team's program: a custom node type and an engine that runs it, using
the public API only. ``mypy --strict`` passes on it against the installed hookline,
and it runs (tests/typing/test_user_code.py)."""

from __future__ import annotations

import trio

import hookline
from hookline.errors import NodeError
from hookline.testing import trio_wall_clock

WORKFLOW = """
key: doubler
nodes:
  - {key: twice, type: double, value: "{{$context.data.n}}"}
  - {key: answer, type: set, values: {result: "{{$nodes.twice.value}}"}}
"""


async def double(call: hookline.NodeCall) -> object:
    value = call.params.get("value")
    if not isinstance(value, int | float):
        raise NodeError(f"value: expected a number, got {value!r}")
    call.log(f"doubling {value} in {call.execution_id}, node {call.node_key}")
    return {"value": value * 2}


NODES = {"double": double}


async def main() -> None:
    workflow = hookline.load_workflow_text(WORKFLOW, source="doubler.yaml", nodes=NODES)
    clock = trio_wall_clock()  # times follow trio's clock
    async with hookline.open_engine([workflow], nodes=NODES, clock=clock) as engine:
        outcome: hookline.ExecutionOutcome = await engine.run("doubler", data={"n": 21})
        assert outcome.status == "succeeded", outcome.error
        assert outcome.output == {"result": 42}
        admission: hookline.Admission = await engine.submit("doubler", data={"n": 1})
        assert admission.handle is not None
        await admission.handle.wait_finished()
        stats: hookline.EngineStatistics = engine.statistics()
        assert stats.workflows[0].completed == 2
        doubler: hookline.WorkflowStatistics | None = engine.workflow_statistics("doubler")
        assert doubler is not None
        assert doubler.failed == 0


if __name__ == "__main__":
    trio.run(main)
