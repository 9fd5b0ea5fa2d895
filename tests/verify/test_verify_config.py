"""Compiling ``verify`` lists: refusals that name the field, and how checks combine."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from hookline.engine._loader import load_workflow_text
from hookline.errors import DefinitionError, Forbidden, Unauthenticated
from hookline.verify import SignedRequest, Verifier, compile_verifiers


def compile_one(scheme: str, options: Any) -> None:
    compile_verifiers([Verifier(scheme, options)], source="wf.yaml", path="trigger.verify")


@pytest.mark.parametrize(
    ("scheme", "options", "field", "expected"),
    [
        ("github", {}, "secret", "a secret"),
        ("github", {"secret": 42}, "secret", "non-empty string"),
        ("github", {"secret": ""}, "secret", "non-empty"),
        ("github", {"secret": "a", "secrets": ["b"]}, "secrets", "not both"),
        ("github", {"secrets": []}, "secrets", "non-empty list"),
        ("github", {"secrets": ["ok", 5]}, "secrets[1]", "non-empty string"),
        ("github", {"secret": "s", "legacy_sha1": "yes"}, "legacy_sha1", "true or false"),
        ("github", {"secret": "s", "sekret": "t"}, "sekret", "a known field"),
        ("stripe", {"secret": "s", "tolerance": "soon"}, "tolerance", "a duration"),
        ("hmac", {"secret": "s"}, "header", "a header name"),
        ("hmac", {"secret": "s", "header": "X S"}, "header", "a header name"),
        ("hmac", {"secret": "s", "header": "X", "algorithm": "md5"}, "algorithm", "one of"),
        ("hmac", {"secret": "s", "header": "X", "encoding": "hexa"}, "encoding", "one of"),
        ("hmac", {"secret": "s", "header": "X", "signed": "{bod}"}, "signed", "template"),
        (
            "hmac",
            {"secret": "s", "header": "X", "signed": "{timestamp}.{body}"},
            "timestamp_header",
            "signed uses {timestamp}",
        ),
        (
            "hmac",
            {"secret": "s", "header": "X", "timestamp_header": "X-T"},
            "signed",
            "uses {timestamp}",
        ),
        ("hmac", {"secret": "s", "header": "X", "signed": "{id}{body}"}, "id_header", "{id}"),
        ("basic", {"username": "u"}, "password", "password"),
        ("basic", {"username": "u:v", "password": "p"}, "username", "without ':'"),
        ("basic", {"users": {"a": "p"}, "username": "u"}, "users", "not both"),
        ("basic", {"users": {}}, "users", "non-empty"),
        ("basic", {"users": {"a": 5}}, "users.a", "password"),
        ("basic", {"users": {"a:b": "p"}}, "users.a:b", "without ':'"),
        ("header", {"secret": "s"}, "name", "header name"),
        ("twilio", {"secret": ["a"]}, "secret", "auth token"),
    ],
)
def test_bad_options_name_the_field(
    scheme: str, options: dict[str, Any], field: str, expected: str
) -> None:
    with pytest.raises(DefinitionError) as refused:
        compile_one(scheme, options)
    assert refused.value.source == "wf.yaml"
    assert refused.value.path == f"trigger.verify[0].{scheme}.{field}"
    assert expected in refused.value.expected


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"trigger\.verify\[0\]\.hmac256"):
        compile_one("hmac256", {"secret": "s"})


def test_every_listed_check_must_pass() -> None:
    body = b'{"ok": true}'
    signature = "sha256=" + hmac.new(b"gh", body, hashlib.sha256).hexdigest()
    verification = compile_verifiers(
        [Verifier("github", {"secret": "gh"}), Verifier("bearer", {"secret": "tok"})],
        source="wf.yaml",
        path="trigger.verify",
    )
    both = {"x-hub-signature-256": signature, "authorization": "Bearer tok"}
    verification.verify(SignedRequest("POST", "https://h/x", both, body), 0)
    with pytest.raises(Unauthenticated):
        verification.verify(
            SignedRequest("POST", "https://h/x", {"x-hub-signature-256": signature}, body), 0
        )
    with pytest.raises(Forbidden):
        verification.verify(
            SignedRequest("POST", "https://h/x", {**both, "authorization": "Bearer x"}, body), 0
        )
    assert verification.secret_headers == {
        "x-hub-signature-256",
        "x-hub-signature",
        "authorization",
    }


def test_no_checks_admit_everything() -> None:
    verification = compile_verifiers([], source="wf.yaml", path="trigger.verify")
    assert verification.verify(SignedRequest("POST", "https://h/x", {}, b""), 0).claims is None


def test_env_secrets_from_a_loaded_workflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "from-the-environment")
    workflow = load_workflow_text(
        """
key: gh
trigger:
  type: webhook
  verify:
    - github: {secret: env:HOOK_SECRET}
nodes:
  - {key: done, type: end, status: succeeded}
""",
        source="gh.yaml",
    )
    verification = compile_verifiers(
        workflow.trigger.verify, source=workflow.source, path="trigger.verify"
    )
    body = b"{}"
    digest = hmac.new(b"from-the-environment", body, hashlib.sha256).hexdigest()
    request = SignedRequest(
        "POST", "https://h/x", {"x-hub-signature-256": f"sha256={digest}"}, body
    )
    verification.verify(request, 0)
