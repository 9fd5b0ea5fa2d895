"""Map a webhook path and method to the workflow that listens there, without I/O.

Templates are paths under ``/api/webhooks/`` without a leading slash, such as
``github/{repo}`` or ``devices/{id}/readings``. ``{name}`` matches one non-empty
path segment (never a ``/``) and may share a segment with literal text
(``{id}.json``). Paths are compared in a canonical percent-encoded form, so
``caf%C3%A9`` and a template written ``café`` match, and an encoded ``%2F`` stays
inside one segment; parameter values are percent-decoded.

Literal templates are found with one dict lookup; parametrised ones are bucketed by
segment count and first segment, and tried most specific first (a literal segment
beats a segment with a parameter, which beats a segment that is only a parameter).
"""

from __future__ import annotations

import re
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable
from typing import Generic, TypeVar

from ..errors import MethodNotAllowed, WorkflowNotFound

__all__ = ["Router", "compile_path", "paths_collide"]

T = TypeVar("T")

_PARAM = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# RFC 3986 pchar minus the unreserved set (which quote never encodes) and "%".
_SEGMENT_SAFE = "!$&'()*+,;=:@"
_ANY = "\0?"  # glob token: one character other than "/"
_STAR = "\0*"  # glob token: zero or more characters other than "/"


def _canonical(segment: str) -> str:
    return urllib.parse.quote(urllib.parse.unquote(segment), safe=_SEGMENT_SAFE)


def _canonical_path(path: str) -> str:
    if "%" not in path:
        # The common case: quote() is the identity on an already safe string.
        return urllib.parse.quote(path, safe="/" + _SEGMENT_SAFE)
    return "/".join(_canonical(segment) for segment in path.split("/"))


def _parse(template: str) -> list[list[str | None]]:
    """Split a template into segments of literal chunks (canonical) and params (None)."""
    if not template:
        raise ValueError("a path template must not be empty")
    if template.startswith("/"):
        raise ValueError(f"path template {template!r} must not start with '/'")
    names: set[str] = set()
    segments: list[list[str | None]] = []
    for segment in template.split("/"):
        if not segment:
            raise ValueError(f"path template {template!r} has an empty segment")
        parts: list[str | None] = []
        position = 0
        for match in _PARAM.finditer(segment):
            parts.append(_literal(template, segment[position : match.start()]))
            name = match.group(1)
            if not _NAME.match(name):
                raise ValueError(f"path template {template!r}: bad parameter name {name!r}")
            if name in names:
                raise ValueError(f"path template {template!r} repeats parameter {name!r}")
            if parts[-1] == "" and len(parts) > 1 and parts[-2] is None:
                raise ValueError(f"path template {template!r}: parameters must not touch")
            names.add(name)
            parts.append(None)
            position = match.end()
        parts.append(_literal(template, segment[position:]))
        segments.append([part for part in parts if part != ""])
    return segments


def _literal(template: str, text: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError(f"path template {template!r} has an unmatched brace")
    return _canonical(text)


def _names(template: str) -> list[str]:
    return _PARAM.findall(template)


def compile_path(template: str) -> re.Pattern[str]:
    """Compile a template to a regex over canonical paths, one group per parameter.

    Raises :class:`ValueError` for an empty template, a leading ``/``, an empty
    segment, an unmatched brace, a parameter name that is not an identifier, a
    repeated name, or two parameters with nothing between them.
    """
    names = iter(_names(template))
    pattern = [
        "".join(
            re.escape(part) if part is not None else f"(?P<{next(names)}>[^/]+)" for part in segment
        )
        for segment in _parse(template)
    ]
    return re.compile("/".join(pattern) + r"\Z")


def _specificity(segments: list[list[str | None]]) -> tuple[int, ...]:
    return tuple(0 if None not in seg else (1 if len(seg) > 1 else 2) for seg in segments)


def _tokens(template: str) -> list[str]:
    tokens: list[str] = []
    for index, segment in enumerate(_parse(template)):
        if index:
            tokens.append("/")
        for part in segment:
            tokens.extend([_ANY, _STAR] if part is None else list(part))
    return tokens


def paths_collide(a: str, b: str) -> bool:
    """Whether some path would match both templates (raises ValueError if either is bad).

    ``github/{repo}`` and ``github/{name}`` collide, as do ``a/{x}`` and ``{y}/b``
    (both match ``a/b``); ``github/{repo}`` and ``gitlab/{repo}`` do not.
    """
    p, q = _tokens(a), _tokens(b)

    def compatible(x: str, y: str) -> bool:
        if x == _ANY:
            return y != "/"
        if y == _ANY:
            return x != "/"
        return x == y

    # meets[i][j]: some string matches both p[i:] and q[j:]. Filled from the ends.
    meets = [[False] * (len(q) + 1) for _ in range(len(p) + 1)]
    meets[len(p)][len(q)] = True
    for i in range(len(p), -1, -1):
        for j in range(len(q), -1, -1):
            if i == len(p) and j == len(q):
                continue
            x = p[i] if i < len(p) else None
            y = q[j] if j < len(q) else None
            if x == _STAR:
                # The star matches nothing more, or swallows q's next character.
                meets[i][j] = meets[i + 1][j] or (y is not None and y != "/" and meets[i][j + 1])
            elif y == _STAR:
                meets[i][j] = meets[i][j + 1] or (x is not None and x != "/" and meets[i + 1][j])
            else:
                meets[i][j] = (
                    x is not None and y is not None and compatible(x, y) and meets[i + 1][j + 1]
                )
    return meets[0][0]


class _Route(Generic[T]):
    __slots__ = ("methods", "pattern", "target")

    def __init__(
        self, pattern: re.Pattern[str] | None, methods: tuple[str, ...], target: T
    ) -> None:
        self.pattern = pattern
        self.methods = methods
        self.target = target


class Router(Generic[T]):
    """Find the target of a path and method among ``(template, methods, target)`` routes.

    Built once per set of workflows (rebuild it when they change). Raises
    :class:`ValueError` at construction for a bad template. Methods are compared
    upper-cased and only as listed: ``HEAD`` is not implied by ``GET``.
    """

    def __init__(self, routes: Iterable[tuple[str, tuple[str, ...], T]]) -> None:
        self._literal: dict[str, list[_Route[T]]] = defaultdict(list)
        ranked: list[tuple[tuple[int, ...], int, str, int, _Route[T]]] = []
        for order, (template, methods, target) in enumerate(routes):
            segments = _parse(template)
            upper = tuple(method.upper() for method in methods)
            if all(None not in segment for segment in segments):
                path = "/".join(str(segment[0]) for segment in segments)
                self._literal[path].append(_Route(None, upper, target))
                continue
            first = segments[0]
            key = first[0] if len(first) == 1 and first[0] is not None else ""
            route = _Route(compile_path(template), upper, target)
            ranked.append((_specificity(segments), order, key, len(segments), route))
        # Bucket by (segment count, literal first segment); "" holds templates whose
        # first segment has a parameter. Within a bucket, most specific first.
        self._patterns: dict[tuple[int, str], list[_Route[T]]] = defaultdict(list)
        for _, _, key, count, route in sorted(ranked, key=lambda item: (item[0], item[1])):
            self._patterns[count, key].append(route)

    def _candidates(self, path: str) -> Iterable[tuple[_Route[T], dict[str, str]]]:
        for route in self._literal.get(path, ()):
            yield route, {}
        count = path.count("/") + 1
        first = path.partition("/")[0]
        for key in (first, ""):
            for route in self._patterns.get((count, key), ()):
                assert route.pattern is not None
                match = route.pattern.match(path)
                if match is not None:
                    params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                    yield route, params

    def match(self, path: str, method: str) -> tuple[T, dict[str, str]]:
        """The target and path parameters for ``path`` (no leading ``/``) and ``method``.

        ``path`` is best given raw (still percent-encoded, as in ASGI's ``raw_path``).
        Raises :class:`~hookline.errors.WorkflowNotFound` when no template matches
        the path, and :class:`~hookline.errors.MethodNotAllowed` (with ``allow``,
        sorted) when some do but none lists ``method``.
        """
        method = method.upper()
        allowed: set[str] = set()
        for route, params in self._candidates(_canonical_path(path)):
            if method in route.methods:
                return route.target, params
            allowed.update(route.methods)
        if allowed:
            raise MethodNotAllowed(
                f"This webhook does not accept {method}.", allow=tuple(sorted(allowed))
            )
        raise WorkflowNotFound("No workflow listens on this path.")
