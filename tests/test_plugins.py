"""Plugins: examples/plugins installed for real (pip, into a folder of this test
session), its node type and verify scheme used by workflows, broken plugins reported
by name, and `hookline plugins` listing them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import EntryPoint, distributions
from pathlib import Path

import httpx
import pytest

from hookline._plugins import NODE_GROUP, VERIFIER_GROUP, Plugins, load_plugins
from hookline.engine._engine import open_engine
from hookline.engine._loader import load_workflow_text
from hookline.errors import DefinitionError, Forbidden, Unauthenticated
from hookline.verify import SignedRequest
from hookline.verify._plugin_schemes import unregister_scheme
from tests.e2e._server import ServerProcess

ROOT = Path(__file__).parent.parent

USES_BOTH = textwrap.dedent(
    """\
    key: loud
    trigger:
      mode: sync
      verify:
        - query_token: {token: s3cret}
    nodes:
      - {key: up, type: shout, text: "{{$context.data.message}}"}
      - {key: reply, type: response, status: 200, body: "{{$nodes.up}}"}
    """
)

BROKEN_DIST = """\
Metadata-Version: 2.1
Name: hookline-broken-plugin
Version: 0.0.1
"""

BROKEN_ENTRY_POINTS = """\
[hookline.nodes]
vanishing = no_such_module_anywhere:node
set = hookline_example_plugin:shout
blocking = os.path:join
"""


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/plugins installed by pip into a folder (not the shared venv), plus a
    broken plugin's metadata beside it."""
    build = tmp_path_factory.mktemp("plugin-source")
    shutil.copytree(ROOT / "examples" / "plugins", build, dirs_exist_ok=True)
    target = tmp_path_factory.mktemp("plugins")
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
    # Offline first, with the setuptools and wheel already here; else pip fetches them.
    offline = subprocess.run(
        [*install, "--no-build-isolation", "."], cwd=build, capture_output=True, check=False
    )
    if offline.returncode != 0:
        subprocess.run([*install, "."], cwd=build, check=True, capture_output=True)
    broken = target / "hookline_broken_plugin-0.0.1.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text(BROKEN_DIST)
    (broken / "entry_points.txt").write_text(BROKEN_ENTRY_POINTS)
    return target


def installed_entry_points(path: Path) -> list[EntryPoint]:
    return [
        point
        for dist in distributions(path=[str(path)])
        for point in dist.entry_points
        if point.group in (NODE_GROUP, VERIFIER_GROUP)
    ]


@pytest.fixture
def plugins(plugin_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    monkeypatch.syspath_prepend(str(plugin_path))
    found = load_plugins(installed_entry_points(plugin_path))
    found.register_verifiers()
    yield found
    for name in found.verifiers:
        unregister_scheme(name)


def test_the_example_plugin_loads_and_broken_ones_are_reported_by_name(plugins: Plugins) -> None:
    assert sorted(plugins.nodes) == ["shout"]
    assert sorted(plugins.verifiers) == ["query_token"]
    assert {(p.name, p.package) for p in plugins.loaded} == {
        ("shout", "hookline-example-plugin 0.1.0"),
        ("query_token", "hookline-example-plugin 0.1.0"),
    }
    broken = {p.name: p.error for p in plugins.broken}
    assert set(broken) == {"vanishing", "set", "blocking"}
    assert "ModuleNotFoundError" in broken["vanishing"]
    assert "is built in" in broken["set"]
    assert "expected an async function" in broken["blocking"]


async def test_a_workflow_uses_the_plugin_node_type_and_verify_scheme(plugins: Plugins) -> None:
    workflow = load_workflow_text(USES_BOTH, source="loud.yaml", nodes=plugins.nodes)
    check = workflow.trigger.verification
    url = "https://hooks.example/api/webhooks/loud"
    check.verify(SignedRequest("POST", f"{url}?token=s3cret", {}, b"{}"), 0.0)
    with pytest.raises(Forbidden):
        check.verify(SignedRequest("POST", f"{url}?token=guess", {}, b"{}"), 0.0)
    with pytest.raises(Unauthenticated):
        check.verify(SignedRequest("POST", url, {}, b"{}"), 0.0)
    shouting = USES_BOTH.split("  - {key: reply")[0]
    async with open_engine(
        [load_workflow_text(shouting, source="loud.yaml", nodes=plugins.nodes)]
    ) as engine:
        outcome = await engine.run("loud", data={"message": "hello"})
    assert (outcome.status, outcome.output) == ("succeeded", {"text": "HELLO"})


def test_bad_options_for_a_plugin_scheme_are_a_load_error_naming_the_field(
    plugins: Plugins,
) -> None:
    text = USES_BOTH.replace("{token: s3cret}", "{token: s3cret, colour: red}")
    with pytest.raises(DefinitionError) as caught:
        load_workflow_text(text, source="loud.yaml", nodes=plugins.nodes)
    assert caught.value.path == "trigger.verify[0].query_token"
    assert "unknown options: colour" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_the_plugin_scheme_is_unknown_without_the_plugin() -> None:
    with pytest.raises(DefinitionError, match="a scheme, one of"):
        load_workflow_text(USES_BOTH, source="loud.yaml", nodes={})


def run_cli(plugin_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(plugin_path), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "hookline", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=60,
    )


def test_hookline_plugins_lists_what_is_loaded_and_what_is_broken(plugin_path: Path) -> None:
    done = run_cli(plugin_path, "plugins", "--json")
    assert done.returncode == 1, done.stderr
    listed = json.loads(done.stdout)
    assert sorted(p["name"] for p in listed["loaded"]) == ["query_token", "shout"]
    assert sorted(p["name"] for p in listed["broken"]) == ["blocking", "set", "vanishing"]
    table = run_cli(plugin_path, "plugins").stdout
    assert "shout" in table
    assert "broken" in table


def test_a_server_runs_plugins_and_starts_despite_a_broken_one(
    plugin_path: Path, tmp_path: Path
) -> None:

    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "loud.yaml").write_text(USES_BOTH)
    (tmp_path / "hookline.yaml").write_text(
        'server: {bind: "127.0.0.1:0"}\nworkflows: ./workflows\n'
    )
    server = ServerProcess(
        tmp_path / "hookline.yaml", tmp_path / "db.sqlite", env={"PYTHONPATH": str(plugin_path)}
    )
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answer = client.post("/api/webhooks/loud?token=s3cret", json={"message": "hi"})
            refused = client.post("/api/webhooks/loud?token=nope", json={"message": "hi"})
        assert (answer.status_code, answer.json()) == (200, {"text": "HI"})
        assert refused.status_code == 403
    finally:
        server.stop(2)
    assert any("vanishing" in line for line in server.output)


def test_workflows_validate_knows_the_plugins(plugin_path: Path, tmp_path: Path) -> None:
    (tmp_path / "loud.yaml").write_text(USES_BOTH)
    done = run_cli(plugin_path, "workflows", "validate", str(tmp_path / "loud.yaml"))
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout
    assert "plugin not loaded: hookline.nodes 'vanishing'" in done.stderr
