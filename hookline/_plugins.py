"""Plugins: node types and ``verify`` schemes from other installed packages.

A package adds them through two entry point groups (see ``docs/plugins.md``):

- ``hookline.nodes``: the entry point's name is the node type, its object an async
  function of a :class:`~hookline.NodeCall` (the custom node API);
- ``hookline.verifiers``: the name is the scheme, the object a function taking the
  entry's options (a dict) and returning the check, a function of the
  :class:`~hookline.verify.SignedRequest` and the time (Unix seconds) that raises
  :class:`~hookline.errors.Unauthenticated` or :class:`~hookline.errors.Forbidden`
  to refuse. It may raise ``ValueError`` for bad options: the workflow then does not
  load, with that message at the entry's field path.

:func:`load_plugins` loads every entry point it finds and never raises: one that does
not import, is not what its group needs, or takes a built-in name is reported by name
in :attr:`Plugins.broken`, and the others load.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import attrs

from .definition import Fields
from .errors import Forbidden, Rejected
from .nodes._call import NodeFunction, custom_node_types
from .verify import SignedRequest
from .verify._plugin_schemes import plugin_schemes, register_scheme
from .verify._signed import Check
from .verify._verify import SCHEMES

__all__ = [
    "NODE_GROUP",
    "VERIFIER_GROUP",
    "BrokenPlugin",
    "Plugin",
    "Plugins",
    "load_plugins",
]

NODE_GROUP = "hookline.nodes"
VERIFIER_GROUP = "hookline.verifiers"
_SCHEME_NAME = re.compile(r"[a-z][a-z0-9_]*")

log = logging.getLogger("hookline")

CheckFunction = Callable[[SignedRequest, float], Mapping[str, Any] | None]
VerifierFactory = Callable[[dict[str, Any]], CheckFunction]


@attrs.frozen
class Plugin:
    """One loaded entry point: its group, name, object path and package."""

    group: str
    name: str
    value: str
    package: str


@attrs.frozen
class BrokenPlugin:
    """An entry point that did not load, and why."""

    group: str
    name: str
    value: str
    package: str
    error: str

    def describe(self) -> str:
        """``hookline.nodes 'name' (module:object, from package 1.0): the error``."""
        return f"{self.group} '{self.name}' ({self.value}, from {self.package}): {self.error}"


@attrs.frozen
class Plugins:
    """What :func:`load_plugins` found."""

    nodes: Mapping[str, NodeFunction] = attrs.field(factory=dict)
    verifiers: Mapping[str, VerifierFactory] = attrs.field(factory=dict)
    loaded: tuple[Plugin, ...] = ()
    broken: tuple[BrokenPlugin, ...] = ()

    def register_verifiers(self) -> None:
        """Make this process's workflows able to use the verifier plugins' schemes."""
        for name, factory in self.verifiers.items():
            register_scheme(name, scheme_compiler(name, factory))


def load_plugins(found: Iterable[EntryPoint] | None = None) -> Plugins:
    """Load the entry points of both groups (``found``: these instead of the installed
    ones). Never raises: a broken one is reported in :attr:`Plugins.broken`."""
    if found is None:
        found = [*entry_points(group=NODE_GROUP), *entry_points(group=VERIFIER_GROUP)]
    nodes: dict[str, NodeFunction] = {}
    verifiers: dict[str, VerifierFactory] = {}
    loaded: list[Plugin] = []
    broken: list[BrokenPlugin] = []
    for point in sorted(found, key=lambda p: (p.group, p.name)):
        package = _package(point)
        try:
            target = point.load()
            if point.group == NODE_GROUP:
                if point.name in nodes:
                    raise ValueError(f"node type '{point.name}' is already added by a plugin")
                custom_node_types({point.name: target})  # raises for a bad one
                nodes[point.name] = target
            elif point.group == VERIFIER_GROUP:
                _check_verifier(point.name, target, verifiers)
                verifiers[point.name] = target
            else:
                raise ValueError(f"not a hookline entry point group: {point.group}")
        except Exception as exc:  # noqa: BLE001 (a plugin's import may raise anything)
            error = f"{type(exc).__name__}: {exc}"
            broken.append(BrokenPlugin(point.group, point.name, point.value, package, error))
        else:
            loaded.append(Plugin(point.group, point.name, point.value, package))
    return Plugins(nodes=nodes, verifiers=verifiers, loaded=tuple(loaded), broken=tuple(broken))


def _package(point: EntryPoint) -> str:
    dist = point.dist
    return "?" if dist is None else f"{dist.name} {dist.version}"


def _check_verifier(name: str, target: object, taken: Mapping[str, object]) -> None:
    if _SCHEME_NAME.fullmatch(name) is None:
        raise ValueError(f"a scheme name is lower-case letters, digits and '_', got {name!r}")
    if name in SCHEMES:
        raise ValueError(f"'{name}' is a built-in verify scheme")
    if name in taken or name in plugin_schemes():
        raise ValueError(f"verify scheme '{name}' is already added by a plugin")
    if not callable(target):
        raise TypeError(f"expected a function of the options, got {target!r}")


@attrs.frozen
class _PluginCheck:
    scheme: str
    function: CheckFunction
    secret_headers: frozenset[str]

    def check(self, request: SignedRequest, now: float) -> Mapping[str, Any] | None:
        try:
            return self.function(request, now)
        except Rejected:
            raise
        except Exception:  # a check's contract: a refusal, never a crash
            log.exception("verify scheme '%s' raised", self.scheme)
            raise Forbidden("the request could not be verified") from None


def scheme_compiler(name: str, factory: VerifierFactory) -> Callable[[Fields], Check]:
    """The compile function of a verifier plugin's scheme: calls ``factory`` with the
    entry's options at load time; its ValueError or TypeError names the entry."""

    def compile_check(fields: Fields) -> Check:
        options = {field: fields.value(field) for field in fields.names()}
        try:
            function = factory(dict(options))
        except (ValueError, TypeError, KeyError) as exc:
            # Not the options themselves in the message: they hold secrets.
            fields.fail("", f"options that {name} accepts ({exc})")
        if not callable(function):
            fields.fail("", f"options that {name} accepts (it gave no check)")
        headers = getattr(function, "secret_headers", ())
        return _PluginCheck(name, function, frozenset(str(h).lower() for h in headers))

    return compile_check
