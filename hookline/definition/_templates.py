"""``{{$context.data.x}}`` templates: compiled once at load time, rendered per request.

A template string holds text and ``{{ expression }}`` parts. An expression is a root
variable (``$context``, ``$nodes`` or its alias ``$jobsMapByNodeKey``, ``$scopes``,
``$execution``, ``$workflow``, ``$system``, ``$env``) followed by a path:

- ``.name``: a dotted segment of letters, digits, ``_`` and ``-`` (header names such as
  ``x-github-delivery``); an all-digit segment (``.0``) also indexes a list;
- ``[0]``, ``[-1]``: an integer index into a list (or an integer key of an object);
- ``["any key"]`` / ``['any key']``: any key; a backslash makes the next character literal.

An expression may choose between two values by a comparison:
``{{ $context.data.plan == 'enterprise' ? 100 : 0 }}``. The comparison is one of ``==``,
``!=``, ``<``, ``<=``, ``>``, ``>=`` (the ``condition`` node's ``equal``... ``lte``: numbers
and numeric strings compare as numbers); each operand after the variable is a variable
path, a number, a quoted string, ``true``, ``false`` or ``null``.

A string that is exactly one ``{{...}}`` renders to the typed value (number, object,
list, null); a string mixing text and ``{{...}}`` renders to text. A path that leads
nowhere (missing key, index out of range, indexing into a scalar) renders as ``None``:
rendering never raises. Syntax errors raise :class:`hookline.errors.TemplateError` at
compile time.

Compiling turns each expression into a root name and a tuple of precomputed steps, so
rendering is a short loop of dictionary lookups with no parsing.

Some fields escape what is rendered into them (an ``http`` node's ``url`` is
percent-encoded, an ``email`` node's ``html`` is HTML-escaped): they are compiled with
:func:`compile_escaped`, which asks, per expression and at load time, how to escape it
given the text before it. ``{{ $nodes.page.html | safe }}`` marks one expression as
trusted there: its text is inserted as it is. In fields that escape nothing the marker
is a load-time error, since it would promise something it does not do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs

from ..errors import TemplateError

__all__ = ["ROOTS", "Compiled", "Escape", "compile_escaped", "compile_template", "compile_value"]

ROOTS: frozenset[str] = frozenset(
    {"context", "nodes", "scopes", "execution", "workflow", "system", "env"}
)
"""The keys of the ``roots`` mapping passed to :meth:`Compiled.render` (no ``$``)."""

_ROOT_NAMES: dict[str, str] = {name: name for name in ROOTS} | {"jobsMapByNodeKey": "nodes"}
_ROOT_LIST = ", ".join(
    f"${name}" for name in ("context", "nodes", "scopes", "execution", "workflow", "system", "env")
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
# Longest first, so that "<=" is not read as "<".
_COMPARISON = re.compile(r"==|!=|<=|>=|<|>")
_COMPARISONS = {"==": "equal", "!=": "not_equal", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_WORDS: dict[str, object] = {"true": True, "false": False, "null": None}

Escape = Callable[[str], str]
"""Turns an expression's text into what the text around it needs (``html.escape``...)."""

# One step of a path: the key for a mapping, and the index to use if the value is a list
# (None: this step never indexes a list, as for ["0"] or .name).
_Step = tuple[object, int | None]


@attrs.frozen
class Compiled:
    """A compiled template value: call :meth:`render` with the current variables.

    ``source`` is the value as written. ``is_static`` is true when no ``{{...}}`` occurs
    anywhere inside; :meth:`render` then returns ``source`` itself without copying, so
    callers must not mutate what a render returns. Two compiled values are equal when
    their sources are.
    """

    source: object
    is_static: ClassVar[bool] = False

    def render(self, roots: Mapping[str, Any]) -> Any:
        """Return the value with every expression replaced; never raises.

        ``roots`` maps root names without ``$`` (see :data:`ROOTS`) to their values; a
        missing root renders as ``None``.
        """
        raise NotImplementedError


@attrs.frozen
class _Static(Compiled):
    is_static: ClassVar[bool] = True

    def render(self, roots: Mapping[str, Any]) -> Any:
        return self.source


@attrs.frozen
class _Path:
    """A root and the steps below it, e.g. ``("context", (("data", None), (0, 0)))``."""

    root: str
    steps: tuple[_Step, ...]

    def resolve(self, roots: Mapping[str, Any]) -> Any:
        value = roots.get(self.root)
        for key, index in self.steps:
            if type(value) is dict:
                value = value.get(key)
            elif isinstance(value, list | tuple):
                if index is None:
                    return None
                try:
                    value = value[index]
                except IndexError:
                    return None
            elif isinstance(value, Mapping):
                value = value.get(key)
            else:
                return None
        return value


@attrs.frozen
class _Literal:
    """An operand written as a literal (``100``, ``'enterprise'``, ``true``, ``null``)."""

    value: object

    def resolve(self, roots: Mapping[str, Any]) -> Any:
        return self.value


_Operand = _Path | _Literal


@attrs.frozen
class _Choice(_Path):
    """``$path <op> right ? then : otherwise``: a path compared, and one of two values."""

    test: Callable[[Any, Any], bool] = attrs.field(default=None, eq=False, repr=False)
    right: _Operand = attrs.field(default=None, eq=False)
    then: _Operand = attrs.field(default=None, eq=False)
    otherwise: _Operand = attrs.field(default=None, eq=False)

    def resolve(self, roots: Mapping[str, Any]) -> Any:
        left = _Path.resolve(self, roots)
        chosen = self.then if self.test(left, self.right.resolve(roots)) else self.otherwise
        return chosen.resolve(roots)


@attrs.frozen
class _SafeChoice(_Choice):
    """A choice marked ``| safe``."""


@attrs.frozen
class _SafePath(_Path):
    """A path marked ``| safe``: inserted as it is where values are escaped."""


@attrs.frozen
class _Single(Compiled):
    path: _Path = attrs.field(eq=False, repr=False)

    def render(self, roots: Mapping[str, Any]) -> Any:
        return self.path.resolve(roots)


@attrs.frozen
class _Interpolated(Compiled):
    """Text: ``head``, then for each expression its value as text and the literal after it."""

    head: str = attrs.field(eq=False, repr=False)
    tail: tuple[tuple[_Path, str], ...] = attrs.field(eq=False, repr=False)

    def render(self, roots: Mapping[str, Any]) -> Any:
        pieces = [self.head]
        for path, literal in self.tail:
            value = path.resolve(roots)
            pieces.append(value if type(value) is str else _text(value))
            pieces.append(literal)
        return "".join(pieces)


@attrs.frozen
class _Escaped(Compiled):
    """Text like :class:`_Interpolated`, each expression's text passed through its escape
    (None: inserted as it is)."""

    head: str = attrs.field(eq=False, repr=False)
    tail: tuple[tuple[_Path, Escape | None, str], ...] = attrs.field(eq=False, repr=False)

    def render(self, roots: Mapping[str, Any]) -> Any:
        pieces = [self.head]
        for path, escape, literal in self.tail:
            value = path.resolve(roots)
            text = value if type(value) is str else _text(value)
            pieces.append(text if escape is None else escape(text))
            pieces.append(literal)
        return "".join(pieces)


@attrs.frozen
class _Mapping(Compiled):
    items: tuple[tuple[object, Compiled], ...] = attrs.field(eq=False, repr=False)

    def render(self, roots: Mapping[str, Any]) -> Any:
        return {key: value.render(roots) for key, value in self.items}


@attrs.frozen
class _Sequence(Compiled):
    items: tuple[Compiled, ...] = attrs.field(eq=False, repr=False)

    def render(self, roots: Mapping[str, Any]) -> Any:
        return [item.render(roots) for item in self.items]


def compile_value(value: object) -> Compiled:
    """Compile every template string inside ``value``, recursively.

    Strings are templates; mappings and lists/tuples are walked (mapping keys are not
    templates, and a tuple renders as a list); anything else is static. A value with no
    template anywhere compiles to one static value that renders as itself.

    Raises :class:`hookline.errors.TemplateError` for a template that does not parse; for
    a nested one the message starts with its place, such as ``text[0]: ...``.
    """
    return _compile(value, "")


def compile_template(text: str) -> Compiled:
    """Compile one template string.

    Raises :class:`hookline.errors.TemplateError` for an unterminated ``{{``, an empty
    expression, an unknown root variable or a bad path. A lone ``}}`` or ``{`` is text, and
    so are extra braces around an expression: ``{{{$context.n}}}`` renders as ``{5}``.
    """
    parts = _parse(text)
    if any(isinstance(part, _SafePath | _SafeChoice) for part in parts):
        raise TemplateError(
            f"'| safe' in {_quote(text)}: this field inserts values as they are, so there is "
            "nothing to mark; '| safe' belongs in fields that escape values (an http node's "
            "url, an email node's html)"
        )
    if not any(isinstance(part, _Path) for part in parts):
        return _Static(text)
    if len(parts) == 1 and isinstance(parts[0], _Path):
        return _Single(text, parts[0])
    first = parts[0]
    head, rest = (first, parts[1:]) if isinstance(first, str) else ("", parts)
    tail: list[tuple[_Path, str]] = []
    for part in rest:
        if isinstance(part, _Path):
            tail.append((part, ""))
        else:  # the literal after the last expression; _parse never yields two in a row
            tail[-1] = (tail[-1][0], part)
    return _Interpolated(text, head, tuple(tail))


def compile_escaped(
    text: str, escape_for: Callable[[tuple[str | None, ...]], Escape | None]
) -> Compiled:
    """Compile one template string whose expressions are escaped where they stand.

    ``escape_for`` is called once per expression, here at compile time, with the parts
    of ``text`` before it (literal text as strings, earlier expressions as ``None``); it
    returns the :data:`Escape` for that expression's text, or ``None`` to insert it as it
    is. An expression marked ``| safe`` is never escaped. A string that is exactly one
    expression renders to its typed value when ``escape_for(())`` is ``None`` (a whole
    URL), to escaped text otherwise.

    Raises :class:`hookline.errors.TemplateError` as :func:`compile_template` does.
    """
    parts = _parse(text)
    if not any(isinstance(part, _Path) for part in parts):
        return _Static(text)
    head = parts[0] if isinstance(parts[0], str) else ""
    tail: list[tuple[_Path, Escape | None, str]] = []
    for index, part in enumerate(parts):
        if isinstance(part, _Path):
            escape = (
                None
                if isinstance(part, _SafePath | _SafeChoice)
                else escape_for(
                    tuple(item if isinstance(item, str) else None for item in parts[:index])
                )
            )
            tail.append((part, escape, ""))
        elif tail:  # the literal after an expression; _parse never yields two in a row
            tail[-1] = (tail[-1][0], tail[-1][1], part)
    if len(parts) == 1 and tail[0][1] is None:
        return _Single(text, tail[0][0])
    return _Escaped(text, head, tuple(tail))


def _compile(value: object, where: str) -> Compiled:
    if isinstance(value, str):
        try:
            return compile_template(value)
        except TemplateError as exc:
            if not where:
                raise
            raise TemplateError(f"{where}: {exc}") from None
    if isinstance(value, Mapping):
        items = tuple(
            (key, _compile(item, f"{where}.{key}" if where else str(key)))
            for key, item in value.items()
        )
        if all(item.is_static for _, item in items):
            return _Static(value)
        return _Mapping(value, items)
    if isinstance(value, list | tuple):
        elements = tuple(_compile(item, f"{where}[{i}]") for i, item in enumerate(value))
        if all(item.is_static for item in elements):
            return _Static(value)
        return _Sequence(value, elements)
    return _Static(value)


def _text(value: object) -> str:
    """How a value reads inside text: JSON-like, never raising."""
    if value is None:
        return ""
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping | list | tuple):
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # non-string keys such as tuples; cycles
            return str(value)
    return str(value)


def _parse(text: str) -> list[str | _Path]:
    parts: list[str | _Path] = []
    pos = 0
    while (start := text.find("{{", pos)) >= 0:
        # In "{{{$x}}}" the expression is the innermost "{{": the extra brace is text.
        while text.startswith("{", start + 2):
            start += 1
        if start > pos:
            parts.append(text[pos:start])
        path, pos = _Parser(text, start).parse()
        parts.append(path)
    if pos < len(text):
        parts.append(text[pos:])
    return parts


class _Parser:
    """Reads one ``{{ expression }}`` starting at ``start`` (the first ``{``)."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.start = start
        self.pos = start + 2

    def parse(self) -> tuple[_Path, int]:
        if self.text.find("}}", self.pos) < 0:
            raise TemplateError(
                f"unterminated '{{{{' at column {self.start + 1} in {_quote(self.text)}: "
                "missing '}}'"
            )
        self._skip_space()
        if self.text.startswith("}}", self.pos):
            raise self._error("empty expression; write a variable such as {{$context.data}}")
        root, steps = self._path()
        self._skip_space()
        choice = self._choice()
        safe = self.text.startswith("|", self.pos)
        if safe:
            self.pos += 1
            self._skip_space()
            if self._match(_IDENTIFIER) != "safe":
                raise self._error("expected 'safe' after '|' (the only marker)")
            self._skip_space()
        if not self.text.startswith("}}", self.pos):
            raise self._error("expected '.name', '[index]', a comparison or '}}'")
        if choice is not None:
            test, right, then, otherwise = choice
            kind = _SafeChoice if safe else _Choice
            return kind(root, steps, test, right, then, otherwise), self.pos + 2
        return (_SafePath if safe else _Path)(root, steps), self.pos + 2

    def _choice(self) -> tuple[Callable[[Any, Any], bool], _Operand, _Operand, _Operand] | None:
        """``<op> right ? then : otherwise`` after a path, if there is one."""
        symbol = self._match(_COMPARISON)
        if symbol is None:
            return None
        # Imported here: the comparison module compiles templates itself.
        from ._compare import OPERATORS

        test = OPERATORS[_COMPARISONS[symbol]]
        right = self._operand()
        self._expect("?")
        then = self._operand()
        self._expect(":")
        return test, right, then, self._operand()

    def _expect(self, token: str) -> None:
        self._skip_space()
        if not self.text.startswith(token, self.pos):
            raise self._error(f"expected '{token}' in 'left <op> right ? then : else'")
        self.pos += len(token)

    def _operand(self) -> _Operand:
        self._skip_space()
        char = self.text[self.pos : self.pos + 1]
        if char == "$":
            root, steps = self._path()
            operand: _Operand = _Path(root, steps)
        elif char in ("'", '"'):
            operand = _Literal(self._quoted(char))
        elif (number := self._match(_NUMBER)) is not None:
            operand = _Literal(float(number) if any(c in number for c in ".eE") else int(number))
        elif (word := self._match(_IDENTIFIER)) in _WORDS:
            operand = _Literal(_WORDS[word])
        else:
            raise self._error("expected a variable, a number, a quoted string, true, false or null")
        self._skip_space()
        return operand

    def _path(self) -> tuple[str, tuple[_Step, ...]]:
        if not self.text.startswith("$", self.pos):
            raise self._error("expected a variable starting with '$', such as $context.data")
        self.pos += 1
        name = self._match(_IDENTIFIER)
        if name is None:
            raise self._error(f"expected a variable name after '$', one of {_ROOT_LIST}")
        root = _ROOT_NAMES.get(name)
        if root is None:
            raise TemplateError(
                f"unknown variable '${name}' in {_quote(self._snippet())}; "
                f"expected one of {_ROOT_LIST}"
            )
        steps: list[_Step] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == ".":
                self.pos += 1
                segment = self._match(_SEGMENT)
                if segment is None:
                    raise self._error("expected a name after '.'")
                steps.append((segment, int(segment) if segment.isdigit() else None))
            elif char == "[":
                self.pos += 1
                steps.append(self._bracket())
            else:
                break
        return root, tuple(steps)

    def _bracket(self) -> _Step:
        self._skip_space()
        quote = self.text[self.pos : self.pos + 1]
        if quote in ("'", '"'):
            key: object = self._quoted(quote)
            index = None
        else:
            number = self._match(_INTEGER)
            if number is None:
                raise self._error("expected an integer or a quoted key inside '[...]'")
            key = index = int(number)
        self._skip_space()
        if not self.text.startswith("]", self.pos):
            raise self._error("expected ']'")
        self.pos += 1
        return key, index

    def _quoted(self, quote: str) -> str:
        chars: list[str] = []
        pos = self.pos + 1
        while pos < len(self.text):
            char = self.text[pos]
            if char == "\\" and pos + 1 < len(self.text):
                chars.append(self.text[pos + 1])
                pos += 2
            elif char == quote:
                self.pos = pos + 1
                return "".join(chars)
            else:
                chars.append(char)
                pos += 1
        raise self._error(f"unterminated quoted key; expected a closing {quote}")

    def _match(self, pattern: re.Pattern[str]) -> str | None:
        match = pattern.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group()

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _snippet(self) -> str:
        end = self.text.find("}}", self.pos)
        return self.text[self.start : end + 2] if end >= 0 else self.text[self.start :]

    def _error(self, problem: str) -> TemplateError:
        return TemplateError(
            f"bad template {_quote(self._snippet())} at column {self.pos + 1}: {problem}"
        )


def _quote(text: str, limit: int = 120) -> str:
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"'{text}'"
