"""The reference in ``docs/reference/`` cannot drift from the code.

- Every YAML example in ``docs/`` and the README loads. A fenced ``yaml`` block is a whole workflow
  unless the line before its fence says otherwise::

      <!-- check: nodes -->          a list of nodes (custom types: nodes custom=double)
      <!-- check: part -->           keys of a workflow (trigger, concurrency...) to which
                                     the test adds a key and one node
      <!-- check: config -->         a server configuration file (hookline.yaml)
      <!-- check: none: REASON -->   not checked, for REASON

  ``env:NAME`` values need not be set: an unset one is what ``hookline workflows
  validate`` makes of it, a warning.
- Every built-in node type has a section in ``nodes.md``, every verify scheme in
  ``verify.md``, and every key the server configuration accepts in ``config.md``: a
  heading naming it in backticks (``### `set` ``) or an anchor (``<a id="server.bind"></a>``;
  config keys by their full dotted path).
- Every node type has an example in ``nodes.md``, and its section a table row
  (``| `url` |``) for each field its parser reads (the common ones aside).
- Every key the workflow loader reads outside nodes (``trigger.sync_timeout``...) is
  named in ``workflow.md`` by an anchor, a heading or a table row.

The names come from the code (the node registry, the verify schemes, the fields the
loaders read), so a type, scheme or key added without its docs fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import hookline.nodes
from hookline._config import load_config
from hookline.definition import Fields
from hookline.engine._loader import VERIFY_SCHEMES, check_workflow_text
from hookline.errors import ConfigError
from hookline.nodes._registry import BUILT_IN_TYPES
from hookline.verify._verify import SCHEMES

DOCS = Path(__file__).parent.parent / "docs"
REFERENCE = DOCS / "reference"

_FENCE = re.compile(r"^```yaml[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_MARKER = re.compile(r"<!--\s*check:\s*([a-z]+)(?:\s+custom=([\w,-]+))?(?::\s*(.*?))?\s*-->\s*$")


class Example:
    """One fenced ``yaml`` block of a document, with what its marker says it is."""

    def __init__(self, page: Path, line: int, text: str, marker: str) -> None:
        self.page = page
        self.line = line
        self.text = text
        found = _MARKER.search(marker)
        self.kind = found.group(1) if found else "workflow"
        self.custom = tuple(found.group(2).split(",")) if found and found.group(2) else ()
        self.reason = found.group(3) if found else None

    def __repr__(self) -> str:
        return f"{self.page.relative_to(DOCS.parent)}:{self.line}"


def examples() -> Iterator[Example]:
    for page in [DOCS.parent / "README.md", *sorted(DOCS.rglob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            line = text.count("\n", 0, match.start()) + 1
            yield Example(page, line, match.group(1), before)


class _AnyVariable(Mapping[str, str]):
    """An environment in which every variable is set (config examples name secrets)."""

    def __getitem__(self, name: str) -> str:
        if name.endswith("STORE_URL"):
            return "postgresql://hookline@db.internal/hookline"
        return f"example-{name.lower()}"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


async def _custom_node(call: Any) -> object:
    return None


def _as_workflow(example: Example) -> str:
    if example.kind == "workflow":
        return example.text
    data = yaml.safe_load(example.text)
    if example.kind == "nodes":
        assert isinstance(data, list), f"{example}: 'check: nodes' marks a list of nodes"
        return yaml.safe_dump({"key": "example", "nodes": data})
    assert isinstance(data, dict), f"{example}: 'check: part' marks a mapping"
    data.setdefault("key", "example")
    data.setdefault("nodes", [{"key": "example_end", "type": "end"}])
    return yaml.safe_dump(data)


EXAMPLES = list(examples())


def test_the_docs_have_examples() -> None:
    assert len([e for e in EXAMPLES if e.page.is_relative_to(REFERENCE)]) >= 20


@pytest.mark.parametrize("example", EXAMPLES, ids=repr)
def test_every_yaml_example_in_docs_loads(example: Example, tmp_path: Path) -> None:
    kinds = ("workflow", "nodes", "part", "config", "none")
    assert example.kind in kinds, f"{example}: unknown 'check:' kind {example.kind!r}"
    if example.kind == "none":
        assert example.reason, f"{example}: 'check: none' needs a reason"
        return
    if example.kind == "config":
        config = tmp_path / "hookline.yaml"
        config.write_text(example.text)
        load_config(config, env=_AnyVariable())
        return
    nodes = dict.fromkeys(example.custom, _custom_node)
    # An unset env: variable is a warning (as `hookline workflows validate` says);
    # anything else that does not validate raises here.
    check_workflow_text(_as_workflow(example), source=repr(example), env={}, nodes=nodes)


def test_a_broken_example_would_fail(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```yaml\nkey: x\nnodes: [{key: a, type: sett}]\n```\n")
    (example,) = [Example(page, 1, m.group(1), "") for m in _FENCE.finditer(page.read_text())]
    with pytest.raises(ConfigError, match="sett"):
        check_workflow_text(_as_workflow(example), source="page.md", env={})


# -- every name the code accepts has a section -------------------------------------------


def sections(page: str) -> set[str]:
    """The names a reference page has a section for: backticked names in its headings
    and the ids of its anchors."""
    text = (REFERENCE / page).read_text(encoding="utf-8")
    names: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.*)$", text, flags=re.MULTILINE):
        names.update(re.findall(r"`([^`]+)`", heading))
    names.update(re.findall(r"<a (?:id|name)=\"([^\"]+)\"", text))
    return names


def built_in_node_types() -> set[str]:
    # Types registered by tests (hookline.testing, tests/) live outside hookline.nodes.
    assert hookline.nodes is not None
    return {
        name
        for name, parser in BUILT_IN_TYPES.items()
        if parser.__module__.startswith("hookline.nodes.")
    }


def config_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> set[str]:
    """Every key the config loader reads (sections and their fields, by dotted path)."""
    read: set[str] = set()
    done = Fields.done

    def recording(self: Fields) -> None:
        read.update(self.at(name) for name in self._read)
        done(self)

    monkeypatch.setattr(Fields, "done", recording)
    empty = tmp_path / "hookline.yaml"
    empty.write_text("{}\n")
    load_config(empty, env={})
    return read


def table_keys(page: str) -> set[str]:
    """The backticked names in the first cell of a page's table rows (``| `path` |``)."""
    text = (REFERENCE / page).read_text(encoding="utf-8")
    return set(re.findall(r"^\|\s*(?:<a [^>]*></a>)?`([^`]+)`", text, flags=re.MULTILINE))


def undocumented(names: set[str], page: str) -> list[str]:
    return sorted(names - sections(page))


def workflow_keys(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every key the workflow loader reads outside nodes and verify entries (top level,
    trigger, concurrency...), by dotted path."""
    read: set[str] = set()
    done = Fields.done

    def recording(self: Fields) -> None:
        if not self.path.startswith("nodes") and "verify[" not in self.path:
            read.update(self.at(name) for name in self._read)
        done(self)

    monkeypatch.setattr(Fields, "done", recording)
    # A trigger `response` is read only when present.
    text = "key: every\ntrigger: {response: {}}\nnodes: [{key: a, type: end}]\n"
    check_workflow_text(text, source="every.yaml", env={})
    return read


def test_every_node_type_has_a_section() -> None:
    types = built_in_node_types()
    assert {"set", "http", "code"} <= types
    missing = undocumented(types, "nodes.md")
    assert not missing, f"docs/reference/nodes.md has no section for node types {missing}"


def test_every_verify_scheme_has_a_section() -> None:
    schemes = set(SCHEMES) | set(VERIFY_SCHEMES)
    assert {"github", "hmac", "jwt"} <= schemes
    missing = undocumented(schemes, "verify.md")
    assert not missing, f"docs/reference/verify.md has no section for schemes {missing}"


def test_every_config_key_has_a_section(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys = config_keys(monkeypatch, tmp_path)
    assert {"server", "server.bind", "engine.restart.period", "smtp.from"} <= keys
    missing = undocumented(keys, "config.md")
    assert not missing, f"docs/reference/config.md has no section for config keys {missing}"


def test_every_workflow_key_is_described(monkeypatch: pytest.MonkeyPatch) -> None:
    # A key is described by a heading or anchor naming its dotted path, or by a table
    # row naming it (`| `sync_timeout` |` in the trigger's table).
    keys = workflow_keys(monkeypatch)
    assert {"key", "trigger.path", "trigger.idempotency.ttl", "concurrency.max"} <= keys
    described = sections("workflow.md") | table_keys("workflow.md")
    missing = sorted(
        k for k in keys if k not in described and k.rsplit(".", 1)[-1] not in described
    )
    assert not missing, f"docs/reference/workflow.md does not describe workflow keys {missing}"


# Read by the node parser for every type; described once, under "Fields every node has".
COMMON_NODE_FIELDS = {"key", "type", "title", "timeout", "concurrency", "retry"}


def node_fields_in_examples(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """The fields each node type's parser reads (present or not), per type, from loading
    the examples of ``nodes.md``."""
    read: dict[str, set[str]] = {}
    done = Fields.done

    def recording(self: Fields) -> None:
        kind = self._data.get("type")
        if isinstance(kind, str) and "key" in self._data:
            read.setdefault(kind, set()).update(self._read)
        done(self)

    monkeypatch.setattr(Fields, "done", recording)
    for example in EXAMPLES:
        if example.page == REFERENCE / "nodes.md" and example.kind in ("workflow", "nodes", "part"):
            nodes = dict.fromkeys(example.custom, _custom_node)
            check_workflow_text(_as_workflow(example), source=repr(example), env={}, nodes=nodes)
    return read


def node_section(name: str) -> str:
    """The text of node type ``name``'s section of ``nodes.md``, up to the next heading
    of its level or higher."""
    text = (REFERENCE / "nodes.md").read_text(encoding="utf-8")
    found = re.search(rf"^(#+) [^\n]*`{re.escape(name)}`[^\n]*$", text, flags=re.MULTILINE)
    assert found is not None, f"docs/reference/nodes.md has no section for {name}"
    level = len(found.group(1))
    rest = text[found.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.MULTILINE)
    return rest if end is None else rest[: end.start()]


def test_every_node_type_has_an_example_and_its_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    read = node_fields_in_examples(monkeypatch)
    types = built_in_node_types()
    without = sorted(types - set(read))
    assert not without, f"docs/reference/nodes.md has no example of node types {without}"
    missing = []
    for kind in sorted(types):
        section = node_section(kind)
        rows = set(re.findall(r"^\|\s*(?:<a [^>]*></a>)?`([^`]+)`", section, flags=re.MULTILINE))
        missing += [f"{kind}.{name}" for name in sorted(read[kind] - COMMON_NODE_FIELDS - rows)]
    assert not missing, f"docs/reference/nodes.md: no table row for node fields {missing}"


def test_a_name_without_a_section_is_found() -> None:
    # What the three tests above report when a node type, scheme or key is added alone.
    assert undocumented({"set", "frobnicate"}, "nodes.md") == ["frobnicate"]
    assert undocumented({"github", "pigeon_post"}, "verify.md") == ["pigeon_post"]


def test_reference_pages_link_each_other_and_the_readme_links_them() -> None:
    index = (REFERENCE / "README.md").read_text(encoding="utf-8")
    for page in sorted(REFERENCE.glob("*.md")):
        if page.name != "README.md":
            assert f"({page.name})" in index, f"docs/reference/README.md does not link {page.name}"
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert "docs/reference/" in readme
    assert "shared folder" not in readme
    assert "DESIGN.md" not in readme


def test_relative_links_in_the_reference_resolve() -> None:
    for page in sorted(REFERENCE.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"
