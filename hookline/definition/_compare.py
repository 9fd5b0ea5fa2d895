"""Comparison trees, as written under ``if:``: compiled at load time, evaluated per job.

A tree is a one-key mapping: an operator with its list of operands
(``{gt: ["{{$context.data.n}}", 5]}``, ``{exists: ["{{$context.data.email}}"]}``), or a
combination (``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}``). Operands are
templates (see :mod:`hookline.definition._templates`).

The operators are forgiving about types the way webhook payloads need: form fields and
query parameters arrive as strings, so ``"5"`` equals ``5`` and ``"10"`` is greater than
``9``; a comparison between values that cannot be compared (a number and a word, ``None``)
is false rather than an error. Evaluating never raises for any JSON-like input.
"""

from __future__ import annotations

import datetime
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..errors import DefinitionError, TemplateError
from ._regex import Regex, compile_regex
from ._templates import Compiled, compile_value

__all__ = ["OPERATORS", "UNARY_FUNCTIONS", "UNARY_OPERATORS", "Condition", "compile_condition"]

_NUMERIC = re.compile(r"\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*")
_TEMPORAL = (datetime.datetime, datetime.date, datetime.time)


def _number(value: object) -> int | float | None:
    """The value as a number if it is one or a numeric string; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        try:
            return int(value)
        except ValueError:  # "1.5", "1e3", or more digits than int() accepts
            return float(value)
    return None


def _order(left: object, right: object) -> int | None:
    """-1, 0 or 1 as ``left`` sorts before, with or after ``right``; None if incomparable."""
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return _sign(a, b)
    if isinstance(left, str) and isinstance(right, str):
        return _sign(left, right)
    if isinstance(left, _TEMPORAL) and type(left) is type(right):
        try:
            return _sign(left, right)
        except TypeError:  # a naive and an aware datetime
            return None
    return None


def _sign(a: Any, b: Any) -> int | None:
    # Three tests rather than subtraction, so that NaN (neither <, > nor ==) is incomparable.
    if a > b:
        return 1
    if a < b:
        return -1
    if a == b:
        return 0
    return None


def equal(left: Any, right: Any) -> bool:
    """Equal by value; a number equals a numeric string of the same number.

    Booleans equal only booleans (``true`` is not ``1``), ``None`` equals only ``None``.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if (isinstance(left, str) and isinstance(right, int | float)) or (
        isinstance(right, str) and isinstance(left, int | float)
    ):
        a, b = _number(left), _number(right)
        return a is not None and b is not None and a == b
    return bool(left == right)


def not_equal(left: Any, right: Any) -> bool:
    """The negation of :func:`equal`."""
    return not equal(left, right)


def gt(left: Any, right: Any) -> bool:
    """``left > right`` for numbers (numeric strings coerced), strings, dates; else False."""
    order = _order(left, right)
    return order is not None and order > 0


def gte(left: Any, right: Any) -> bool:
    """``left >= right``, as :func:`gt`."""
    order = _order(left, right)
    return order is not None and order >= 0


def lt(left: Any, right: Any) -> bool:
    """``left < right``, as :func:`gt`."""
    order = _order(left, right)
    return order is not None and order < 0


def lte(left: Any, right: Any) -> bool:
    """``left <= right``, as :func:`gt`."""
    order = _order(left, right)
    return order is not None and order <= 0


def includes(container: Any, item: Any) -> bool:
    """A list holds an item (by :func:`equal`), a string a substring, an object a key."""
    if isinstance(container, str):
        if isinstance(item, str):
            return item in container
        if isinstance(item, int | float) and not isinstance(item, bool):
            return str(item) in container
        return False
    if isinstance(container, Mapping):
        try:
            return item in container
        except TypeError:  # an unhashable item is no key
            return False
    if isinstance(container, list | tuple | set | frozenset):
        return any(equal(element, item) for element in container)
    return False


def not_includes(container: Any, item: Any) -> bool:
    """The negation of :func:`includes` (so true when ``container`` is ``None``)."""
    return not includes(container, item)


def in_(item: Any, container: Any) -> bool:
    """:func:`includes` with the operands swapped: ``{in: [value, [a, b, c]]}``."""
    return includes(container, item)


def starts_with(text: Any, prefix: Any) -> bool:
    """Both strings and ``text`` starts with ``prefix``; False otherwise."""
    return isinstance(text, str) and isinstance(prefix, str) and text.startswith(prefix)


def ends_with(text: Any, suffix: Any) -> bool:
    """Both strings and ``text`` ends with ``suffix``; False otherwise."""
    return isinstance(text, str) and isinstance(suffix, str) and text.endswith(suffix)


def matches(text: Any, pattern: Any) -> bool:
    """The RE2 ``pattern`` occurs in ``text``; numbers are matched as their text.

    ``pattern`` is a :class:`~hookline.definition._regex.Regex`, a string, or a
    compiled ``re`` pattern (its source is compiled by RE2): the search is linear in
    the text, never backtracking (see :mod:`hookline.definition._regex`). A pattern RE2
    does not accept, a ``text`` that is not a string or number, or one longer than
    :data:`~hookline.definition._regex.MAX_TEXT` characters gives False.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        return False
    if isinstance(pattern, re.Pattern):
        pattern = pattern.pattern
    if isinstance(pattern, str):
        try:
            pattern = compile_regex(pattern)
        except ValueError:  # a pattern RE2 refuses
            return False
    return isinstance(pattern, Regex) and pattern.search(text)


def exists(value: Any) -> bool:
    """The value is not ``None`` (a missing path renders as ``None``)."""
    return value is not None


def empty(value: Any) -> bool:
    """The value is ``None``, ``""``, ``[]`` or ``{}``. ``0`` and ``false`` are not empty."""
    if value is None:
        return True
    if isinstance(value, str | bytes | list | tuple | Mapping):
        return len(value) == 0
    return False


OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = types.MappingProxyType(
    {
        "equal": equal,
        "not_equal": not_equal,
        "gt": gt,
        "gte": gte,
        "lt": lt,
        "lte": lte,
        "includes": includes,
        "not_includes": not_includes,
        "starts_with": starts_with,
        "ends_with": ends_with,
        "matches": matches,
        "in": in_,
    }
)
"""The binary operators by name; the first argument is the left operand."""

UNARY_FUNCTIONS: Mapping[str, Callable[[Any], bool]] = types.MappingProxyType(
    {"exists": exists, "empty": empty}
)
"""The one-operand operators by name."""

UNARY_OPERATORS: frozenset[str] = frozenset(UNARY_FUNCTIONS)

_COMBINATORS = ("all", "any", "not")
_ALL_NAMES = ", ".join((*_COMBINATORS, *OPERATORS, *UNARY_FUNCTIONS))


class Condition:
    """A compiled comparison tree. :meth:`evaluate` it against the template roots."""

    __slots__ = ()

    def evaluate(self, roots: Mapping[str, Any]) -> bool:
        """True when the comparison holds for these variables; never raises."""
        raise NotImplementedError


@attrs.frozen
class _Binary(Condition):
    name: str
    function: Callable[[Any, Any], bool] = attrs.field(repr=False)
    left: Compiled
    right: Compiled

    def evaluate(self, roots: Mapping[str, Any]) -> bool:
        return self.function(self.left.render(roots), self.right.render(roots))


@attrs.frozen
class _Unary(Condition):
    name: str
    function: Callable[[Any], bool] = attrs.field(repr=False)
    operand: Compiled

    def evaluate(self, roots: Mapping[str, Any]) -> bool:
        return self.function(self.operand.render(roots))


@attrs.frozen
class _All(Condition):
    conditions: tuple[Condition, ...]

    def evaluate(self, roots: Mapping[str, Any]) -> bool:
        return all(condition.evaluate(roots) for condition in self.conditions)


@attrs.frozen
class _Any(Condition):
    conditions: tuple[Condition, ...]

    def evaluate(self, roots: Mapping[str, Any]) -> bool:
        return any(condition.evaluate(roots) for condition in self.conditions)


@attrs.frozen
class _Not(Condition):
    condition: Condition

    def evaluate(self, roots: Mapping[str, Any]) -> bool:
        return not self.condition.evaluate(roots)


def compile_condition(tree: object, *, source: str, path: str) -> Condition:
    """Compile a comparison tree found at ``path`` (such as ``nodes[1].if``) of ``source``.

    Raises :class:`hookline.errors.DefinitionError` naming the offending field, such as
    ``nodes[1].if.all[0].gt``, for: a tree that is not a one-key mapping, an unknown
    operator, a wrong number of operands, an operand template that does not parse, and
    and a ``matches`` pattern that is not a literal regular expression RE2 accepts (a
    template would let a sender choose the pattern).
    """
    if not isinstance(tree, Mapping) or len(tree) != 1:
        raise DefinitionError(
            source, path, "a comparison with one operator, such as {equal: [a, b]}", tree
        )
    ((name, argument),) = tree.items()
    here = f"{path}.{name}" if path else str(name)
    if name in ("all", "any"):
        if not isinstance(argument, list | tuple):
            raise DefinitionError(source, here, "a list of comparisons", argument)
        conditions = tuple(
            compile_condition(item, source=source, path=f"{here}[{i}]")
            for i, item in enumerate(argument)
        )
        return _All(conditions) if name == "all" else _Any(conditions)
    if name == "not":
        return _Not(compile_condition(argument, source=source, path=here))
    if name in UNARY_FUNCTIONS:
        (operand,) = _operands(argument, 1, source, here)
        return _Unary(name, UNARY_FUNCTIONS[name], operand)
    if name in OPERATORS:
        left, right = _operands(argument, 2, source, here)
        if name == "matches":
            right = _static_pattern(right, argument[1], source, f"{here}[1]")
        return _Binary(name, OPERATORS[name], left, right)
    raise DefinitionError(source, path, f"an operator, one of {_ALL_NAMES}", name)


def _operands(argument: object, count: int, source: str, path: str) -> tuple[Compiled, ...]:
    if not isinstance(argument, list | tuple) or len(argument) != count:
        expected = "a list of one operand" if count == 1 else "a list of two operands"
        raise DefinitionError(source, path, f"{expected}, such as {_EXAMPLES[count]}", argument)
    compiled: list[Compiled] = []
    for i, operand in enumerate(argument):
        try:
            compiled.append(compile_value(operand))
        except TemplateError as exc:
            raise DefinitionError(source, f"{path}[{i}]", f"a valid template: {exc}") from None
    return tuple(compiled)


_EXAMPLES = {1: "['{{$context.data.email}}']", 2: "['{{$context.data.n}}', 5]"}


LITERAL_PATTERN = (
    "a literal regular expression: a template cannot choose the pattern "
    "(match the templated value against a fixed pattern instead)"
)
"""What a ``matches`` pattern must be, for the error naming a templated one."""


def _static_pattern(compiled: Compiled, pattern: object, source: str, path: str) -> Compiled:
    if not compiled.is_static:
        raise DefinitionError(source, path, LITERAL_PATTERN, pattern)
    if not isinstance(pattern, str):
        raise DefinitionError(source, path, "a regular expression (a string)", pattern)
    try:
        return compile_value(compile_regex(pattern))
    except ValueError as exc:
        raise DefinitionError(
            source, path, f"a regular expression RE2 accepts ({exc})", pattern
        ) from None
