"""``verify`` schemes added at run time by plugins (``hookline.verifiers`` entry points).

The built-in schemes are fixed (:data:`~hookline.verify._verify.SCHEMES`); a serving
process adds its plugins' schemes here once, at start-up, before it loads workflows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..definition import Fields
from ._signed import Check

__all__ = ["plugin_schemes", "register_scheme", "unregister_scheme"]

_SCHEMES: dict[str, Callable[[Fields], Check]] = {}


def register_scheme(name: str, compile_check: Callable[[Fields], Check]) -> None:
    """Make ``verify: [{name: {...}}]`` compile its options with ``compile_check``."""
    _SCHEMES[name] = compile_check


def unregister_scheme(name: str) -> None:
    """Forget a scheme added with :func:`register_scheme` (tests do)."""
    _SCHEMES.pop(name, None)


def plugin_schemes() -> Mapping[str, Callable[[Fields], Check]]:
    """The schemes plugins added, by name."""
    return _SCHEMES
