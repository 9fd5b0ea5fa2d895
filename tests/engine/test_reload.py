"""Hot reload: a changed file becomes the next version, a broken one leaves the
previous version serving, a deleted one retires its workflow; the folder watcher and
SIGHUP both carry it out."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import trio
import trio.testing

from hookline.engine._engine import Engine, open_engine
from hookline.engine._loader import LoadResult, load_workflow_text, load_workflows
from hookline.engine._reload import plan_reload, reload_on_hangup, watch_workflows
from hookline.errors import DefinitionError
from hookline.testing import register_test_nodes
from tests.conftest import StoreFactory

register_test_nodes()


def napping(output: str, duration: str = "1s") -> str:
    return textwrap.dedent(
        f"""\
        key: nap
        nodes:
          - {{key: nap, type: sleep, duration: {duration}, output: {output}}}
        """
    )


BROKEN = "key: nap\nnodes:\n  - {key: nap, type: no-such-type}\n"


def write(folder: Path, name: str, text: str) -> None:
    partial = folder / f".{name}.tmp"
    partial.write_text(text)
    partial.replace(folder / name)


# -- the plan, without I/O ---------------------------------------------------------------


def test_a_changed_file_replaces_and_an_unchanged_one_keeps_the_running_object() -> None:
    one = load_workflow_text(napping("one"), source="w/nap.yaml")
    other = load_workflow_text(napping("x").replace("key: nap", "key: other"), source="w/o.yaml")
    changed = load_workflow_text(napping("two"), source="w/nap.yaml")
    same = load_workflow_text(other.text, source="w/o.yaml")
    plan = plan_reload({"nap": one, "other": other}, LoadResult((changed, same), ()))
    assert plan.workflows == (changed, other)
    assert plan.workflows[1] is other
    assert plan.kept == {}


def test_a_broken_file_keeps_its_previous_version_and_a_missing_one_retires() -> None:
    one = load_workflow_text(napping("one"), source="w/nap.yaml")
    gone = load_workflow_text(napping("x").replace("key: nap", "key: gone"), source="w/g.yaml")
    error = DefinitionError("w/nap.yaml", "nodes[0].type", "a node type")
    plan = plan_reload({"nap": one, "gone": gone}, LoadResult((), (error,)))
    assert plan.workflows == (one,)
    assert plan.kept == {"nap": (error,)}


def test_a_broken_file_whose_key_another_file_took_is_not_kept() -> None:
    one = load_workflow_text(napping("one"), source="w/nap.yaml")
    moved = load_workflow_text(napping("moved"), source="w/renamed.yaml")
    error = DefinitionError("w/nap.yaml", "", "valid YAML")
    plan = plan_reload({"nap": one}, LoadResult((moved,), (error,)))
    assert plan.workflows == (moved,)
    assert plan.kept == {}


# -- the engine --------------------------------------------------------------------------


async def test_reload_keeps_running_executions_on_their_version_and_survives_a_bad_file(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory, tmp_path: Path
) -> None:
    write(tmp_path, "nap.yaml", napping("one", "10s"))
    async with open_engine(tmp_path, store=make_store()) as engine:
        running = await engine.submit("nap")
        await trio.sleep(1)
        write(tmp_path, "nap.yaml", napping("two"))
        assert await engine.reload() == ()
        second = await engine.run("nap")
        assert (second.status, second.output) == ("succeeded", "two")
        assert running.handle is not None
        first = await running.handle.wait_finished()
        assert (first.status, first.output) == ("succeeded", "one")

        write(tmp_path, "nap.yaml", BROKEN)
        errors = await engine.reload()
        assert [e.path for e in errors] == ["nodes[0].type"]
        assert engine.load_errors == errors
        third = await engine.run("nap")
        assert (third.status, third.output) == ("succeeded", "two")

        write(tmp_path, "nap.yaml", napping("three"))
        assert await engine.reload() == ()
        assert engine.load_errors == ()
        fourth = await engine.run("nap")
        assert fourth.output == "three"
        versions = await engine.store.list_workflow_versions("nap", limit=10, cursor=None)
        assert [v.version for v in versions.items] == [3, 2, 1]

        (tmp_path / "nap.yaml").unlink()
        await engine.reload()
        assert "nap" not in engine.workflows
        assert engine.statistics().workflows == ()


async def test_reloading_an_unchanged_folder_starts_nothing_new(
    autojump_clock: trio.testing.MockClock, make_store: StoreFactory, tmp_path: Path
) -> None:
    write(tmp_path, "nap.yaml", napping("one"))
    async with open_engine(tmp_path, store=make_store()) as engine:
        before = engine.workflows["nap"]
        await engine.reload()
        assert engine.workflows["nap"] is before
        children = [c.name for c in engine.statistics().supervisor.children]
        assert [name for name in children if name.startswith("workflow:")] == ["workflow:nap#1"]


async def wait_for_output(engine: Engine, output: str) -> None:
    with trio.fail_after(10):
        while (await engine.run("nap")).output != output:
            await trio.sleep(0.05)


async def test_the_watcher_reloads_an_edited_file(make_store: StoreFactory, tmp_path: Path) -> None:
    write(tmp_path, "nap.yaml", napping("one", "0s"))
    async with open_engine(tmp_path, store=make_store()) as engine:
        async with trio.open_nursery() as nursery:
            await nursery.start(watch_workflows, engine)
            # The watcher's thread may not watch yet when it reports started: write
            # again until the edit is seen.
            with trio.fail_after(10):
                while True:
                    write(tmp_path, "nap.yaml", napping("two", "0s"))
                    with trio.move_on_after(1):
                        await wait_for_output(engine, "two")
                        break
            write(tmp_path, "nap.yaml", BROKEN)
            with trio.fail_after(10):
                while not engine.load_errors:
                    await trio.sleep(0.05)
            assert (await engine.run("nap")).output == "two"
            nursery.cancel_scope.cancel()


async def test_sighup_reloads_the_folder(make_store: StoreFactory, tmp_path: Path) -> None:
    write(tmp_path, "nap.yaml", napping("one", "0s"))
    async with open_engine(tmp_path, store=make_store()) as engine:
        async with trio.open_nursery() as nursery:
            await nursery.start(reload_on_hangup, engine)
            write(tmp_path, "nap.yaml", napping("two", "0s"))
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_for_output(engine, "two")
            nursery.cancel_scope.cancel()


def test_load_workflows_reports_the_broken_file_by_its_path(tmp_path: Path) -> None:
    write(tmp_path, "nap.yaml", BROKEN)
    result = load_workflows(tmp_path)
    assert [e.source for e in result.errors] == [str(tmp_path / "nap.yaml")]


async def test_deliveries_during_a_reload_are_never_refused(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    write(tmp_path, "nap.yaml", napping("one", "0s"))
    async with open_engine(tmp_path, store=make_store()) as engine:
        outputs: list[object] = []
        done = trio.Event()

        async def deliver() -> None:
            while not done.is_set():
                outputs.append((await engine.run("nap")).output)  # Unavailable would fail

        async with trio.open_nursery() as nursery:
            nursery.start_soon(deliver)
            for version in ("two", "three", "four"):
                write(tmp_path, "nap.yaml", napping(version, "0s"))
                await engine.reload()
                await trio.sleep(0.01)
            done.set()
        assert set(outputs) <= {"one", "two", "three", "four"}
        assert (await engine.run("nap")).output == "four"
