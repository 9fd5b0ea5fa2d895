"""The regular expressions of ``matches``: RE2, in time linear in the text.

Python's ``re`` backtracks: ``^([a-zA-Z0-9]+)+@example\\.com$`` against 25 ``a`` and a
``!`` takes seconds, and it runs on the event loop. RE2 (the ``google-re2`` package)
never backtracks: a search costs time proportional to the text's length times a factor
fixed by the pattern, and compiling a pattern is capped in memory (``max_mem``). What
RE2 gives up for that is what needs backtracking: backreferences (``\\1``) and
lookaround (``(?=...)``, ``(?<!...)``); a pattern using them is refused when it is
compiled, so a workflow that uses one fails to load with a
:class:`~hookline.errors.DefinitionError` naming the field.

Other differences from ``re`` a pattern writer may notice: ``\\d``, ``\\w`` and ``\\s``
are ASCII only; ``$`` matches only at the very end (not before a final newline) unless
``(?m)``; ``\\Z`` is spelled ``\\z``.

A text longer than :data:`MAX_TEXT` characters is not searched: it never matches.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

__all__ = ["MAX_TEXT", "Regex", "compile_regex"]

MAX_TEXT = 64 * 1024
"""The longest text ``matches`` searches, in characters (RE2 takes well under a
millisecond for it); a longer one never matches."""

# Compiled programs above this are refused (RE2's default: 8 MiB).
_MAX_MEM = 8 << 20


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print each refused pattern to stderr
    options.max_mem = _MAX_MEM
    return options


_OPTIONS = _options()


class Regex:
    """A compiled RE2 pattern. :meth:`search` never backtracks; pickles as its source."""

    __slots__ = ("_compiled", "source")

    def __init__(self, source: str, compiled: Any) -> None:
        self.source = source
        self._compiled = compiled

    def search(self, text: str) -> bool:
        """Whether the pattern occurs anywhere in ``text`` (False past
        :data:`MAX_TEXT` characters)."""
        if len(text) > MAX_TEXT:
            return False
        return self._compiled.search(text) is not None

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return compile_regex, (self.source,)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regex) and other.source == self.source

    def __hash__(self) -> int:
        return hash((Regex, self.source))

    def __repr__(self) -> str:
        return f"Regex({self.source!r})"


@functools.lru_cache(maxsize=256)
def compile_regex(source: str) -> Regex:
    """``source`` compiled by RE2.

    Raises ValueError with RE2's reason (such as ``invalid perl operator: (?=``) for a
    pattern RE2 does not accept: bad syntax, backreferences, lookaround, or a program
    larger than its memory cap.
    """
    try:
        return Regex(source, re2.compile(source, _OPTIONS))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "does not compile"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None
    except TypeError as exc:  # pragma: no cover - a str always reaches here
        raise ValueError(str(exc)) from None
