"""Loading workflow definitions (DESIGN.md section 4) into validated :class:`Workflow` s.

Everything is checked at load time: field types, durations and sizes, ``env:NAME``
secrets, IP networks, templates and comparison trees (compiled here, once), node types
and node keys (unique across the whole tree). A definition that does not validate raises
:class:`~hookline.errors.DefinitionError` naming the file, the field path and what was
expected. :func:`load_workflows` reads a folder and collects the errors of bad files
instead of raising, so one bad file never stops the others.

``nodes`` (every function here takes it) maps custom node type names to their async
functions (:mod:`hookline.nodes._call`): the definitions may use those types besides
the built-in ones. It is the same mapping ``open_engine(..., nodes=...)`` takes, and
what plugin entry points will produce.

A node written to take longer than its workflow may run (an explicit ``timeout``, or a
``delay`` node's literal ``duration``, above the workflow's ``timeout``) is refused: it
could only end in the workflow timing out. A templated duration is checked when it runs.

Two workflows conflict when a request could reach both: a method in common and paths
that match the same requests with neither more specific. ``github/{repo}`` and
``github/{name}`` conflict; ``github/push`` and ``github/{repo}`` do not (a router takes
the literal segment first); ``a/{x}`` and ``{y}/b`` do.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from ..definition import Fields, parse_cors, parse_yaml
from ..errors import DefinitionError
from ..nodes._call import NodeFunction, custom_node_types
from ..nodes._registry import NodeListParser, NodeTypes
from ..verify import SCHEMES, Verifier, compile_verifiers
from ..verify._plugin_schemes import plugin_schemes
from ._batch_rule import batch_rule
from ._definition import (
    HTTP_METHODS,
    CancelOn,
    Concurrency,
    DebounceRule,
    Idempotency,
    IPNetwork,
    RateRule,
    ResponseSpec,
    WebhookTrigger,
    Workflow,
)
from ._gcra import Rate

__all__ = [
    "VERIFY_SCHEMES",
    "LoadResult",
    "UnsetEnv",
    "check_conflicts",
    "check_workflow_text",
    "load_workflow_data",
    "load_workflow_text",
    "load_workflows",
]

VERIFY_SCHEMES = tuple(SCHEMES)
"""The built-in ``verify`` entry names (DESIGN.md section 6, and issue 15's)."""

WORKFLOW_SUFFIXES = (".yaml", ".yml", ".json")

_KEY = r"[a-z0-9][a-z0-9_-]*"
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PATH_EXPECTED = (
    "a path such as 'github/{repo}': segments of letters, digits, '.', '_', '~', '-', "
    "or one {name} parameter each"
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


UnsetEnv = Literal["error", "warn"]
"""What an ``env:NAME`` naming an unset variable is: an error (serving: the workflow is
refused), or a warning (validating on a machine that does not hold the secrets)."""

# Stands in for an unset variable's value while validating, so that the rest of the
# definition is still checked.
_PLACEHOLDER = "hookline-validate-placeholder"


@attrs.frozen
class LoadResult:
    """The workflows of a folder that loaded, and the errors of the files that did not.

    ``warnings`` (only with ``unset_env="warn"``) name each unset environment variable
    with its file and field path; such a workflow is among ``workflows`` when the rest
    of it validates, but serving refuses it until the variable is set.
    """

    workflows: tuple[Workflow, ...]
    errors: tuple[DefinitionError, ...]
    warnings: tuple[DefinitionError, ...] = ()


def load_workflows(
    folder: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    nodes: Mapping[str, NodeFunction] | None = None,
    unset_env: UnsetEnv = "error",
) -> LoadResult:
    """Load every ``*.yaml``, ``*.yml`` and ``*.json`` file of ``folder``, in name order.

    Never raises for a bad file: its error is collected and the others load. A file
    whose key or route conflicts with one loaded before it is an error of the later file.
    A missing folder gives no workflows and one error. ``nodes`` are custom node types
    (see the module's docs); a bad one raises :class:`ValueError` or :class:`TypeError`.
    ``unset_env="warn"`` makes unset ``env:NAME`` variables warnings (see
    :func:`check_workflow_text`).
    """
    types = custom_node_types(nodes)
    folder = Path(folder)
    if not folder.is_dir():
        error = DefinitionError(str(folder), "", "a folder of workflow files")
        return LoadResult(workflows=(), errors=(error,))
    loaded: list[Workflow] = []
    errors: list[DefinitionError] = []
    warnings: list[DefinitionError] = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in WORKFLOW_SUFFIXES or path.name.startswith("."):
            continue
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(DefinitionError(source, "", "a readable UTF-8 text file", str(exc)))
            continue
        try:
            if unset_env == "warn":
                checked, unset = _check_text(text, source=source, env=env, types=types)
                warnings.extend(unset)
                if checked is None:
                    continue
                workflow = checked
            else:
                workflow = _load_text(text, source=source, env=env, types=types)
            check_conflicts(workflow, loaded)
        except DefinitionError as exc:
            errors.append(exc)
        else:
            loaded.append(workflow)
    return LoadResult(workflows=tuple(loaded), errors=tuple(errors), warnings=tuple(warnings))


def check_workflow_text(
    text: str,
    *,
    source: str,
    env: Mapping[str, str] | None = None,
    nodes: Mapping[str, NodeFunction] | None = None,
) -> tuple[Workflow | None, tuple[DefinitionError, ...]]:
    """Validate one definition as :func:`load_workflow_text` does, except that an
    ``env:NAME`` naming an unset variable is a warning, not an error: the rest of the
    definition is checked with a stand-in value.

    Returns the workflow and the warnings, each naming the file, the field path and the
    variable. The workflow is None when a field could be checked only with the
    variable's real value (a key of a fixed length); its warning says so. Raises
    :class:`DefinitionError` for anything else that does not validate.
    """
    return _check_text(text, source=source, env=env, types=custom_node_types(nodes))


def _check_text(
    text: str, *, source: str, env: Mapping[str, str] | None, types: NodeTypes
) -> tuple[Workflow | None, tuple[DefinitionError, ...]]:
    values = dict(os.environ if env is None else env)
    warnings: list[DefinitionError] = []
    stand_ins: dict[str, str] = {}  # field path -> the unset variable it names
    # Each pass finds one more unset variable, or ends: the loop is bounded by them.
    while True:
        try:
            return _load_text(text, source=source, env=values, types=types), tuple(warnings)
        except DefinitionError as exc:
            variable = _unset_variable(exc)
            if variable is not None and variable not in values:
                warnings.append(exc)
                values[variable] = _PLACEHOLDER
                stand_ins[exc.path] = variable
                continue
            blocked = _stand_in_for(exc, stand_ins)
            if blocked is None:
                raise
            expected = f"the environment variable {blocked} to be set to check this field"
            warnings.append(DefinitionError(source, exc.path, expected))
            return None, tuple(warnings)


def _unset_variable(error: DefinitionError) -> str | None:
    """The variable ``error`` says is unset (see ``Fields.resolve_env``), if that is it."""
    got = error.got
    if not isinstance(got, str) or not got.startswith("env:"):
        return None
    name = got[len("env:") :]
    return name if error.expected == f"the environment variable {name} to be set" else None


def _stand_in_for(error: DefinitionError, stand_ins: Mapping[str, str]) -> str | None:
    """The unset variable whose stand-in value ``error`` is about, if any."""
    for path, variable in stand_ins.items():
        if error.path == path or error.path.startswith((f"{path}.", f"{path}[")):
            return variable
    if isinstance(error.got, str) and _PLACEHOLDER in error.got:
        return next(iter(stand_ins.values()), None)
    return None


def load_workflow_text(
    text: str,
    *,
    source: str,
    env: Mapping[str, str] | None = None,
    nodes: Mapping[str, NodeFunction] | None = None,
) -> Workflow:
    """Parse and validate one definition written in YAML (or JSON, a ``.json`` source).

    ``source`` names the file in messages and becomes :attr:`Workflow.source`; ``text``
    becomes :attr:`Workflow.text`. Raises :class:`DefinitionError` for a syntax error
    (with its line), a duplicate mapping key, or anything :func:`load_workflow_data` refuses.
    """
    return _load_text(text, source=source, env=env, types=custom_node_types(nodes))


def load_workflow_data(
    data: object,
    *,
    source: str,
    env: Mapping[str, str] | None = None,
    nodes: Mapping[str, NodeFunction] | None = None,
) -> Workflow:
    """Validate an already parsed definition (a mapping). ``env`` (default
    :data:`os.environ`) resolves ``env:NAME`` secrets; ``nodes`` adds custom node types
    (``{"double": double}``, each an async function of a :class:`~hookline.NodeCall`).
    Raises :class:`DefinitionError`; :class:`ValueError` or :class:`TypeError` for a
    bad entry of ``nodes`` (a built-in name, not an async function)."""
    return _load_data(data, source=source, env=env, types=custom_node_types(nodes))


def _load_text(
    text: str, *, source: str, env: Mapping[str, str] | None, types: NodeTypes
) -> Workflow:
    data = (
        _parse_json(text, source) if source.endswith(".json") else parse_yaml(text, source=source)
    )
    return attrs.evolve(_load_data(data, source=source, env=env, types=types), text=text)


def _load_data(
    data: object, *, source: str, env: Mapping[str, str] | None, types: NodeTypes
) -> Workflow:
    if not isinstance(data, Mapping):
        raise DefinitionError(source, "", "a workflow definition (a mapping)", data)
    fields = Fields(data, source=source, env=os.environ if env is None else env)
    key = fields.string("key", pattern=_KEY, expected=f"a workflow key matching {_KEY}")
    title = fields.string("title", "")
    enabled = fields.boolean("enabled", default=True)
    trigger = _trigger(fields.sub("trigger"), key)
    concurrency = _concurrency(fields.sub("concurrency"))
    rate_limit = _rate_rule(fields, "rate_limit")
    throttle = _rate_rule(fields, "throttle")
    priority = fields.template("priority", None)
    debounce = _debounce_rule(fields)
    batch = batch_rule(fields, debounce is not None)
    cancel_on = tuple(_cancel_on(entry) for entry in fields.items("cancel_on"))
    timeout = fields.duration("timeout", 300.0)
    on_failure = fields.string("on_failure", None, pattern=_KEY, expected="a workflow key")
    # Read before the nodes: no node may be written to take longer than the workflow.
    nodes = NodeListParser(types, workflow_timeout=timeout)(fields, "nodes", required=True)
    fields.done()
    return Workflow(
        key=key,
        title=title,
        enabled=enabled,
        trigger=trigger,
        concurrency=concurrency,
        rate_limit=rate_limit,
        throttle=throttle,
        priority=priority,
        debounce=debounce,
        batch=batch,
        cancel_on=cancel_on,
        timeout=timeout,
        on_failure=on_failure,
        nodes=nodes,
        source=source,
    )


def check_conflicts(workflow: Workflow, others: Iterable[Workflow]) -> None:
    """Raise :class:`DefinitionError` (for ``workflow``) if one of ``others`` has its key,
    or serves a method of it on a path that a request could match for both."""
    shape = _shape(workflow.trigger.path)
    for other in others:
        if other.key == workflow.key:
            raise DefinitionError(
                workflow.source, "key", f"a key not used by {other.source}", workflow.key
            )
        common = [m for m in workflow.trigger.methods if m in other.trigger.methods]
        if common and _ambiguous(shape, _shape(other.trigger.path)):
            where = f"{other.key} in {other.source}" if other.source else other.key
            raise DefinitionError(
                workflow.source,
                "trigger.path",
                f"a route not served by another workflow "
                f"({where} serves {other.trigger.path!r} for {', '.join(common)})",
                workflow.trigger.path,
            )


# -- the trigger and its parts -----------------------------------------------------------


def _trigger(fields: Fields, key: str) -> WebhookTrigger:
    fields.choice("type", ("webhook",), "webhook")
    has_response = fields.has("response")
    verify = tuple(_verifier(fields, index, entry) for index, entry in _each(fields, "verify"))
    methods = _methods(fields)
    trigger = WebhookTrigger(
        path=_path(fields, key),
        methods=methods,
        mode="sync" if fields.choice("mode", ("async", "sync"), "async") == "sync" else "async",
        sync_timeout=fields.duration("sync_timeout", 10.0),
        max_body=fields.size("max_body", 1024 * 1024),
        verify=verify,
        verification=compile_verifiers(verify, source=fields.source, path=fields.at("verify")),
        ip_allow=tuple(
            _network(fields, index, entry) for index, entry in _each(fields, "ip_allow")
        ),
        idempotency=_idempotency(fields.sub("idempotency")),
        response=_response(fields.sub("response")) if has_response else None,
        correlate=fields.template("correlate", None),
        cors=parse_cors(fields.sub("cors"), methods) if fields.has("cors") else None,
        expose_credentials=fields.boolean("expose_credentials", default=False),
    )
    fields.done()
    return trigger


def _path(fields: Fields, key: str) -> str:
    path = fields.string("path", key, expected=_PATH_EXPECTED).strip("/")
    names: set[str] = set()
    for segment in path.split("/"):
        param = _PARAM.fullmatch(segment)
        if param is None and _SEGMENT.fullmatch(segment) is None:
            fields.fail("path", _PATH_EXPECTED, fields.value("path", key))
        if param is not None:
            if param[1] in names:
                fields.fail("path", "parameter names used once each", param[1])
            names.add(param[1])
    return path


def _methods(fields: Fields) -> tuple[str, ...]:
    expected = "a list of methods from " + ", ".join(HTTP_METHODS)
    written = fields.strings("methods", ["POST"])
    if not written:
        fields.fail("methods", expected, written)
    for index, method in enumerate(written):
        if method.upper() not in HTTP_METHODS:
            fields.fail(f"methods[{index}]", "one of " + ", ".join(HTTP_METHODS), method)
    return tuple(dict.fromkeys(method.upper() for method in written))


def _each(fields: Fields, name: str) -> Iterable[tuple[int, Any]]:
    return enumerate(fields.sequence(name, []))


def _verifier(fields: Fields, index: int, entry: object) -> Verifier:
    here = f"verify[{index}]"
    if not isinstance(entry, Mapping) or len(entry) != 1:
        fields.fail(here, "a one-key mapping such as {github: {secret: env:NAME}}", entry)
    ((scheme, options),) = entry.items()
    if scheme not in VERIFY_SCHEMES and scheme not in plugin_schemes():
        known = (*VERIFY_SCHEMES, *plugin_schemes())
        fields.fail(f"{here}.{scheme}", "a scheme, one of " + ", ".join(known), scheme)
    options = {} if options is None else options
    if not isinstance(options, Mapping):
        fields.fail(f"{here}.{scheme}", "a mapping of options", options)
    return Verifier(scheme=scheme, options=fields.resolve_env(f"{here}.{scheme}", options))


def _network(fields: Fields, index: int, entry: object) -> IPNetwork:
    expected = "an IP address or network such as '10.0.0.0/8' or '::1'"
    if not isinstance(entry, str):
        fields.fail(f"ip_allow[{index}]", expected, entry)
    try:
        network = ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        fields.fail(f"ip_allow[{index}]", expected, entry)
    mapped = network.network_address
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped and network.prefixlen >= 96:
        # Clients are compared as IPv4 (a dual-stack socket's ::ffff:a.b.c.d included),
        # so an entry written IPv4-mapped is one too.
        return ipaddress.IPv4Network(f"{mapped.ipv4_mapped}/{network.prefixlen - 96}")
    return network


def _idempotency(fields: Fields) -> Idempotency:
    key = fields.string("key", None)
    idempotency = Idempotency(
        key=None if key is None else fields.compile("key", key),
        ttl=fields.duration("ttl", 3 * 86400.0),
    )
    fields.done()
    return idempotency


def _response(fields: Fields) -> ResponseSpec:
    headers = fields.mapping("headers", None)
    for name in headers or ():
        if _HEADER_NAME.fullmatch(name) is None:
            fields.fail(f"headers.{name}", "a header name (letters, digits, '-')", name)
    response = ResponseSpec(
        status=fields.integer("status", 202, low=100, high=599),
        headers=None if headers is None else fields.compile("headers", headers),
        body=fields.template("body", None),
    )
    fields.done()
    return response


def _rate_rule(fields: Fields, name: str) -> RateRule | None:
    """``throttle`` / ``rate_limit``: ``{limit, period, burst, key}``."""
    if fields.value(name, None) is None:  # (reading it makes it a known field)
        return None
    rule = fields.sub(name, required=True)
    rate = Rate(
        limit=rule.integer("limit", low=1),
        period=rule.duration("period"),
        burst=rule.integer("burst", 0, low=0),
    )
    key = rule.template("key", None)
    rule.done()
    return RateRule(rate, key)


def _cancel_on(fields: Fields) -> CancelOn:
    """One ``cancel_on`` entry: ``{event: <workflow key>, match: <template>}``."""
    event = fields.string("event", pattern=_KEY, expected=f"a workflow key matching {_KEY}")
    entry = CancelOn(event, fields.template("match"))
    fields.done()
    return entry


def _debounce_rule(fields: Fields) -> DebounceRule | None:
    """``debounce``: ``{period, max_wait, key}``."""
    if fields.value("debounce", None) is None:  # (reading it makes it a known field)
        return None
    rule = fields.sub("debounce", required=True)
    period = rule.duration("period")
    max_wait = rule.duration("max_wait", None)
    if max_wait is not None and max_wait < period:
        rule.fail("max_wait", "a duration no shorter than period", rule.value("max_wait"))
    debounce = DebounceRule(period, max_wait, rule.template("key", None))
    rule.done()
    return debounce


def _concurrency(fields: Fields) -> Concurrency:
    order_by = fields.string("order_by", None)
    concurrency = Concurrency(
        max=fields.integer("max", 8, low=1),
        order_by=None if order_by is None else fields.compile("order_by", order_by),
        queue=fields.integer("queue", 1000, low=1),
    )
    fields.done()
    return concurrency


# -- routes ------------------------------------------------------------------------------


def _shape(path: str) -> tuple[str | None, ...]:
    """A path's segments, None for a parameter."""
    return tuple(None if _PARAM.fullmatch(s) else s for s in path.split("/"))


def _ambiguous(one: tuple[str | None, ...], other: tuple[str | None, ...]) -> bool:
    if len(one) != len(other):
        return False
    if any(a is not None and b is not None and a != b for a, b in zip(one, other, strict=True)):
        return False  # a literal segment differs: no request matches both
    one_wins = any(a is not None and b is None for a, b in zip(one, other, strict=True))
    other_wins = any(a is None and b is not None for a, b in zip(one, other, strict=True))
    # Exactly one more specific than the other: a router picks it. Same shape, or each
    # more specific somewhere: no order decides.
    return one_wins == other_wins


# -- text --------------------------------------------------------------------------------


def _parse_json(text: str, source: str) -> object:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in items:
            if key in found:
                raise ValueError(f"duplicate key {key!r}")
            found[key] = value
        return found

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            source, "", f"valid JSON; line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except ValueError as exc:
        raise DefinitionError(source, "", f"valid JSON; {exc}") from exc
