"""The server configuration, ``hookline.yaml`` (DESIGN.md section 8), validated at load.

Every section is a frozen attrs class with the documented defaults; :func:`load_config`
with no file gives them all. Unknown keys are refused, ``env:NAME`` values (admin keys,
SMTP credentials, the store URL) are read from the environment at load time, and the
paths in the file (``workflows``, ``certfile``, ``keyfile``) are relative to the file's
folder. Errors raise :class:`~hookline.errors.ConfigError` naming the file, the field
path and what was expected.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs

from .engine._alert_monitor import AlertsConfig
from .engine._alerts import METRICS, AlertRule
from .engine._refusal_limit import BucketRate, RefusalPolicy
from .engine._supervisor import RestartPolicy
from .errors import ConfigError
from .nodes._chat import PROVIDERS as CHAT_PROVIDERS
from .nodes._script_pool import ScriptPoolConfig

if TYPE_CHECKING:
    from .definition import Fields

__all__ = [
    "AdminConfig",
    "EngineConfig",
    "HttpNodeConfig",
    "RetentionConfig",
    "ServerConfig",
    "ServerSection",
    "SmtpConfig",
    "StoreConfig",
    "check_admin_exposure",
    "load_config",
    "parse_bind",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_BIND_EXPECTED = "host:port such as '127.0.0.1:8000' or '[::1]:8000'"
_STORE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")
_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def parse_bind(text: str) -> tuple[str, int]:
    """Split ``host:port`` (an IPv6 host in brackets) into host and port.

    Raises :class:`ValueError` for a missing host or port, a port outside 0-65535 (0:
    any free port) or an unbracketed or invalid IPv6 address.
    """
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]:")
        if not bracket:
            raise ValueError(text)
        ipaddress.IPv6Address(host)
    else:
        host, colon, port = text.rpartition(":")
        if not colon or not host or ":" in host:
            raise ValueError(text)
    if not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        raise ValueError(text)
    return host, int(port)


@attrs.frozen
class ServerSection:
    """``server:``: where to listen, TLS, proxies believed, shutdown, access log and how
    many worker processes serve."""

    bind: str = "127.0.0.1:8000"
    certfile: Path | None = None
    keyfile: Path | None = None
    trusted_proxies: tuple[IPNetwork, ...] = ()
    shutdown_timeout: float = 10.0
    access_log: bool = False
    body_timeout: float = 30.0  # a body that takes longer to arrive: 408
    max_form_parts: int = 1000  # a multipart or URL-encoded form with more parts: 413
    max_header_size: int = 16 * 1024  # request line and headers larger: 431
    keep_alive_timeout: float = 5.0
    workers: int = 1  # processes serving the port (more than one: PostgreSQL only)
    # How much of refused requests is recorded (``refused:``; docs/security.md, section 2).
    refused: RefusalPolicy = attrs.field(factory=RefusalPolicy)

    @property
    def host(self) -> str:
        """The host part of ``bind`` (no brackets)."""
        return parse_bind(self.bind)[0]

    @property
    def port(self) -> int:
        """The port part of ``bind``."""
        return parse_bind(self.bind)[1]


@attrs.frozen
class StoreConfig:
    """``store:``: the database URL and SQLite's ``synchronous`` setting."""

    url: str = "sqlite:///var/hookline.db"
    synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"


@attrs.frozen
class AdminConfig:
    """``admin:``: the admin API's bearer keys (none: loopback clients only).

    ``enabled: false`` turns the admin API, the web UI and ``/metrics`` off (404).
    ``allow_unauthenticated_loopback: true`` accepts, with no keys, that loopback
    clients need none where :func:`check_admin_exposure` would otherwise refuse to
    serve (a non-loopback bind, or trusted proxies).
    """

    api_keys: tuple[str, ...] = ()
    enabled: bool = True
    allow_unauthenticated_loopback: bool = False


@attrs.frozen
class HttpNodeConfig:
    """``http_node:``: private hosts the ``http`` node may call anyway."""

    allow_hosts: tuple[str, ...] = ()


@attrs.frozen
class SmtpConfig:
    """``smtp:``: the mail server of the ``email`` node. ``sender`` is ``from:``."""

    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    sender: str = "hookline@localhost"


@attrs.frozen
class RetentionConfig:
    """``retention:``: how long finished executions and deliveries are kept (seconds)."""

    executions: float = 30 * 86400.0
    deliveries: float = 7 * 86400.0
    refused_deliveries: float = 86400.0  # refused requests' records: a day


@attrs.frozen
class EngineConfig:
    """``engine:``: ``pending`` is the engine-wide limit of accepted, unfinished
    executions; past it deliveries get 503. ``restart`` is how many actor crashes the
    supervisors absorb before giving up (``{intensity: 3, period: 5s}``)."""

    pending: int = 10000
    restart: RestartPolicy = attrs.field(factory=RestartPolicy)


@attrs.frozen
class ServerConfig:
    """The whole server configuration. ``env_values`` holds the variables named under
    ``env:`` (the ``$env`` template root), read at load. ``source`` is the file, if any."""

    server: ServerSection = attrs.field(factory=ServerSection)
    store: StoreConfig = attrs.field(factory=StoreConfig)
    workflows: Path = Path("workflows")
    admin: AdminConfig = attrs.field(factory=AdminConfig)
    http_node: HttpNodeConfig = attrs.field(factory=HttpNodeConfig)
    smtp: SmtpConfig = attrs.field(factory=SmtpConfig)
    env: tuple[str, ...] = ()
    env_values: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    retention: RetentionConfig = attrs.field(factory=RetentionConfig)
    engine: EngineConfig = attrs.field(factory=EngineConfig)
    # ``code:``: the code node's worker processes; the server starts them at once.
    code: ScriptPoolConfig = attrs.field(factory=lambda: ScriptPoolConfig(prestart=True))
    source: str | None = None
    #: ``alerts:``: rules on failure rate and queues, and where their notices go.
    alerts: AlertsConfig = attrs.field(factory=AlertsConfig)

    def with_overrides(
        self,
        *,
        bind: str | None = None,
        db: str | Path | None = None,
        workers: int | None = None,
    ) -> ServerConfig:
        """This config with the command line's ``--bind HOST:PORT``, ``--db PATH`` (a
        SQLite file) and ``--workers N`` applied. Raises :class:`ConfigError` for a bad
        ``bind`` or fewer than one worker."""
        config = self
        if workers is not None:
            if workers < 1:
                raise ConfigError("--workers", "", "an integer >= 1", workers)
            server = attrs.evolve(config.server, workers=workers)
            config = attrs.evolve(config, server=server)
        if bind is not None:
            try:
                parse_bind(bind)
            except ValueError:
                raise ConfigError("--bind", "", _BIND_EXPECTED, bind) from None
            config = attrs.evolve(config, server=attrs.evolve(config.server, bind=bind))
        if db is not None:
            store = attrs.evolve(config.store, url=f"sqlite:///{db}")
            config = attrs.evolve(config, store=store)
        return config


def load_config(path: str | Path | None, *, env: Mapping[str, str] | None = None) -> ServerConfig:
    """Read and validate a ``hookline.yaml``; ``None`` gives the defaults.

    ``env`` (default :data:`os.environ`) resolves ``env:NAME`` values and the ``env:``
    list. Raises :class:`ConfigError` for an unreadable file, invalid YAML, an unknown
    or invalid field, or an environment variable that is named but not set.
    """
    if path is None:
        return ServerConfig()
    # Imported here: the engine package may import this module, and config loading
    # must not depend on the engine having been imported first.
    from .definition import Fields, parse_yaml

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", "a readable UTF-8 text file", str(exc)) from None
    data = parse_yaml(text, source=source, error=ConfigError)
    fields = Fields(data, source=source, error=ConfigError, env=os.environ if env is None else env)
    base = Path(path).parent
    config = ServerConfig(
        server=_server(fields.sub("server"), base),
        store=_store(fields.sub("store")),
        workflows=base / fields.string("workflows", "workflows"),
        admin=_admin(fields.sub("admin")),
        http_node=_http_node(fields.sub("http_node")),
        smtp=_smtp(fields.sub("smtp")),
        env=fields.strings("env"),
        retention=_retention(fields.sub("retention")),
        engine=_engine(fields.sub("engine")),
        code=_code(fields.sub("code")),
        source=source,
        alerts=_alerts(fields.sub("alerts")),
    )
    config = attrs.evolve(config, env_values=_env_values(fields, config.env))
    fields.done()
    return config


def _server(fields: Fields, base: Path) -> ServerSection:
    bind = fields.string("bind", "127.0.0.1:8000", expected=_BIND_EXPECTED)
    try:
        parse_bind(bind)
    except ValueError:
        fields.fail("bind", _BIND_EXPECTED, bind)
    certfile = fields.string("certfile", None)
    keyfile = fields.string("keyfile", None)
    if (certfile is None) != (keyfile is None):
        fields.fail("keyfile" if keyfile is None else "certfile", "certfile and keyfile together")
    proxies = []
    for index, entry in enumerate(fields.strings("trusted_proxies")):
        try:
            proxies.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            fields.fail(f"trusted_proxies[{index}]", "a network such as '10.0.0.0/8'", entry)
    section = ServerSection(
        bind=bind,
        certfile=None if certfile is None else base / certfile,
        keyfile=None if keyfile is None else base / keyfile,
        trusted_proxies=tuple(proxies),
        shutdown_timeout=fields.duration("shutdown_timeout", 10.0),
        access_log=fields.boolean("access_log", default=False),
        body_timeout=fields.duration("body_timeout", 30.0),
        max_form_parts=fields.integer("max_form_parts", 1000, low=1),
        max_header_size=fields.size("max_header_size", 16 * 1024),
        keep_alive_timeout=fields.duration("keep_alive_timeout", 5.0),
        workers=fields.integer("workers", 1, low=1),
        refused=_refused(fields.sub("refused")),
    )
    fields.done()
    return section


def _refused(fields: Fields) -> RefusalPolicy:
    # Rates are per minute; each bucket holds half a minute's worth at once.
    def rate(name: str, per_minute: int) -> BucketRate:
        found = fields.integer(name, per_minute, low=1)
        return BucketRate(per_second=found / 60.0, burst=max(1.0, found / 2.0))

    policy = RefusalPolicy(
        keep_body=fields.size("keep_body", 4096),
        per_client=rate("per_client", 60),
        per_path=rate("per_path", 300),
        total=rate("total", 1200),
    )
    fields.done()
    return policy


def _store(fields: Fields) -> StoreConfig:
    expected = "a URL such as 'sqlite:///var/hookline.db'"
    url = fields.string("url", "sqlite:///var/hookline.db", expected=expected, env=True)
    if not url.startswith(_STORE_SCHEMES) or url in _STORE_SCHEMES:
        fields.fail("url", expected, url)
    levels = ("OFF", "NORMAL", "FULL", "EXTRA")
    synchronous = fields.string("synchronous", "FULL").upper()
    if synchronous not in levels:
        fields.fail("synchronous", "one of " + ", ".join(levels), synchronous)
    fields.done()
    return StoreConfig(url=url, synchronous=synchronous)  # type: ignore[arg-type]


def _admin(fields: Fields) -> AdminConfig:
    keys = fields.strings("api_keys")
    resolved = tuple(fields.resolve_env(f"api_keys[{i}]", key) for i, key in enumerate(keys))
    for index, key in enumerate(resolved):
        if not key:
            fields.fail(f"api_keys[{index}]", "a non-empty key", keys[index])
    enabled = fields.boolean("enabled", default=True)
    unauthenticated = fields.boolean("allow_unauthenticated_loopback", default=False)
    if unauthenticated and resolved:
        expected = "false or absent when api_keys are set (keys apply to every client)"
        fields.fail("allow_unauthenticated_loopback", expected, unauthenticated)
    if unauthenticated and not enabled:
        expected = "false or absent when enabled is false (there is no admin API)"
        fields.fail("allow_unauthenticated_loopback", expected, unauthenticated)
    fields.done()
    return AdminConfig(
        api_keys=resolved, enabled=enabled, allow_unauthenticated_loopback=unauthenticated
    )


def _loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_admin_exposure(config: ServerConfig) -> str | None:
    """Refuse to serve an admin API that no key guards where "loopback clients only"
    does not mean "this machine's operator"; give the warning to log when it serves
    anyway, None when there is nothing to say.

    Without ``admin.api_keys`` the admin API, the web UI and ``/metrics`` answer any
    loopback client. That is unsafe when ``server.bind`` is not a loopback address, or
    when ``server.trusted_proxies`` is set (a reverse proxy on the host connects from
    loopback for everyone). Then :class:`ConfigError` is raised, naming the file and
    ``admin``, unless ``admin.enabled`` is false or ``admin.allow_unauthenticated_loopback``
    is true, which give a warning instead.
    """
    admin, server = config.admin, config.server
    if not admin.enabled:
        return "the admin API, the web UI and /metrics are off (admin.enabled: false)"
    if admin.api_keys:
        return None
    reasons = []
    if not _loopback_host(server.host):
        reasons.append(f"server.bind {server.bind!r} is not a loopback address")
    if server.trusted_proxies:
        reasons.append(
            "server.trusted_proxies is set (a reverse proxy on this host connects from "
            "loopback on behalf of remote clients)"
        )
    if not reasons:
        return None
    why = " and ".join(reasons)
    if admin.allow_unauthenticated_loopback:
        return (
            "the admin API, the web UI and /metrics have no admin keys and answer loopback "
            f"clients without one although {why} (admin.allow_unauthenticated_loopback: true)"
        )
    raise ConfigError(
        config.source or "the configuration (no --config file)",
        "admin",
        "api_keys, or 'enabled: false' to turn the admin API off, or "
        "'allow_unauthenticated_loopback: true' to accept the risk, because with no keys "
        f"the admin API, the web UI and /metrics answer any loopback client, and {why}",
    )


def _http_node(fields: Fields) -> HttpNodeConfig:
    section = HttpNodeConfig(allow_hosts=fields.strings("allow_hosts"))
    fields.done()
    return section


def _code(fields: Fields) -> ScriptPoolConfig:
    default = ScriptPoolConfig()
    section = ScriptPoolConfig(
        workers=fields.integer("workers", default.workers, low=1, high=256),
        worker_memory=fields.size("worker_memory", default.worker_memory),
        timeout=fields.duration("timeout", default.timeout),
        memory=fields.size("memory", default.memory),
        max_result=fields.size("max_result", default.max_result),
        prestart=True,
    )
    if not 64 * 1024 * 1024 <= section.worker_memory <= 64 * 1024**3:
        fields.fail("worker_memory", "a size from 64MiB to 64GiB", fields.value("worker_memory"))
    if not 4 * 1024 * 1024 <= section.memory <= min(1024**3, section.worker_memory // 2):
        fields.fail(
            "memory",
            "a size from 4MiB to half of code.worker_memory (at most 1GiB)",
            fields.value("memory"),
        )
    fields.done()
    return section


def _smtp(fields: Fields) -> SmtpConfig:
    section = SmtpConfig(
        host=fields.string("host", "localhost"),
        port=fields.integer("port", 25, low=1, high=65535),
        starttls=fields.boolean("starttls", default=False),
        ssl=fields.boolean("ssl", default=False),
        username=fields.string("username", None, env=True),
        password=fields.string("password", None, env=True),
        sender=fields.string("from", "hookline@localhost"),
    )
    if section.starttls and section.ssl:
        fields.fail("ssl", "false when starttls is true (one or the other)", section.ssl)
    fields.done()
    return section


def _retention(fields: Fields) -> RetentionConfig:
    section = RetentionConfig(
        executions=fields.duration("executions", 30 * 86400.0),
        deliveries=fields.duration("deliveries", 7 * 86400.0),
        refused_deliveries=fields.duration("refused_deliveries", 86400.0),
    )
    fields.done()
    return section


def _engine(fields: Fields) -> EngineConfig:
    restart = fields.sub("restart")
    policy = RestartPolicy(
        intensity=restart.integer("intensity", 3, low=0),
        period=restart.duration("period", 5.0),
    )
    restart.done()
    section = EngineConfig(pending=fields.integer("pending", 10000, low=1), restart=policy)
    fields.done()
    return section


def _alerts(fields: Fields) -> AlertsConfig:
    email = fields.value("email", [])
    email = [email] if isinstance(email, str) else email
    if not isinstance(email, list) or not all(isinstance(a, str) and "@" in a for a in email):
        fields.fail("email", "an email address or a list of them", email)
    section = AlertsConfig(
        rules=tuple(_alert_rule(rule) for rule in fields.items("rules")),
        check_every=fields.duration("check_every", 15.0),
        chat_url=fields.string("chat", None, env=True),
        email_to=tuple(email),
        chat_provider=fields.choice("chat_provider", CHAT_PROVIDERS, None),
    )
    if section.chat_url is not None and not section.chat_url.startswith(("http://", "https://")):
        fields.fail("chat", "a webhook URL (http:// or https://)")
    if section.rules and section.chat_url is None and not section.email_to:
        fields.fail("chat", "chat: <webhook URL> or email: <address>, where alerts are sent")
    names = [rule.name for rule in section.rules]
    for index, name in enumerate(names):
        if name in names[:index]:
            fields.fail(f"rules[{index}].name", "a name no other rule has", name)
    fields.done()
    return section


def _alert_rule(fields: Fields) -> AlertRule:
    written = [metric for metric in METRICS if fields.has(metric)]
    if len(written) != 1:
        fields.fail("", "exactly one of " + ", ".join(METRICS), written or None)
    (metric,) = written
    if metric == "failure_rate":
        threshold = fields.value(metric)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            fields.fail(metric, "a share from 0 to 1 such as 0.5", threshold)
        if not 0 <= threshold < 1:
            fields.fail(metric, "a share from 0 to 1 such as 0.5", threshold)
    elif metric == "queue_depth":
        threshold = fields.integer(metric, low=0)
    else:
        threshold = fields.duration(metric, positive=False)
    # A failure rate needs a span to count over; a queue may fire at once by default.
    default_window = 300.0 if metric == "failure_rate" else 0.0
    rule = AlertRule(
        name=fields.string("name", expected="a name for the rule"),
        metric=metric,
        threshold=float(threshold),
        window=fields.duration("window", default_window, positive=False),
        workflow=fields.string("workflow", None),
        min_executions=fields.integer("min_executions", 5, low=1),
    )
    fields.done()
    return rule


def _env_values(fields: Fields, names: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, name in enumerate(names):
        if re.fullmatch(_ENV_NAME, name) is None:
            fields.fail(f"env[{index}]", "an environment variable name", name)
        if name not in fields.env:
            fields.fail(f"env[{index}]", f"the environment variable {name} to be set", name)
        values[name] = fields.env[name]
    return values
