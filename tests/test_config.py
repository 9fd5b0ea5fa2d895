"""The server configuration: defaults, the documented file, overrides and refusals."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from hookline import RestartPolicy
from hookline._config import ServerConfig, check_admin_exposure, load_config, parse_bind
from hookline.errors import ConfigError

DESIGN_CONFIG = """\
server: {bind: "127.0.0.1:8000", certfile: null, keyfile: null, trusted_proxies: []}
store: {url: "sqlite:///var/hookline.db"}
workflows: ./workflows
admin: {api_keys: ["env:HOOKLINE_ADMIN_KEY"]}
http_node: {allow_hosts: []}
smtp: {host: localhost, port: 25, starttls: false, username: null, password: null,
  from: hookline@localhost}
env: [DEPLOY_CHANNEL]
retention: {executions: 30d, deliveries: 7d}
"""

ENV = {"HOOKLINE_ADMIN_KEY": "k-1", "DEPLOY_CHANNEL": "#deploys", "UNLISTED": "x"}


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ServerConfig:
    path = tmp_path / "hookline.yaml"
    path.write_text(text)
    return load_config(path, env=ENV if env is None else env)


def test_no_file_gives_the_defaults() -> None:
    config = load_config(None, env={})
    assert config.server.bind == "127.0.0.1:8000"
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8000)
    assert (config.server.certfile, config.server.trusted_proxies) == (None, ())
    assert (config.server.shutdown_timeout, config.server.access_log) == (10.0, False)
    assert (config.store.url, config.store.synchronous) == ("sqlite:///var/hookline.db", "FULL")
    assert config.workflows == Path("workflows")
    assert (config.admin.api_keys, config.http_node.allow_hosts) == ((), ())
    assert (config.smtp.host, config.smtp.port, config.smtp.sender) == (
        "localhost",
        25,
        "hookline@localhost",
    )
    assert (config.env, dict(config.env_values)) == ((), {})
    assert (config.retention.executions, config.retention.deliveries) == (30 * 86400, 7 * 86400)
    assert config.engine.pending == 10000
    assert config.engine.restart == RestartPolicy(intensity=3, period=5.0)


def test_design_example_loads(tmp_path: Path) -> None:
    config = _load(tmp_path, DESIGN_CONFIG)
    assert config.admin.api_keys == ("k-1",)
    assert config.workflows == tmp_path / "workflows"
    assert config.env == ("DEPLOY_CHANNEL",)
    assert dict(config.env_values) == {"DEPLOY_CHANNEL": "#deploys"}
    assert config.source == str(tmp_path / "hookline.yaml")


def test_every_field_is_read(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        """\
        server:
          bind: "[::1]:9000"
          certfile: tls/cert.pem
          keyfile: /etc/key.pem
          trusted_proxies: [10.0.0.0/8, "fd00::1"]
          shutdown_timeout: 30s
          access_log: true
        store: {url: "env:DB_URL", synchronous: normal}
        workflows: /srv/flows
        http_node: {allow_hosts: [10.1.2.3, internal.example]}
        smtp: {host: mail, port: 465, ssl: true, username: u, password: "env:SMTP_PW", from: a@b.c}
        retention: {executions: 1d, deliveries: 12h}
        engine: {pending: 50, restart: {intensity: 10, period: 1m}}
        """.replace("        ", ""),
        env={"DB_URL": "postgresql://db/hookline", "SMTP_PW": "pw"},
    )
    assert (config.server.host, config.server.port) == ("::1", 9000)
    assert config.server.certfile == tmp_path / "tls/cert.pem"
    assert config.server.keyfile == Path("/etc/key.pem")
    assert config.server.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::1/128"),
    )
    assert (config.server.shutdown_timeout, config.server.access_log) == (30.0, True)
    assert (config.store.url, config.store.synchronous) == ("postgresql://db/hookline", "NORMAL")
    assert config.workflows == Path("/srv/flows")
    assert config.http_node.allow_hosts == ("10.1.2.3", "internal.example")
    assert (config.smtp.ssl, config.smtp.password, config.smtp.sender) == (True, "pw", "a@b.c")
    assert (config.retention.executions, config.retention.deliveries) == (86400, 43200)
    assert config.engine.pending == 50
    assert config.engine.restart == RestartPolicy(intensity=10, period=60.0)
    assert "pw" not in repr(config)


def test_overrides_from_the_command_line(tmp_path: Path) -> None:
    config = _load(tmp_path, DESIGN_CONFIG).with_overrides(bind="0.0.0.0:9999", db="var/x.db")
    assert (config.server.host, config.server.port) == ("0.0.0.0", 9999)
    assert config.store.url == "sqlite:///var/x.db"
    assert config.admin.api_keys == ("k-1",)
    assert load_config(None).with_overrides() == load_config(None)


def test_a_bad_bind_override_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None).with_overrides(bind="localhost")
    assert str(caught.value) == (
        "--bind: expected host:port such as '127.0.0.1:8000' or '[::1]:8000', got 'localhost'"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "server: {bind: '::1:8000'}",
            (
                "server.bind: expected host:port such as '127.0.0.1:8000' or '[::1]:8000', "
                "got '::1:8000'"
            ),
        ),
        (
            "server: {bind: 'h:70000'}",
            (
                "server.bind: expected host:port such as '127.0.0.1:8000' or '[::1]:8000', "
                "got 'h:70000'"
            ),
        ),
        (
            "server: {bnd: 'h:1'}",
            (
                "server.bnd: expected a known field (one of: access_log, bind, body_timeout, "
                "certfile, keep_alive_timeout, keyfile, max_form_parts, max_header_size, "
                "refused, shutdown_timeout, "
                "trusted_proxies, workers)"
            ),
        ),
        (
            "server: {certfile: c.pem}",
            "server.keyfile: expected certfile and keyfile together",
        ),
        (
            "server: {trusted_proxies: [10.0.0.0/33]}",
            "server.trusted_proxies[0]: expected a network such as '10.0.0.0/8', got '10.0.0.0/33'",
        ),
        (
            "server: {shutdown_timeout: later}",
            "server.shutdown_timeout: expected a duration such as '5s', got 'later'",
        ),
        (
            "store: {url: 'mysql://x'}",
            "store.url: expected a URL such as 'sqlite:///var/hookline.db', got 'mysql://x'",
        ),
        (
            "store: {synchronous: sometimes}",
            "store.synchronous: expected one of OFF, NORMAL, FULL, EXTRA, got 'SOMETIMES'",
        ),
        (
            "admin: {api_keys: ['env:NOT_SET']}",
            (
                "admin.api_keys[0]: expected the environment variable NOT_SET to be set, "
                "got 'env:NOT_SET'"
            ),
        ),
        (
            "smtp: {starttls: true, ssl: true}",
            "smtp.ssl: expected false when starttls is true (one or the other), got True",
        ),
        ("smtp: {port: 0}", "smtp.port: expected an integer from 1 to 65535, got 0"),
        (
            "env: [DEPLOY_CHANNEL, NOT_SET]",
            "env[1]: expected the environment variable NOT_SET to be set, got 'NOT_SET'",
        ),
        ("env: DEPLOY_CHANNEL", "env: expected a list, got 'DEPLOY_CHANNEL'"),
        ("engine: {pending: 0}", "engine.pending: expected an integer >= 1, got 0"),
        (
            "engine: {restart: {intensity: -1}}",
            "engine.restart.intensity: expected an integer >= 0, got -1",
        ),
        (
            "engine: {restart: {period: 0s}}",
            "engine.restart.period: expected a duration above zero, such as '5s', got '0s'",
        ),
        (
            "engine: {restart: {burst: 2}}",
            "engine.restart.burst: expected a known field (one of: intensity, period)",
        ),
        (
            "retention: {executions: 0s}",
            "retention.executions: expected a duration above zero, such as '5s', got '0s'",
        ),
        (
            "workflow: ./flows",
            (
                "workflow: expected a known field (one of: admin, alerts, code, engine, env, "
                "http_node, retention, server, smtp, store, workflows)"
            ),
        ),
        ("- a", "expected a mapping of fields, got ['a']"),
        ("server: {bind: [}", "expected valid YAML; line 1, column 17: expected the node"),
    ],
)
def test_bad_config_is_refused_with_file_field_and_expectation(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text + "\n")
    assert str(caught.value).startswith(f"{tmp_path / 'hookline.yaml'}: {message}")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a readable UTF-8 text file"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("bind", "parsed"),
    [("127.0.0.1:8000", ("127.0.0.1", 8000)), ("[::]:0", ("::", 0)), ("host:80", ("host", 80))],
)
def test_parse_bind(bind: str, parsed: tuple[str, int]) -> None:
    assert parse_bind(bind) == parsed


@pytest.mark.parametrize("bind", ["8000", ":8000", "h:", "[::1]8000", "[nope]:1", "h:x"])
def test_parse_bind_refuses(bind: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_bind(bind)


def test_server_limits_are_configurable(tmp_path: Path) -> None:
    path = tmp_path / "hookline.yaml"
    path.write_text("server: {body_timeout: 2s, max_header_size: 8KiB, keep_alive_timeout: 1s}\n")
    server = load_config(path).server
    assert (server.body_timeout, server.max_header_size, server.keep_alive_timeout) == (
        2.0,
        8192,
        1.0,
    )


def test_a_bad_server_limit_names_its_field(tmp_path: Path) -> None:
    path = tmp_path / "hookline.yaml"
    path.write_text("server: {body_timeout: soon}\n")
    with pytest.raises(ConfigError, match=r"server\.body_timeout: expected a duration"):
        load_config(path)


# -- the admin API with no keys where loopback is not only the operator (issue 13, 1) ---


@pytest.mark.parametrize(
    ("server", "why"),
    [
        ('{bind: "0.0.0.0:8000"}', "server.bind '0.0.0.0:8000' is not a loopback address"),
        ('{bind: "[::]:8000"}', "server.bind '[::]:8000' is not a loopback address"),
        ('{trusted_proxies: ["127.0.0.1/32"]}', "server.trusted_proxies is set"),
    ],
)
def test_no_admin_keys_on_an_exposed_server_is_refused(
    tmp_path: Path, server: str, why: str
) -> None:
    config = _load(tmp_path, f"server: {server}\n")
    with pytest.raises(ConfigError) as caught:
        check_admin_exposure(config)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'hookline.yaml'}: admin: expected api_keys, or ")
    assert "'enabled: false'" in message
    assert "'allow_unauthenticated_loopback: true'" in message
    assert why in message


def test_the_issue_s_proxy_config_is_refused(tmp_path: Path) -> None:
    text = 'server: {bind: "0.0.0.0:8000", trusted_proxies: ["127.0.0.1/32"]}\n'
    with pytest.raises(ConfigError, match=r"not a loopback address and server\.trusted_proxies"):
        check_admin_exposure(_load(tmp_path, text))


def test_a_bind_override_is_checked_too() -> None:
    config = load_config(None).with_overrides(bind="0.0.0.0:9000")
    with pytest.raises(ConfigError, match=r"no --config file\): admin: expected api_keys"):
        check_admin_exposure(config)


@pytest.mark.parametrize(
    ("admin", "warning"),
    [
        ("{enabled: false}", "are off (admin.enabled: false)"),
        ("{allow_unauthenticated_loopback: true}", "admin.allow_unauthenticated_loopback: true"),
    ],
)
def test_an_explicit_choice_starts_with_a_warning(tmp_path: Path, admin: str, warning: str) -> None:
    text = f'server: {{bind: "0.0.0.0:8000", trusted_proxies: [10.0.0.0/8]}}\nadmin: {admin}\n'
    found = check_admin_exposure(_load(tmp_path, text))
    assert found is not None
    assert warning in found


def test_keys_or_a_loopback_bind_need_no_warning(tmp_path: Path) -> None:
    keyed = 'server: {bind: "0.0.0.0:8000"}\nadmin: {api_keys: [env:HOOKLINE_ADMIN_KEY]}\n'
    assert check_admin_exposure(_load(tmp_path, keyed)) is None
    for bind in ("127.0.0.1:8000", "[::1]:8000", "localhost:8000"):
        assert check_admin_exposure(_load(tmp_path, f"server: {{bind: '{bind}'}}\n")) is None
    assert check_admin_exposure(load_config(None)) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "admin: {api_keys: [k], allow_unauthenticated_loopback: true}",
            (
                "admin.allow_unauthenticated_loopback: expected false or absent when api_keys are "
                "set (keys apply to every client), got True"
            ),
        ),
        (
            "admin: {enabled: false, allow_unauthenticated_loopback: true}",
            (
                "admin.allow_unauthenticated_loopback: expected false or absent when enabled is "
                "false (there is no admin API), got True"
            ),
        ),
        ("admin: {enabled: nope}", "admin.enabled: expected true or false, got 'nope'"),
        (
            "admin: {allow_unauthenticated: true}",
            (
                "admin.allow_unauthenticated: expected a known field (one of: "
                "allow_unauthenticated_loopback, api_keys, enabled)"
            ),
        ),
    ],
)
def test_bad_admin_settings_name_their_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text + "\n")
    assert str(caught.value) == f"{tmp_path / 'hookline.yaml'}: {message}"


def test_the_code_section_sizes_the_script_pool(tmp_path: Path) -> None:
    path = tmp_path / "hookline.yaml"
    path.write_text("code: {workers: 3, worker_memory: 256MiB, timeout: 2s, memory: 32MiB}\n")
    code = load_config(path).code
    assert (code.workers, code.worker_memory, code.timeout, code.memory) == (
        3,
        256 * 1024 * 1024,
        2.0,
        32 * 1024 * 1024,
    )
    assert code.prestart  # the server starts its workers with it
    path.write_text("code: {worker_memory: 128MiB, memory: 100MiB}\n")
    with pytest.raises(ConfigError, match=r"code\.memory: expected a size from 4MiB to half"):
        load_config(path)
