"""The values hookline stores and passes between nodes: JSON, as a type."""

from __future__ import annotations

from typing import TypeAlias

JSON: TypeAlias = "bool | int | float | str | list[JSON] | dict[str, JSON] | None"
"""A JSON value: what a node's output, an execution's output and a parsed body are."""
