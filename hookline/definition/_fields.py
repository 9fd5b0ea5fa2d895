"""Checked reading of a parsed YAML/JSON mapping, with error messages that point home.

:class:`Fields` wraps one mapping of a definition (a workflow, a node, a config section)
and reads its fields one by one. Every failure raises the configured error class
(:class:`~hookline.errors.DefinitionError` for workflows, :class:`~hookline.errors.ConfigError`
for the server config) naming the file, the field path and what was expected::

    workflows/github.yaml: nodes[1].then[0].timeout: expected a duration such as '5s', got 'soon'

Absent fields and fields written as ``null`` both take their default. :meth:`Fields.done`
refuses keys that no reader asked for, so a typo such as ``timout`` never passes silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NoReturn, TypeVar, overload

import yaml

from ..errors import ConfigError, DefinitionError, TemplateError
from ._compare import Condition, compile_condition
from ._templates import Compiled, compile_value
from ._units import parse_duration, parse_size

T = TypeVar("T")
D = TypeVar("D")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default meaning "this field must be present"."""

_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_ENV_PREFIX = "env:"


def _has_kind(value: object, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        # YAML's ``yes``/``true`` must not pass as the integer 1.
        return False
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


class Fields:
    """One mapping of a definition, read field by field.

    ``path`` is where the mapping sits (``nodes[1].then[0]``, empty at the top);
    ``error`` the class raised for a bad field; ``env`` the variables that ``env:NAME``
    strings are read from (default :data:`os.environ`). A value that is not a mapping
    raises at construction.
    """

    def __init__(
        self,
        data: object,
        *,
        source: str,
        path: str = "",
        error: type[ConfigError] = DefinitionError,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.source = source
        self.path = path
        self.error = error
        self.env: Mapping[str, str] = os.environ if env is None else env
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise error(source, path, "a mapping of fields", data)
        self._data: Mapping[Any, Any] = data
        self._read: set[str] = set()

    # -- paths and errors ------------------------------------------------------------

    def at(self, name: str) -> str:
        """The full path of ``name`` (which may carry an index: ``then[0]``)."""
        if not name:
            return self.path
        if not self.path:
            return name
        return f"{self.path}{name}" if name.startswith("[") else f"{self.path}.{name}"

    def fail(self, name: str, expected: str, got: object = None) -> NoReturn:
        """Raise the error for field ``name`` (empty: this mapping itself)."""
        raise self.error(self.source, self.at(name), expected, got)

    def child(self, name: str, data: object) -> Fields:
        """A :class:`Fields` for ``data`` found at ``name`` below this mapping."""
        return Fields(data, source=self.source, path=self.at(name), error=self.error, env=self.env)

    # -- raw access ------------------------------------------------------------------

    def has(self, name: str) -> bool:
        """Whether ``name`` is present and not null. Does not count as reading it."""
        return self._data.get(name) is not None

    def names(self) -> tuple[str, ...]:
        """The field names written, in order (for a type whose fields are free: custom
        nodes). Does not count as reading them."""
        return tuple(str(name) for name in self._data)

    def value(self, name: str, default: object = REQUIRED, *, expected: str = "a value") -> Any:
        """The raw value of ``name``, any JSON value; ``default`` when absent or null."""
        self._read.add(name)
        found = self._data.get(name)
        if found is not None:
            return found
        if default is REQUIRED:
            self.fail(name, f"{expected}; the field is missing")
        return default

    def required(self, name: str, kind: type[T], expected: str | None = None) -> T:
        """The value of ``name``, which must be present and of ``kind``."""
        found: T = self.optional(name, kind, REQUIRED, expected)
        return found

    def optional(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any,
        expected: str | None = None,
    ) -> Any:
        """The value of ``name`` if of ``kind``; ``default`` when absent or null."""
        if expected is None:
            named = _KIND_NAMES.get(kind) if isinstance(kind, type) else None
            expected = named or f"a {getattr(kind, '__name__', kind)}"
        if not self.has(name):
            self._read.add(name)
            if default is REQUIRED:
                self.fail(name, f"{expected}; the field is missing")
            return default
        found = self.value(name)
        if not _has_kind(found, kind):
            self.fail(name, expected, found)
        return found

    # -- scalars ---------------------------------------------------------------------

    @overload
    def string(
        self, name: str, *, pattern: str | None = ..., expected: str | None = ..., env: bool = ...
    ) -> str: ...
    @overload
    def string(
        self,
        name: str,
        default: D,
        *,
        pattern: str | None = ...,
        expected: str | None = ...,
        env: bool = ...,
    ) -> str | D: ...
    def string(
        self,
        name: str,
        default: Any = REQUIRED,
        *,
        pattern: str | None = None,
        expected: str | None = None,
        env: bool = False,
    ) -> Any:
        """A string, matching ``pattern`` in full if given; ``env`` resolves ``env:NAME``."""
        if not self.has(name):
            return self.optional(name, str, default, expected or "a string")
        found = self.required(name, str, expected or "a string")
        if pattern is not None and re.fullmatch(pattern, found) is None:
            self.fail(name, expected or f"a string matching {pattern}", found)
        return self.resolve_env(name, found) if env else found

    @overload
    def choice(self, name: str, choices: Collection[str]) -> str: ...
    @overload
    def choice(self, name: str, choices: Collection[str], default: D) -> str | D: ...
    def choice(self, name: str, choices: Collection[str], default: Any = REQUIRED) -> Any:
        """One of ``choices``."""
        expected = "one of " + ", ".join(choices)
        if not self.has(name):
            return self.optional(name, str, default, expected)
        found = self.value(name)
        if found not in choices:
            self.fail(name, expected, found)
        return found

    @overload
    def integer(self, name: str, *, low: int | None = ..., high: int | None = ...) -> int: ...
    @overload
    def integer(
        self, name: str, default: D, *, low: int | None = ..., high: int | None = ...
    ) -> int | D: ...
    def integer(
        self, name: str, default: Any = REQUIRED, *, low: int | None = None, high: int | None = None
    ) -> Any:
        """An integer within ``low``..``high`` (inclusive, each optional)."""
        expected = _range("an integer", low, high)
        if not self.has(name):
            return self.optional(name, int, default, expected)
        found = self.required(name, int, expected)
        if (low is not None and found < low) or (high is not None and found > high):
            self.fail(name, expected, found)
        return found

    @overload
    def boolean(self, name: str) -> bool: ...
    @overload
    def boolean(self, name: str, default: D) -> bool | D: ...
    def boolean(self, name: str, default: Any = REQUIRED) -> Any:
        """``true`` or ``false``."""
        return self.optional(name, bool, default, "true or false")

    @overload
    def duration(self, name: str, *, positive: bool = ...) -> float: ...
    @overload
    def duration(self, name: str, default: D, *, positive: bool = ...) -> float | D: ...
    def duration(self, name: str, default: Any = REQUIRED, *, positive: bool = True) -> Any:
        """Seconds, written ``250ms``, ``5s``, ``10m``, ``3d``; ``positive`` refuses 0."""
        return self._parsed(name, default, parse_duration, "a duration", "'5s'", positive=positive)

    @overload
    def size(self, name: str) -> int: ...
    @overload
    def size(self, name: str, default: D) -> int | D: ...
    def size(self, name: str, default: Any = REQUIRED) -> Any:
        """Bytes, written ``512KiB``, ``1MiB``; more than 0."""
        return self._parsed(name, default, parse_size, "a size", "'1MiB'", positive=True)

    def _parsed(
        self,
        name: str,
        default: Any,
        parse: Callable[[Any], float],
        what: str,
        example: str,
        *,
        positive: bool,
    ) -> Any:
        expected = f"{what} such as {example}"
        if not self.has(name):
            return self.optional(name, str, default, expected)
        found = self.value(name)
        try:
            parsed = parse(found)
        except ValueError:
            self.fail(name, expected, found)
        if positive and parsed == 0:
            self.fail(name, f"{what} above zero, such as {example}", found)
        return parsed

    # -- lists and mappings ----------------------------------------------------------

    def sequence(self, name: str, default: Any = REQUIRED, *, non_empty: bool = False) -> Any:
        """A list of raw values; ``non_empty`` refuses ``[]``."""
        expected = "a non-empty list" if non_empty else "a list"
        found = self.optional(name, list, default, expected)
        if non_empty and found == []:
            self.fail(name, expected, found)
        return found

    def strings(self, name: str, default: Sequence[str] = ()) -> tuple[str, ...]:
        """A list of strings (``env:NAME`` is not resolved: see :meth:`resolve_env`)."""
        found = self.sequence(name, list(default))
        for index, item in enumerate(found):
            if not isinstance(item, str):
                self.fail(f"{name}[{index}]", "a string", item)
        return tuple(found)

    def sub(self, name: str, *, required: bool = False) -> Fields:
        """The mapping at ``name``; absent or null gives an empty one (all defaults)."""
        found = self.optional(name, Mapping, REQUIRED if required else {}, "a mapping of fields")
        return self.child(name, found)

    def items(self, name: str, *, required: bool = False) -> list[Fields]:
        """The list of mappings at ``name``, each as :class:`Fields` at ``name[i]``.
        ``required`` refuses an absent or empty list."""
        found = self.sequence(name, REQUIRED if required else [], non_empty=required)
        return [self.child(f"{name}[{index}]", item) for index, item in enumerate(found)]

    def mapping(self, name: str, default: Any = REQUIRED) -> Any:
        """A mapping with string keys, as a plain dict of raw values."""
        if not self.has(name):
            return self.optional(name, Mapping, default, "a mapping")
        found = self.required(name, Mapping, "a mapping")  # type: ignore[type-abstract]
        for key in found:
            if not isinstance(key, str):
                self.fail(f"{name}.{key}", "a string key", key)
        return dict(found)

    # -- templates, conditions and secrets -------------------------------------------

    def compile(self, name: str, value: object) -> Compiled:
        """Compile ``value`` (found at ``name``) as a template value."""
        try:
            return compile_value(value)
        except TemplateError as exc:
            self.fail(name, f"a valid template: {exc}")

    @overload
    def template(self, name: str) -> Compiled: ...
    @overload
    def template(self, name: str, default: D) -> Compiled | D: ...
    def template(self, name: str, default: Any = REQUIRED) -> Any:
        """``name`` compiled as a template value (any JSON value); ``default`` if absent."""
        found = self.value(name, default)
        if found is default:
            return found
        return self.compile(name, found)

    def templates(self, name: str) -> tuple[tuple[str, Compiled], ...]:
        """A mapping of templates (``headers``, ``values``), each compiled: (name, template)."""
        found = self.mapping(name, {})
        return tuple((key, self.compile(f"{name}.{key}", item)) for key, item in found.items())

    def condition(self, name: str) -> Condition:
        """``name`` compiled as a comparison tree (``{equal: [a, b]}``, ``all``, ``any``...)."""
        tree = self.value(name, expected="a comparison such as {equal: [a, b]}")
        return compile_condition(tree, source=self.source, path=self.at(name))

    def resolve_env(self, name: str, value: Any) -> Any:
        """``value`` with every ``env:NAME`` string in it (at any depth) read from the
        environment. A variable that is not set raises, naming the field."""
        if isinstance(value, str):
            if not value.startswith(_ENV_PREFIX):
                return value
            variable = value[len(_ENV_PREFIX) :]
            if variable not in self.env:
                self.fail(name, f"the environment variable {variable} to be set", value)
            return self.env[variable]
        if isinstance(value, Mapping):
            return {key: self.resolve_env(f"{name}.{key}", item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve_env(f"{name}[{i}]", item) for i, item in enumerate(value)]
        return value

    # -- the end ---------------------------------------------------------------------

    def done(self) -> None:
        """Refuse any field that no reader asked for, listing the known ones."""
        for key in self._data:
            if key not in self._read:
                known = ", ".join(sorted(self._read)) or "none"
                self.fail(str(key), f"a known field (one of: {known})", None)


def _range(what: str, low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{what} from {low} to {high}"
    if low is not None:
        return f"{what} >= {low}"
    if high is not None:
        return f"{what} <= {high}"
    return what


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader refusing duplicate mapping keys (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # keys merged in with << may be overridden: that is their point
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: SafeConstructor reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, *, source: str, error: type[ConfigError] = DefinitionError) -> object:
    """Parse YAML text, refusing duplicate keys; a syntax error raises ``error`` with
    the line and column."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise error(source, "", f"valid YAML; {where}{exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise error(source, "", f"valid YAML; {exc}") from exc
