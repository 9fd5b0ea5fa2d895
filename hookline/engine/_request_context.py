"""The parts of ``$context`` that are computed only when something reads them.

Decoding a body as text, base64-encoding it or hashing a file costs time in
proportion to its size, and most workflows read none of it. So ``$context.raw``,
``$context.raw_base64`` and a file's ``text``, ``base64`` and ``sha256`` are worked out
on their first read and kept:

- a template path (``{{$context.raw}}``), ``get``, ``[]`` and ``in`` compute the one
  key they ask for;
- reading the whole object (``{{$context}}`` rendered, a ``code`` node's ``context``,
  JSON and msgpack encoding, which go through ``items()``) computes them all;
- a plain copy (``{**context}``, ``dict(context)``, iteration) takes only the keys
  that are not lazy: this is what the engine stores as an execution's context, so a body is not
  stored a second time beside its delivery record (:mod:`._recovery` rebuilds it from
  there).

Text rule: a body (or file) is text when its media type is textual (``text/*``, JSON,
XML, a URL-encoded form), decoded with its declared charset (else UTF-8) and
undecodable bytes replaced; any other body is text only if it is valid UTF-8 as it
is. Otherwise its text is None and only its base64 form is exact.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, ItemsView, KeysView, Mapping, ValuesView
from typing import Any

__all__ = ["FileInfo", "LazyFields", "body_text", "is_text_media_type", "split_content_type"]


def split_content_type(content_type: str | None) -> tuple[str, str | None]:
    """The lower-case media type and the ``charset`` parameter (or None)."""
    if not content_type:
        return "", None
    media_type, _, rest = content_type.partition(";")
    charset = None
    for param in rest.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return media_type.strip().lower(), charset


def is_text_media_type(media_type: str) -> bool:
    """Whether a body of ``media_type`` (lower case, no parameters) is text by its type."""
    if media_type.startswith("text/") or media_type == "application/x-www-form-urlencoded":
        return True
    if not media_type.startswith("application/"):
        return False
    return media_type in {"application/json", "application/xml"} or media_type.endswith(
        ("+json", "+xml")
    )


def body_text(body: bytes, content_type: str | None) -> str | None:
    """``body`` as text by the module's text rule, or None when it is not text."""
    media_type, charset = split_content_type(content_type)
    if is_text_media_type(media_type):
        if charset and charset.lower().replace("_", "-") not in {"utf-8", "utf8"}:
            try:
                return body.decode(charset, errors="replace")
            except (LookupError, ValueError):
                # An unknown or non-text codec name from the sender: UTF-8 is the web's default.
                pass
        return body.decode("utf-8", errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class LazyFields(dict[str, Any]):
    """A dict some of whose keys are computed on first read (see the module docstring).

    The plain dict holds the eager keys; ``lazy`` maps each other key to the function
    that makes its value. A value once made is kept, but never stored in the dict
    itself, so plain copies stay without it.
    """

    __slots__ = ("_lazy", "_made")

    def __init__(self, eager: Mapping[str, Any], lazy: Mapping[str, Callable[[], Any]]) -> None:
        super().__init__(eager)
        self._lazy = lazy
        self._made: dict[str, Any] = {}

    def _make(self, key: str) -> Any:
        try:
            return self._made[key]
        except KeyError:
            value = self._made[key] = self._lazy[key]()
            return value

    def _is_lazy(self, key: object) -> bool:
        return key in self._lazy and not dict.__contains__(self, key)

    def __missing__(self, key: str) -> Any:
        if key in self._lazy:
            return self._make(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key in self._lazy:
            return self._make(key)
        return default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self._lazy

    def whole(self) -> dict[str, Any]:
        """A plain dict of every key, the lazy ones computed."""
        whole = dict(self)
        for key in self._lazy:
            if key not in whole:
                whole[key] = self._make(key)
        return whole

    def __len__(self) -> int:
        return dict.__len__(self) + sum(1 for key in self._lazy if self._is_lazy(key))

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        return self.whole().keys()

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]
        return self.whole().items()

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        return self.whole().values()

    def __repr__(self) -> str:
        lazy = ", ".join(repr(key) for key in self._lazy if self._is_lazy(key))
        return f"{type(self).__name__}({dict.__repr__(self)}, lazy=[{lazy}])"

    def __reduce__(self) -> tuple[Any, ...]:
        # Copies and pickles are plain dicts of everything: the functions stay here.
        return (dict, (self.whole(),))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyFields):
            other = other.whole()
        return self.whole() == other

    __hash__ = None


class FileInfo(LazyFields):
    """A multipart file part in ``$context.files``: ``filename``, ``content_type`` and
    ``size`` as received; ``text`` (by the text rule, None for binary content),
    ``base64`` and ``sha256`` (hex) worked out when read."""

    __slots__ = ("content",)

    def __init__(self, filename: str | None, content_type: str | None, content: bytes) -> None:
        self.content = content
        super().__init__(
            {"filename": filename, "content_type": content_type, "size": len(content)},
            {
                "text": lambda: body_text(content, content_type),
                "base64": lambda: base64_text(content),
                "sha256": lambda: hashlib.sha256(content).hexdigest(),
            },
        )
