"""The public API is exactly what we mean to export; nothing leaks by accident."""

import hookline
import hookline.definition
import hookline.engine
import hookline.nodes
import hookline.store
import hookline.testing
import hookline.verify

TOP_LEVEL = {
    "Admission",
    "Answer",
    "Delivery",
    "Engine",
    "EngineStatistics",
    "ExecutionOutcome",
    "HooklineError",
    "JSON",
    "MemoryStore",
    "RestartPolicy",
    "NodeCall",
    "ServerConfig",
    "Store",
    "Workflow",
    "WorkflowStatistics",
    "create_app",
    "errors",
    "load_config",
    "load_workflow_data",
    "load_workflow_text",
    "load_workflows",
    "open_engine",
    "open_store",
    "serve",
}


def public(module: object) -> set[str]:
    # dir(), not vars(): hookline's HTTP names are imported on first use.
    return {name for name in dir(module) if not name.startswith("_")}


def test_top_level_names_are_pinned() -> None:
    subpackages = {"definition", "engine", "http", "nodes", "store", "cli", "testing", "verify"}
    assert public(hookline) - subpackages == TOP_LEVEL


def test_subpackages_export_only_from_private_modules() -> None:
    packages = (hookline.definition, hookline.verify, hookline.engine, hookline.store)
    for package in (*packages, hookline.nodes, hookline.testing):
        for name in public(package):
            value = getattr(package, name)
            if isinstance(value, type(hookline)):
                # submodules are private (_name), never public names
                raise AssertionError(f"{package.__name__}.{name} is a module")
            assert not name.startswith("_")


def test_every_error_descends_from_the_root() -> None:
    for name in hookline.errors.__all__:
        assert issubclass(getattr(hookline.errors, name), hookline.HooklineError)


def test_testing_helpers_are_pinned() -> None:
    assert public(hookline.testing) == {
        "FailNode",
        "FakeJob",
        "MemoryStore",
        "SleepNode",
        "TEST_EPOCH",
        "register_test_nodes",
        "trio_wall_clock",
    }
