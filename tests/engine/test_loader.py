"""Loading workflow definitions: the DESIGN.md example, every refusal message, folders."""

from __future__ import annotations

import ipaddress
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import attrs
import pytest

import hookline
from hookline.definition import Fields
from hookline.engine._loader import (
    load_workflow_data,
    load_workflow_text,
    load_workflows,
)
from hookline.errors import DefinitionError
from hookline.nodes import _registry
from hookline.nodes._base import Job, NodeResult, NodeSpec
from hookline.nodes._registry import NODE_TYPES, NodeListParser

DESIGN_EXAMPLE = """\
key: github-push                  # unique; [a-z0-9][a-z0-9_-]*
title: Deploy on push to main
enabled: true
trigger:
  type: webhook
  path: github/{repo}
  methods: [POST]
  mode: async
  sync_timeout: 10s
  max_body: 1MiB
  verify:
    - github: {secret: env:GITHUB_WEBHOOK_SECRET}
  ip_allow: [140.82.112.0/20, "::1"]
  idempotency:
    key: "{{$context.headers.x-github-delivery}}"
    ttl: 3d
  response:
    status: 202
    headers: {X-Accepted-By: hookline}
    body: {received: true, execution: "{{$execution.id}}"}
concurrency:
  max: 8
  order_by: "{{$context.data.repository.id}}"
  queue: 1000
timeout: 5m
nodes:
  - key: branch
    type: code
    code: |
      const branch = context.data.ref.replace('refs/heads/', '');
      return { branch };
  - key: is_main
    type: condition
    if: {equal: ["{{$nodes.branch.branch}}", "main"]}
    then:
      - key: notify
        type: http
        method: POST
        url: https://chat.example.com/hooks/deploy
        json: {text: "push to main by {{$context.data.pusher.name}}"}
        timeout: 5s
        retry: {attempts: 3, backoff: 1s}
    else:
      - {key: ignore, type: end, status: succeeded}
"""

ENV = {"GITHUB_WEBHOOK_SECRET": "s3cret"}


@attrs.frozen
class _StandIn:
    """Accepts the fields of a node type that is not written yet (code, http)."""

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        raise NotImplementedError


def _stand_in(fields: Fields, nodes: NodeListParser) -> _StandIn:
    for name in ("code", "method", "url", "json", "retry"):
        fields.value(name, None)
    return _StandIn()


@pytest.fixture(autouse=True)
def _code_and_http(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real node types are used once they are registered.
    for name in ("code", "http"):
        if name not in NODE_TYPES:
            monkeypatch.setitem(_registry._PARSERS, name, _stand_in)


def test_design_example_loads_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "github.yaml"
    path.write_text(DESIGN_EXAMPLE)

    workflow = load_workflow_text(path.read_text(), source=str(path), env=ENV)

    assert (workflow.key, workflow.title, workflow.enabled) == (
        "github-push",
        "Deploy on push to main",
        True,
    )
    assert (workflow.source, workflow.text) == (str(path), DESIGN_EXAMPLE)
    trigger = workflow.trigger
    assert trigger.path == "github/{repo}"
    assert trigger.methods == ("POST",)
    assert (trigger.mode, trigger.sync_timeout, trigger.max_body) == ("async", 10.0, 1048576)
    assert [(v.scheme, v.options) for v in trigger.verify] == [("github", {"secret": "s3cret"})]
    assert trigger.ip_allow == (
        ipaddress.ip_network("140.82.112.0/20"),
        ipaddress.ip_network("::1/128"),
    )
    roots = {
        "context": {"headers": {"x-github-delivery": "d-1"}, "data": {"repository": {"id": 7}}},
        "execution": {"id": "ex-1"},
    }
    assert trigger.idempotency.key is not None
    assert trigger.idempotency.key.render(roots) == "d-1"
    assert trigger.idempotency.ttl == 3 * 86400
    assert trigger.response is not None
    assert trigger.response.status == 202
    assert trigger.response.headers is not None
    assert trigger.response.headers.render(roots) == {"X-Accepted-By": "hookline"}
    assert trigger.response.body is not None
    assert trigger.response.body.render(roots) == {"received": True, "execution": "ex-1"}
    assert workflow.concurrency.max == 8
    assert workflow.concurrency.queue == 1000
    assert workflow.concurrency.order_by is not None
    assert workflow.concurrency.order_by.render(roots) == 7
    assert workflow.timeout == 300.0
    assert [(n.key, n.type) for n in workflow.walk()] == [
        ("branch", "code"),
        ("is_main", "condition"),
        ("notify", "http"),
        ("ignore", "end"),
    ]
    timeouts = {node.key: node.timeout for node in workflow.walk()}
    assert timeouts == {"branch": 30.0, "is_main": 30.0, "notify": 5.0, "ignore": 30.0}


def test_minimal_definition_takes_the_documented_defaults() -> None:
    workflow = load_workflow_data(
        {"key": "orders", "nodes": [{"key": "done", "type": "end"}]}, source="orders.yaml", env={}
    )
    trigger = workflow.trigger
    assert (trigger.path, trigger.methods, trigger.mode) == ("orders", ("POST",), "async")
    assert (trigger.sync_timeout, trigger.max_body) == (10.0, 1024 * 1024)
    assert (trigger.verify, trigger.ip_allow, trigger.response) == ((), (), None)
    assert (trigger.idempotency.key, trigger.idempotency.ttl) == (None, 3 * 86400)
    assert (workflow.concurrency.max, workflow.concurrency.queue) == (8, 1000)
    assert (workflow.timeout, workflow.enabled, workflow.title) == (300.0, True, "")


def test_path_loses_its_leading_slash_and_methods_are_upper_cased() -> None:
    workflow = load_workflow_data(
        {
            "key": "k",
            "trigger": {"path": "/shop/{shop_id}/orders", "methods": ["post", "put", "POST"]},
            "nodes": [{"key": "a", "type": "end"}],
        },
        source="k.yaml",
        env={},
    )
    assert workflow.trigger.path == "shop/{shop_id}/orders"
    assert workflow.trigger.methods == ("POST", "PUT")


def test_env_secrets_are_replaced_at_any_depth() -> None:
    workflow = load_workflow_data(
        {
            "key": "k",
            "trigger": {
                "verify": [
                    {"basic": {"users": {"ops": "env:OPS_PASSWORD"}}},
                    {"hmac": {"secrets": ["env:OLD", "env:NEW"], "header": "X-Sig"}},
                ]
            },
            "nodes": [{"key": "a", "type": "end"}],
        },
        source="k.yaml",
        env={"OPS_PASSWORD": "pw", "OLD": "o", "NEW": "n"},
    )
    assert [v.options for v in workflow.trigger.verify] == [
        {"users": {"ops": "pw"}},
        {"secrets": ["o", "n"], "header": "X-Sig"},
    ]


def _nodes(*lines: str) -> str:
    return "key: wf\nnodes:\n" + "\n".join(f"  {line}" for line in lines) + "\n"


_END = "- {key: a, type: end}"

BAD_DEFINITIONS = [
    pytest.param(
        _nodes(
            _END,
            "- key: c",
            "  type: condition",
            "  if: {exists: ['{{$context.data}}']}",
            "  then: [{key: t, type: end, timeout: soon}]",
        ),
        "nodes[1].then[0].timeout: expected a duration such as '5s', got 'soon'",
        id="nested-duration",
    ),
    pytest.param(
        "key: Bad Key\n" + _nodes(_END)[8:],
        "key: expected a workflow key matching [a-z0-9][a-z0-9_-]*, got 'Bad Key'",
        id="workflow-key",
    ),
    pytest.param(
        "key: wf\n", "nodes: expected a non-empty list; the field is missing", id="no-nodes"
    ),
    pytest.param("key: wf\nnodes: []\n", "nodes: expected a non-empty list, got []", id="empty"),
    pytest.param(
        "timout: 5s\n" + _nodes(_END),
        "timout: expected a known field "
        "(one of: batch, cancel_on, concurrency, debounce, enabled, key, nodes, on_failure, "
        "priority, "
        "rate_limit, throttle, timeout, title, trigger)",
        id="unknown-field",
    ),
    pytest.param(
        "timeout: 0s\n" + _nodes(_END),
        "timeout: expected a duration above zero, such as '5s', got '0s'",
        id="zero-timeout",
    ),
    pytest.param(
        "enabled: 'yes'\n" + _nodes(_END),
        "enabled: expected true or false, got 'yes'",
        id="enabled",
    ),
    pytest.param(
        "trigger: {path: 'github/{repo'}\n" + _nodes(_END),
        "trigger.path: expected a path such as 'github/{repo}': segments of letters, digits, "
        "'.', '_', '~', '-', or one {name} parameter each, got 'github/{repo'",
        id="path-syntax",
    ),
    pytest.param(
        "trigger: {path: 'a//b'}\n" + _nodes(_END),
        "trigger.path: expected a path such as 'github/{repo}': segments of letters, digits, "
        "'.', '_', '~', '-', or one {name} parameter each, got 'a//b'",
        id="empty-segment",
    ),
    pytest.param(
        "trigger: {path: '{id}/x/{id}'}\n" + _nodes(_END),
        "trigger.path: expected parameter names used once each, got 'id'",
        id="path-param-twice",
    ),
    pytest.param(
        "trigger: {methods: [POST, FETCH]}\n" + _nodes(_END),
        "trigger.methods[1]: expected one of GET, POST, PUT, PATCH, DELETE, HEAD, got 'FETCH'",
        id="method",
    ),
    pytest.param(
        "trigger: {mode: later}\n" + _nodes(_END),
        "trigger.mode: expected one of async, sync, got 'later'",
        id="mode",
    ),
    pytest.param(
        "trigger: {type: cron}\n" + _nodes(_END),
        "trigger.type: expected one of webhook, got 'cron'",
        id="trigger-type",
    ),
    pytest.param(
        "trigger: {max_body: 1 gallon}\n" + _nodes(_END),
        "trigger.max_body: expected a size such as '1MiB', got '1 gallon'",
        id="size",
    ),
    pytest.param(
        "trigger: {verify: [{githb: {secret: x}}]}\n" + _nodes(_END),
        "trigger.verify[0].githb: expected a scheme, one of github, gitlab, stripe, slack, "
        "standard_webhooks, shopify, twilio, dingtalk, wecom, feishu, dingtalk_events, hmac, "
        "basic, bearer, header, jwt, got 'githb'",
        id="verify-scheme",
    ),
    pytest.param(
        "trigger: {verify: [{github: {secret: x}, gitlab: {secret: y}}]}\n" + _nodes(_END),
        "trigger.verify[0]: expected a one-key mapping such as {github: {secret: env:NAME}}, "
        "got {'github': {'secret': 'x'}, 'gitlab': {'secret': 'y'}}",
        id="verify-two-keys",
    ),
    pytest.param(
        "trigger: {verify: [{github: {secrets: [a, 'env:MISSING_SECRET']}}]}\n" + _nodes(_END),
        "trigger.verify[0].github.secrets[1]: expected the environment variable "
        "MISSING_SECRET to be set, got 'env:MISSING_SECRET'",
        id="verify-env",
    ),
    pytest.param(
        "trigger: {ip_allow: [10.0.0.0/8, 10.0.0.300]}\n" + _nodes(_END),
        "trigger.ip_allow[1]: expected an IP address or network such as '10.0.0.0/8' or "
        "'::1', got '10.0.0.300'",
        id="ip-allow",
    ),
    pytest.param(
        "trigger: {idempotency: {ttl: forever}}\n" + _nodes(_END),
        "trigger.idempotency.ttl: expected a duration such as '5s', got 'forever'",
        id="idempotency-ttl",
    ),
    pytest.param(
        "trigger: {response: {status: 700}}\n" + _nodes(_END),
        "trigger.response.status: expected an integer from 100 to 599, got 700",
        id="response-status",
    ),
    pytest.param(
        "trigger: {response: {stauts: 200}}\n" + _nodes(_END),
        "trigger.response.stauts: expected a known field (one of: body, headers, status)",
        id="response-typo",
    ),
    pytest.param(
        "concurrency: {max: 0}\n" + _nodes(_END),
        "concurrency.max: expected an integer >= 1, got 0",
        id="concurrency-max",
    ),
    pytest.param(
        "concurrency: {queue: true}\n" + _nodes(_END),
        "concurrency.queue: expected an integer >= 1, got True",
        id="bool-is-not-int",
    ),
    pytest.param(
        _nodes("- {key: 1abc, type: end}"),
        "nodes[0].key: expected a node key matching [A-Za-z_][A-Za-z0-9_-]*, got '1abc'",
        id="node-key",
    ),
    pytest.param(
        _nodes("- {key: a, type: end, timout: 5s}"),
        "nodes[0].timout: expected a known field "
        "(one of: concurrency, key, output, retry, status, timeout, title, type)",
        id="node-unknown-field",
    ),
    pytest.param(
        _nodes("- {key: a, type: end, concurrency: 0}"),
        "nodes[0].concurrency: expected an integer >= 1, got 0",
        id="node-concurrency",
    ),
    pytest.param(
        _nodes(_END, "- {key: c, type: condition, if: {exists: [1]}, else: [{key: a, type: end}]}"),
        "nodes[1].else[0].key: expected a node key unique in the workflow (also at "
        "nodes[0].key), got 'a'",
        id="duplicate-node-key",
    ),
    pytest.param(
        _nodes("- {key: a, type: end, status: done}"),
        "nodes[0].status: expected one of succeeded, failed, got 'done'",
        id="end-status",
    ),
    pytest.param(
        _nodes("- {key: c, type: condition, if: {exists: [1]}, then: {key: t, type: end}}"),
        "nodes[0].then: expected a list, got {'key': 't', 'type': 'end'}",
        id="branch-not-a-list",
    ),
    pytest.param(
        "- key: wf\n",
        "expected a workflow definition (a mapping), got [{'key': 'wf'}]",
        id="not-a-mapping",
    ),
    pytest.param(
        "key: wf\nkey: other\n" + _nodes(_END)[8:],
        "expected valid YAML; line 2, column 1: duplicate key 'key'",
        id="yaml-duplicate-key",
    ),
    pytest.param(
        "key: wf\nnodes:\n  - key: a\n   type: end\n",
        "expected valid YAML; line 4, column 4: "
        "expected <block end>, but found '<block mapping start>'",
        id="yaml-syntax",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_DEFINITIONS)
def test_bad_definition_is_refused_with_file_field_and_expectation(text: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_workflow_text(text, source="workflows/bad.yaml", env={})
    assert str(caught.value) == f"workflows/bad.yaml: {message}"


def test_unknown_node_type_lists_the_known_ones() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_workflow_text(_nodes("- {key: a, type: nope}"), source="w.yaml", env={})
    known = ", ".join(sorted(NODE_TYPES))
    assert (
        str(caught.value)
        == f"w.yaml: nodes[0].type: expected a node type (one of: {known}), got 'nope'"
    )
    assert {"condition", "end", "response", "set"} <= set(NODE_TYPES)


def test_bad_template_names_its_field() -> None:
    text = "concurrency: {order_by: '{{$nope.id}}'}\n" + _nodes(_END)
    with pytest.raises(DefinitionError) as caught:
        load_workflow_text(text, source="w.yaml", env={})
    assert caught.value.path == "concurrency.order_by"
    assert str(caught.value).startswith("w.yaml: concurrency.order_by: expected a valid template")


def test_bad_comparison_names_its_field() -> None:
    text = _nodes("- {key: c, type: condition, if: {equals: [1, 1]}}")
    with pytest.raises(DefinitionError) as caught:
        load_workflow_text(text, source="w.yaml", env={})
    assert caught.value.path == "nodes[0].if"
    assert "got 'equals'" in str(caught.value)


def test_json_text_loads_and_json_errors_give_the_line() -> None:
    text = '{"key": "j", "nodes": [{"key": "a", "type": "end"}]}'
    assert load_workflow_text(text, source="api.json", env={}).key == "j"
    with pytest.raises(DefinitionError, match=r"^bad\.json: expected valid JSON; line 2"):
        load_workflow_text('{"key": "j",\n "nodes": [}', source="bad.json", env={})


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(textwrap.dedent(text))


def test_one_bad_file_never_stops_the_others(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "key: a\nnodes: [{key: x, type: end}]\n")
    _write(tmp_path, "b.yml", "key: b\nnodes: [{key: x, type: end, timeout: soon}]\n")
    _write(tmp_path, "c.json", '{"key": "c", "nodes": [{"key": "x", "type": "end"}]}')
    _write(tmp_path, "notes.txt", "not a workflow")
    _write(tmp_path, ".editor-swap.yaml", "{{{")

    result = load_workflows(tmp_path, env={})

    assert [w.key for w in result.workflows] == ["a", "c"]
    assert [(e.source, e.path) for e in result.errors] == [
        (str(tmp_path / "b.yml"), "nodes[0].timeout")
    ]
    assert result.workflows[0].text == "key: a\nnodes: [{key: x, type: end}]\n"


def test_same_key_in_two_files_is_an_error_of_the_later(tmp_path: Path) -> None:
    _write(tmp_path, "1.yaml", "key: same\ntrigger: {path: one}\nnodes: [{key: x, type: end}]\n")
    _write(tmp_path, "2.yaml", "key: same\ntrigger: {path: two}\nnodes: [{key: x, type: end}]\n")

    result = load_workflows(tmp_path, env={})

    assert [w.source for w in result.workflows] == [str(tmp_path / "1.yaml")]
    assert [str(e) for e in result.errors] == [
        f"{tmp_path / '2.yaml'}: key: expected a key not used by {tmp_path / '1.yaml'}, got 'same'"
    ]


@pytest.mark.parametrize(
    ("first", "second", "conflict"),
    [
        ("hooks/{x}", "hooks/{y}", True),
        ("/hooks/a", "hooks/a/", True),
        ("a/{x}", "{y}/b", True),
        ("github/push", "github/{repo}", False),
        ("hooks/a", "hooks/b", False),
        ("hooks/{x}", "hooks/{x}/more", False),
    ],
)
def test_colliding_routes_are_an_error_of_the_later_file(
    tmp_path: Path, first: str, second: str, conflict: bool
) -> None:
    _write(
        tmp_path,
        "1.yaml",
        f"key: one\ntrigger: {{path: '{first}'}}\nnodes: [{{key: x, type: end}}]\n",
    )
    _write(
        tmp_path,
        "2.yaml",
        f"key: two\ntrigger: {{path: '{second}'}}\nnodes: [{{key: x, type: end}}]\n",
    )

    result = load_workflows(tmp_path, env={})

    assert [w.key for w in result.workflows] == (["one"] if conflict else ["one", "two"])
    assert [(e.source, e.path) for e in result.errors] == (
        [(str(tmp_path / "2.yaml"), "trigger.path")] if conflict else []
    )


def test_same_path_with_other_methods_does_not_collide(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "1.yaml",
        "key: one\ntrigger: {path: p, methods: [GET]}\nnodes: [{key: x, type: end}]\n",
    )
    _write(
        tmp_path,
        "2.yaml",
        "key: two\ntrigger: {path: p, methods: [POST]}\nnodes: [{key: x, type: end}]\n",
    )
    _write(
        tmp_path,
        "3.yaml",
        "key: three\ntrigger: {path: p, methods: [PUT, GET]}\nnodes: [{key: x, type: end}]\n",
    )

    result = load_workflows(tmp_path, env={})

    assert [w.key for w in result.workflows] == ["one", "two"]
    assert len(result.errors) == 1
    assert "one in" in str(result.errors[0])
    assert "for GET" in str(result.errors[0])


def test_missing_folder_is_one_error(tmp_path: Path) -> None:
    result = load_workflows(tmp_path / "nope", env={})
    assert result.workflows == ()
    assert [e.source for e in result.errors] == [str(tmp_path / "nope")]


# -- nothing written to outlast its workflow ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "timeout: 5m\n"
            + _nodes(_END, "- {key: b, type: end}", "- {key: pause, type: delay, duration: 10m}"),
            "nodes[2].duration: expected at most the workflow's timeout (5m), got '10m'",
            id="delay",
        ),
        pytest.param(
            _nodes("- {key: pause, type: delay, duration: 301}"),
            "nodes[0].duration: expected at most the workflow's timeout (5m), got 301",
            id="delay-default-workflow-timeout",
        ),
        pytest.param(
            "timeout: 10s\n" + _nodes("- {key: a, type: set, values: {x: 1}, timeout: 11s}"),
            "nodes[0].timeout: expected at most the workflow's timeout (10s), got '11s'",
            id="node-timeout",
        ),
        pytest.param(
            "timeout: 1m\n"
            + _nodes(
                "- key: each",
                "  type: loop",
                "  items: 3",
                "  body:",
                "    - key: c",
                "      type: condition",
                "      if: {exists: [1]}",
                "      then: [{key: pause, type: delay, duration: 2m}]",
            ),
            "nodes[0].body[0].then[0].duration: expected at most the workflow's timeout (1m), "
            "got '2m'",
            id="nested-delay",
        ),
        pytest.param(
            "timeout: 1m\n"
            + _nodes(
                "- key: both",
                "  type: parallel",
                "  branches: [[{key: a, type: end}], [{key: b, type: end, timeout: 90s}]]",
            ),
            "nodes[0].branches[1][0].timeout: expected at most the workflow's timeout (1m), "
            "got '90s'",
            id="nested-timeout",
        ),
        pytest.param(
            "timeout: 1m\n" + _nodes("- {key: pause, type: delay, duration: 30s, timeout: 2m}"),
            "nodes[0].timeout: expected at most the workflow's timeout (1m), got '2m'",
            id="delay-timeout",
        ),
    ],
)
def test_a_node_written_to_outlast_its_workflow_is_refused(text: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        hookline.load_workflow_text(text, source="w.yaml", env={})
    assert str(caught.value) == f"w.yaml: {message}"


def test_defaults_templates_and_equal_durations_are_within_the_workflow() -> None:
    text = "timeout: 10s\n" + _nodes(
        "- {key: a, type: set, values: {x: 1}}",  # its default 30s timeout is not written
        "- {key: b, type: delay, duration: 10s, timeout: 10s}",
        "- {key: c, type: delay, duration: '{{$context.data.wait}}'}",  # checked as it runs
        "- {key: d, type: delay, duration: 1s}",  # no timeout of its own: inf, not written
    )

    workflow = hookline.load_workflow_text(text, source="w.yaml", env={})

    assert [node.key for node in workflow.walk()] == ["a", "b", "c", "d"]


class _AnyEnv(Mapping[str, str]):
    """Every variable is set: the examples' secrets come from the Makefile."""

    def __getitem__(self, name: str) -> str:
        # A WeCom EncodingAESKey must be 43 base64 characters to load.
        return "A" * 43 if name.endswith("ENCODING_AES_KEY") else "stand-in"

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@pytest.mark.parametrize("folder", ["examples/workflows", "benchmarks/workflows"])
def test_the_shipped_workflows_still_load(folder: str) -> None:
    path = Path(__file__).parent.parent.parent / folder

    result = hookline.load_workflows(path, env=_AnyEnv())

    assert [str(error) for error in result.errors] == []
    assert result.workflows


# -- custom node types --------------------------------------------------------------------


async def _double(call: hookline.NodeCall) -> object:
    return call.params["value"] * 2


_CUSTOM = _nodes("- {key: d, type: double, value: '{{$context.data.n}}', title: Twice}")


def test_the_loaders_take_custom_node_types(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(_CUSTOM)
    nodes = {"double": _double}

    from_text = hookline.load_workflow_text(_CUSTOM, source="w.yaml", env={}, nodes=nodes)
    from_data = hookline.load_workflow_data(
        {"key": "wf", "nodes": [{"key": "d", "type": "double", "value": 1}]},
        source="w.yaml",
        env={},
        nodes=nodes,
    )
    from_folder = hookline.load_workflows(tmp_path, env={}, nodes=nodes)

    assert [(n.key, n.type, n.title) for n in from_text.walk()] == [("d", "double", "Twice")]
    assert [n.type for n in from_data.walk()] == ["double"]
    assert (from_folder.errors, [w.key for w in from_folder.workflows]) == ((), ["wf"])


def test_without_the_custom_types_the_definition_is_refused(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(_CUSTOM)

    result = hookline.load_workflows(tmp_path, env={})

    (error,) = result.errors
    known = ", ".join(sorted(NODE_TYPES))
    assert str(error) == (
        f"{tmp_path / 'w.yaml'}: nodes[0].type: expected a node type (one of: {known}), "
        "got 'double'"
    )


def test_an_unknown_type_lists_the_custom_ones_too() -> None:
    with pytest.raises(DefinitionError) as caught:
        hookline.load_workflow_text(
            _nodes("- {key: a, type: tripel}"), source="w.yaml", env={}, nodes={"triple": _double}
        )
    known = ", ".join(sorted([*NODE_TYPES, "triple"]))
    assert caught.value.expected == f"a node type (one of: {known})"


def test_a_bad_template_in_a_custom_node_names_its_field() -> None:
    text = _nodes("- {key: d, type: double, value: {deep: ['{{$nope}}']}}")
    with pytest.raises(DefinitionError) as caught:
        hookline.load_workflow_text(text, source="w.yaml", env={}, nodes={"double": _double})
    assert caught.value.path == "nodes[0].value"
    assert "expected a valid template" in str(caught.value)


def test_a_custom_type_may_not_take_a_built_in_name() -> None:
    with pytest.raises(ValueError, match="node type 'http' is built in"):
        hookline.load_workflow_text(_CUSTOM, source="w.yaml", env={}, nodes={"http": _double})
