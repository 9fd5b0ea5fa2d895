"""Checking a draft definition as the editor types it, and comparing stored versions.

The loader stops at a definition's first error and names its field path
(``nodes[2].then[0].type``); :func:`field_position` finds that field's line and column in
the text by walking the YAML node tree (JSON is YAML too), so the editor can show the
error where it is. A YAML syntax error carries its own line.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable

import attrs
import yaml

from ..engine._definition import Workflow
from ..engine._loader import check_conflicts, load_workflow_text
from ..errors import DefinitionError
from ..nodes._call import NodeFunction

__all__ = ["DraftCheck", "DraftError", "check_draft", "field_position", "version_diff"]

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_SYNTAX_AT = re.compile(r"line (\d+), column (\d+)")


@attrs.frozen
class DraftError:
    """One error of a draft: its field path, where it is (1-based) and the message."""

    field: str
    line: int
    column: int
    message: str
    expected: str


@attrs.frozen
class DraftCheck:
    """A checked draft: the workflow it defines, or its errors (the first the loader
    met; a definition that loads has none)."""

    workflow: Workflow | None
    errors: tuple[DraftError, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors


def check_draft(
    text: str,
    others: Iterable[Workflow],
    *,
    key: str | None = None,
    nodes: dict[str, NodeFunction] | None = None,
) -> DraftCheck:
    """Load ``text`` as a workflow and check it against ``others`` (routes, keys): what
    saving it would refuse. ``key``: the workflow it must define (an edit keeps its key)."""
    try:
        workflow = load_workflow_text(text, source="draft", env=os.environ, nodes=nodes)
        if key is not None and workflow.key != key:
            raise DefinitionError(
                "draft", "key", f"the key of the workflow edited ({key!r})", workflow.key
            )
        check_conflicts(workflow, [w for w in others if w.key != workflow.key])
    except DefinitionError as exc:
        return DraftCheck(None, (draft_error(text, exc),))
    return DraftCheck(workflow)


def draft_error(text: str, error: DefinitionError) -> DraftError:
    """``error`` placed in ``text``: at its field, or at the syntax error's line."""
    syntax = _SYNTAX_AT.search(error.expected) if not error.path else None
    if syntax is not None:
        line, column = int(syntax.group(1)), int(syntax.group(2))
    else:
        line, column = field_position(text, error.path)
    message = str(error).removeprefix(f"{error.source}: ")
    return DraftError(error.path, line, column, message, error.expected)


def field_position(text: str, path: str) -> tuple[int, int]:
    """The 1-based line and column of field ``path`` (``nodes[2].then[0].type``) in
    YAML or JSON ``text``: the key of a mapping field, the item of a list; when the
    field is missing, its nearest written parent; (1, 1) when nothing is found."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return 1, 1
    if node is None:
        return 1, 1
    mark = node.start_mark
    for name, index in _SEGMENT.findall(path):
        if name and isinstance(node, yaml.MappingNode):
            found = next((pair for pair in node.value if pair[0].value == name), None)
            if found is None:
                break
            mark = found[0].start_mark
            node = found[1]
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
            mark = node.start_mark
        else:
            break
    return mark.line + 1, mark.column + 1


def version_diff(key: str, old: tuple[int, str], new: tuple[int, str]) -> str:
    """A unified diff from version ``old`` to ``new`` (each its number and text)."""
    lines = difflib.unified_diff(
        old[1].splitlines(keepends=True),
        new[1].splitlines(keepends=True),
        f"{key} version {old[0]}",
        f"{key} version {new[0]}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
