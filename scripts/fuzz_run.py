"""A long fuzz run over the webhook ingress and the admin API, with figures.

    PYTHONPATH=. .venv/bin/python scripts/fuzz_run.py [--examples 3000] [--admin-examples 30]

Starts a server (in process, 127.0.0.1, a SQLite store in a temporary folder) with the
webhooks of ``tests/http/test_fuzz_ingress.py``, throws Hypothesis-generated requests at
``/api/webhooks/`` (its strategies, plus lone surrogates, NaN and bodies past the size
limits), then runs schemathesis over the admin API's OpenAPI document. Afterwards it
reads every stored delivery and execution and checks that none is larger than its
limit: a refused body at most ``server.refused.keep_body``, an accepted one at most its
webhook's ``max_body``. Prints the figures as JSON; exit 1 on a 5xx, a problem answer
that is not problem+json, or an item past its limit (issue 13, "Done when").
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hookline.engine._refusal_limit import RefusalPolicy
from hookline.store._store import open_store
from tests.http import test_fuzz_ingress as fuzzing
from tests.http.test_verification_http import serving

HOSTILE_LIST = [
    b'{"n": "\\ud800"}',
    b'{"n": "x\\udfff", "m": [1, "\\ud83d"]}',
    b'{"ping": NaN}',
    b'{"n": 1e400}',
    b"[" * 5000 + b"]" * 5000,
    b"x" * 3000,  # past the github webhook's 2 KiB
    b"y" * 1_100_000,  # past the default 1 MiB
    b'{"big": "' + b"z" * 900_000 + b'"}',  # within 1 MiB: accepted where signed
]
HOSTILE_BODIES = st.sampled_from(HOSTILE_LIST)


def ingress(base_url: str, examples: int) -> dict[str, Any]:
    """Run ``examples`` generated requests; the statuses seen and the bad answers."""
    statuses: collections.Counter[int] = collections.Counter()
    bad: list[str] = []
    client = httpx.Client(base_url=base_url, timeout=30.0)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        method=fuzzing.methods,
        path=fuzzing.paths,
        query=fuzzing.queries,
        sent_headers=fuzzing.headers,
        content_type=st.sampled_from(fuzzing.CONTENT_TYPES) | st.text(max_size=30),
        body=fuzzing.bodies | HOSTILE_BODIES,
        signed=st.booleans(),
    )
    def case(  # noqa: PLR0917 (one argument per strategy, as Hypothesis gives them)
        method: str,
        path: str,
        query: dict[str, str],
        sent_headers: dict[str, bytes],
        content_type: str,
        body: bytes,
        signed: bool,
    ) -> None:
        all_headers = {k.encode(): v for k, v in sent_headers.items()}
        if content_type.isprintable() and content_type.isascii():
            all_headers[b"content-type"] = (content_type.strip() or "text/plain").encode()
        if signed:
            for scheme, key in (("github", fuzzing.SECRET), ("jwt", fuzzing.JWT_KEY)):
                made = fuzzing.sign(scheme, secret=key, body=body).headers
                all_headers.update({k.encode(): v.encode() for k, v in made.items()})
        answer = client.request(
            method,
            f"/api/webhooks/{path}",
            params=query,
            headers=all_headers,
            content=body if method not in {"GET", "HEAD"} else b"",
        )
        statuses[answer.status_code] += 1
        problem = answer.headers.get("content-type") == "application/problem+json"
        if answer.status_code >= 500 or (
            answer.status_code >= 400 and method != "HEAD" and not problem
        ):
            bad.append(f"{method} /api/webhooks/{path}: {answer.status_code} {answer.text[:200]}")

    with client:
        case()
        # Then every hostile body at every webhook, signed and not, with a JSON type.
        for body in HOSTILE_LIST:
            for path in ("github/x", "jwt", "twilio", "echo/n", "guarded", "keyed"):
                for signed in (False, True):
                    sent = {"content-type": "application/json", "x-key": "k"}
                    if signed:
                        for scheme, key in (("github", fuzzing.SECRET), ("jwt", fuzzing.JWT_KEY)):
                            sent.update(fuzzing.sign(scheme, secret=key, body=body).headers)
                    answer = client.post(f"/api/webhooks/{path}", content=body, headers=sent)
                    statuses[answer.status_code] += 1
                    if answer.status_code >= 500:
                        bad.append(f"POST /api/webhooks/{path}: {answer.status_code}")
    return {"requests": sum(statuses.values()), "statuses": dict(statuses), "bad": bad}


async def admin(base_url: str, examples: int, folder: Path) -> dict[str, Any]:
    """schemathesis over the admin API (webhook routes left out, as in the tests)."""
    found = Path(sys.executable).parent / "schemathesis"
    program = str(found) if found.exists() else shutil.which("schemathesis")
    if program is None:
        return {"skipped": "schemathesis is not installed"}
    command = [
        program, "run", f"{base_url}/api/openapi.json",
        "--checks", "not_a_server_error",
        "--exclude-path-regex", "webhooks",
        "--max-examples", str(examples),
        "--phases", "examples,fuzzing",
        "--seed", "13", "--no-shrink", "--workers", "1", "--request-timeout", "10",
    ]  # fmt: skip
    done = await trio.run_process(
        command, capture_stdout=True, capture_stderr=True, check=False, cwd=folder
    )
    output = done.stdout.decode(errors="replace")
    summary = [line for line in output.splitlines() if "passed" in line or "failed" in line]
    return {"exit": done.returncode, "summary": summary[-3:], "tail": output[-1500:]}


async def stored_sizes(store_url: str, keep_body: int) -> dict[str, Any]:
    """Every stored delivery's body against its limit."""
    store = open_store(store_url)
    limits = {"github": 2048}
    largest: dict[str, int] = collections.defaultdict(int)
    count: collections.Counter[str] = collections.Counter()
    over: list[str] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        cursor = None
        while True:
            page = await store.list_deliveries(limit=500, cursor=cursor)
            for record in page.items:
                count[record.verdict] += 1
                size = len(record.body)
                largest[record.verdict] = max(largest[record.verdict], size)
                limit = keep_body if record.verdict == "rejected" else 1024 * 1024
                if record.verdict != "rejected" and record.workflow in limits:
                    limit = limits[record.workflow]
                if size > limit:
                    over.append(f"{record.id} ({record.verdict}, {record.workflow}): {size}")
            cursor = page.cursor
            if cursor is None:
                break
        executions = await store.list_executions(limit=1)
        nursery.cancel_scope.cancel()
    return {
        "deliveries": dict(count),
        "largest_body": dict(largest),
        "over_limit": over,
        "executions_stored": bool(executions.items),
    }


async def main(examples: int, admin_examples: int) -> int:
    policy = RefusalPolicy()
    with tempfile.TemporaryDirectory(prefix="hookline-fuzz-") as name:
        folder = Path(name)
        url = f"sqlite:///{folder}/hookline.db"
        async with serving(fuzzing.HOOKS, store=open_store(url), refusals=policy) as server:
            figures = {"ingress": await trio.to_thread.run_sync(ingress, server.url, examples)}
            figures["admin"] = await admin(server.url, admin_examples, folder)
            health = await server.client.get("/healthz")
            figures["healthz_after"] = health.status_code
            figures["restarts"] = server.engine.statistics().supervisor.restarts
            await server.engine.store.flush()
        figures["stored"] = await stored_sizes(url, policy.keep_body)
    sys.stdout.write(json.dumps(figures, indent=2) + "\n")
    failed = (
        figures["ingress"]["bad"]
        or figures["stored"]["over_limit"]
        or figures["admin"].get("exit", 0) != 0
        or figures["healthz_after"] != 200
    )
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--admin-examples", type=int, default=30)
    args = parser.parse_args()
    sys.exit(trio.run(main, args.examples, args.admin_examples))
