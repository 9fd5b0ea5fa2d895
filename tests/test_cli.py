"""The CLI is a thin shell: main(argv) -> int."""

import logging
from pathlib import Path

import pytest

import hookline.cli
from hookline._config import ServerConfig
from hookline.cli import main
from hookline.errors import LeaseLost

from .e2e._server import EXAMPLE_ENV

EXAMPLES = Path(__file__).parent.parent / "examples" / "workflows"


def test_validate_examples_passes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["workflows", "validate", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert "hello" in out
    assert "echo" in out


def test_validate_reports_file_field_and_expectation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.yaml").write_text("key: good\nnodes: [{key: a, type: set, values: {x: 1}}]\n")
    (tmp_path / "bad.yaml").write_text(
        "key: bad\nnodes: [{key: a, type: set, values: {x: 1}, timeout: soon}]\n"
    )
    assert main(["workflows", "validate", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "good" in captured.out
    assert "bad.yaml: nodes[0].timeout: expected a duration" in captured.err
    assert "'soon'" in captured.err


UNSET = "HOOKLINE_TEST_SURELY_UNSET"
NEEDS_A_SECRET = f"""\
key: signed
trigger: {{verify: [{{github: {{secret: "env:{UNSET}"}}}}]}}
nodes: [{{key: a, type: set, values: {{x: 1}}}}]
"""


def test_validate_warns_about_unset_variables_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The examples name secrets only the Makefile sets: a fresh shell must still pass.
    for name in EXAMPLE_ENV:
        monkeypatch.delenv(name, raising=False)
    assert main(["workflows", "validate", str(EXAMPLES)]) == 0
    captured = capsys.readouterr()
    assert "(github-push)" in captured.out
    assert (
        "warning "
        f"{EXAMPLES / 'github-push.yaml'}: trigger.verify[0].github.secret: expected the "
        "environment variable GITHUB_WEBHOOK_SECRET to be set"
    ) in captured.err
    assert "hookline serve refuses this workflow" in captured.err
    assert "invalid" not in captured.err

    (tmp_path / "signed.yaml").write_text(NEEDS_A_SECRET)
    assert main(["workflows", "validate", str(tmp_path / "signed.yaml")]) == 0
    assert f"variable {UNSET} to be set" in capsys.readouterr().err


def test_validate_still_finds_errors_beside_an_unset_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = NEEDS_A_SECRET.replace("values: {x: 1}", "values: {x: 1}, timeout: soon")
    (tmp_path / "bad.yaml").write_text(bad)
    assert main(["workflows", "validate", str(tmp_path / "bad.yaml")]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml: nodes[0].timeout: expected a duration" in err


def test_validate_says_which_field_waits_for_its_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A public key can be checked only with the real one: a warning, not an error.
    (tmp_path / "jwt.yaml").write_text(
        "key: jwt\n"
        f'trigger: {{verify: [{{jwt: {{public_key: "env:{UNSET}", algorithms: [RS256]}}}}]}}\n'
        "nodes: [{key: a, type: set, values: {x: 1}}]\n"
    )
    assert main(["workflows", "validate", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "ok" not in captured.out
    assert f"trigger.verify[0].jwt.public_key: expected the environment variable {UNSET}" in (
        captured.err
    )
    assert "to be set to check this field" in captured.err


async def test_serve_refuses_a_workflow_naming_an_unset_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "signed.yaml").write_text(NEEDS_A_SECRET)
    (folder / "plain.yaml").write_text("key: plain\nnodes: [{key: a, type: end}]\n")
    config = ServerConfig(workflows=folder).with_overrides(bind="127.0.0.1:0", db=tmp_path / "h.db")
    shutdown = hookline.cli._Shutdown()
    shutdown.requested.set()  # serve, report what loaded, and stop at once
    await hookline.cli._serve(config, shutdown, None)
    captured = capsys.readouterr()
    assert "serving 1 workflows" in captured.out
    assert (
        f"skipped: {folder / 'signed.yaml'}: trigger.verify[0].github.secret: expected the "
        f"environment variable {UNSET} to be set"
    ) in captured.err


def test_list_shows_paths_and_modes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in EXAMPLE_ENV:
        monkeypatch.delenv(name, raising=False)
    assert main(["workflows", "list", str(EXAMPLES)]) == 0
    captured = capsys.readouterr()
    assert "/api/webhooks/echo/{action}" in captured.out
    assert "sync" in captured.out
    # Workflows naming secrets not set in this shell are listed, with a warning.
    assert "github-push\tenabled\tasync\tPOST /api/webhooks/github/{repo}" in captured.out
    assert "GITHUB_WEBHOOK_SECRET to be set" in captured.err


def test_serve_refuses_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hookline.yaml"
    config.write_text("server: {bind: nowhere}\n")
    assert main(["serve", "--config", str(config)]) == 2
    assert "server.bind" in capsys.readouterr().err


def test_serve_refuses_an_admin_api_without_keys_behind_a_proxy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The setup: every interface, a same-host proxy trusted, no admin section.
    async def must_not_start(config: object, *, fd: int | None = None) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr(hookline.cli, "run_server", must_not_start)
    config = tmp_path / "hookline.yaml"
    config.write_text('server: {bind: "0.0.0.0:0", trusted_proxies: ["127.0.0.1/32"]}\n')
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}: admin: expected api_keys" in err
    assert "server.bind '0.0.0.0:0' is not a loopback address" in err
    assert "server.trusted_proxies is set" in err


@pytest.mark.parametrize(
    ("admin", "warning"),
    [("{enabled: false}", "are off"), ("{allow_unauthenticated_loopback: true}", "although")],
)
def test_serve_starts_with_a_warning_when_the_config_says_so(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    admin: str,
    warning: str,
) -> None:
    started: list[ServerConfig] = []

    async def record(config: ServerConfig, *, fd: int | None = None) -> None:
        started.append(config)

    monkeypatch.setattr(hookline.cli, "run_server", record)
    config = tmp_path / "hookline.yaml"
    config.write_text(f'server: {{bind: "0.0.0.0:0"}}\nadmin: {admin}\n')
    with caplog.at_level(logging.WARNING, logger="hookline"):
        assert main(["serve", "--config", str(config)]) == 0
    assert len(started) == 1
    assert [r.levelno for r in caplog.records if warning in r.getMessage()] == [logging.WARNING]


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_serve_that_lost_its_lease_exits_1_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine side (a process declared dead stops with LeaseLost) is shown in
    # tests/engine/test_cluster.py; here only what the command makes of it.
    async def declared_dead(config: object, *, fd: int | None = None) -> None:
        lost = LeaseLost("worker vm/1/ab missed its heartbeats for 10.0s")
        raise ExceptionGroup("engine", [ExceptionGroup("cluster", [lost])])

    monkeypatch.setattr(hookline.cli, "run_server", declared_dead)
    config = tmp_path / "hookline.yaml"
    config.write_text(f"workflows: {tmp_path}\n")
    assert main(["serve", "--config", str(config), "--db", str(tmp_path / "h.db")]) == 1
    assert "stopped: worker vm/1/ab missed its heartbeats" in capsys.readouterr().err
