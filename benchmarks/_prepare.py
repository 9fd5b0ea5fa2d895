"""``prepare`` and ``cleanup``: the benchmark workflows on a deployed hookline, through
its admin API alone.

``prepare`` generates a secret for the run, puts each workflow of
``benchmarks/workflows/`` (but the in-process one) under the key ``bench-<name>`` with
that secret written into its ``verify`` entries instead of ``env:BENCH_SECRET``, and
keeps what it deployed (the target, the secret, each key and path) in
``<results>/prepared/<host>-<port>.json``: git-ignored, read back by ``--target`` runs
and by ``cleanup``. Nothing on the server is restarted and no variable is set there;
the definitions are stored (and written into its workflows folder) like any other
workflow put through the API, until ``cleanup`` deletes them.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

import attrs
import httpx

from ._hookline import WORKFLOWS
from ._spec import RequestSpec

__all__ = [
    "KEY_PREFIX",
    "PrepareError",
    "Prepared",
    "cleanup",
    "load_prepared",
    "prepare",
    "prepared_path",
]

#: Every key this module puts on a server starts with this.
KEY_PREFIX = "bench-"
#: In process only: nothing to deploy.
_NOT_SERVED = frozenset({"embedded-5"})
_ENV_SECRET = "env:BENCH_SECRET"
_WEBHOOKS = "/api/webhooks/"
_KEY_LINE = re.compile(r"^key:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
_PATH_LINE = re.compile(r"^  path:[ \t]*(\S+)[ \t]*$", re.MULTILINE)


class PrepareError(Exception):
    """The target cannot be prepared or cleaned up (unreachable, key refused...)."""


@attrs.frozen
class Prepared:
    """What ``prepare`` deployed on ``target``: ``workflows`` maps each deployed key to
    its webhook path (``bench/async``), ``secret`` is what the signed ones verify."""

    target: str
    secret: str
    prepared_at: str
    workflows: Mapping[str, str]

    def request(self, spec: RequestSpec) -> RequestSpec | None:
        """``spec`` as sent to the target (its secret), or None when the workflow
        that serves ``spec.path`` was not deployed there."""
        path = spec.path.removeprefix(_WEBHOOKS)
        if path not in self.workflows.values():
            return None
        if spec.github_secret is None:
            return spec
        return attrs.evolve(spec, github_secret=self.secret)

    def workflow_key(self, spec: RequestSpec) -> str | None:
        path = spec.path.removeprefix(_WEBHOOKS)
        return next((key for key, found in self.workflows.items() if found == path), None)


def normalize_target(target: str) -> str:
    return target.rstrip("/")


def prepared_path(results: Path, target: str) -> Path:
    """Where the secret and keys deployed on ``target`` are kept."""
    url = urllib.parse.urlsplit(normalize_target(target))
    host = re.sub(r"[^A-Za-z0-9.]+", "_", url.hostname or "target")
    port = url.port or (443 if url.scheme == "https" else 80)
    return results / "prepared" / f"{host}-{port}.json"


def load_prepared(results: Path, target: str) -> Prepared | None:
    """What ``prepare`` recorded for ``target`` (None: it was never prepared from here)."""
    path = prepared_path(results, target)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Prepared(data["target"], data["secret"], data["prepared_at"], data["workflows"])


def bench_definition(text: str, secret: str) -> tuple[str, str, str]:
    """``(key, path, text)`` of a benchmark workflow as deployed: the key prefixed with
    ``bench-`` (once) and ``env:BENCH_SECRET`` replaced by ``secret``."""
    key_match = _KEY_LINE.search(text)
    path_match = _PATH_LINE.search(text)
    if key_match is None or path_match is None:
        raise PrepareError("a benchmark workflow has no top-level key or trigger path")
    key = key_match.group(1)
    if not key.startswith(KEY_PREFIX):
        key = KEY_PREFIX + key
    text = _KEY_LINE.sub(f"key: {key}", text, count=1)
    # The secret is URL-safe base64: no YAML quoting needed.
    return key, path_match.group(1), text.replace(_ENV_SECRET, secret)


def _client(target: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=normalize_target(target), headers=headers, timeout=30)


def _problem(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:300]
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title") or ""
        field = f" (field {body['field']})" if body.get("field") else ""
        return f"{detail}{field}"
    return answer.text[:300]


def _refused(answer: httpx.Response, what: str) -> PrepareError:
    if answer.status_code in (401, 403):
        return PrepareError(
            f"{what}: the admin API answered {answer.status_code}: pass an admin key with "
            "--key (or set HOOKLINE_ADMIN_KEY)"
        )
    return PrepareError(f"{what}: {answer.status_code} {_problem(answer)}")


def prepare(
    target: str, key: str | None, results: Path, *, workflows: Path = WORKFLOWS
) -> tuple[Prepared, list[str]]:
    """Deploy every benchmark workflow on ``target``; returns what was deployed and one
    line per workflow the server refused (a node type it lacks, say). Raises
    PrepareError when the server cannot be reached, refuses the key, or takes none."""
    secret = secrets.token_urlsafe(32)
    deployed: dict[str, str] = {}
    refused: list[str] = []
    with _client(target, key) as client:
        for file in sorted(workflows.glob("*.yaml")):
            if file.stem in _NOT_SERVED:
                continue
            bench_key, path, text = bench_definition(file.read_text(), secret)
            try:
                answer = client.put(
                    f"/api/workflows/{bench_key}",
                    content=text.encode(),
                    headers={"Content-Type": "application/yaml"},
                )
            except httpx.HTTPError as exc:
                raise PrepareError(f"{target} cannot be reached: {exc!r}") from exc
            if answer.status_code in (200, 201):
                deployed[bench_key] = path
            elif answer.status_code == 422:
                refused.append(f"{bench_key}: refused by the server: {_problem(answer)}")
            else:
                raise _refused(answer, f"PUT /api/workflows/{bench_key}")
    if not deployed:
        raise PrepareError("the server took none of the benchmark workflows: " + "; ".join(refused))
    prepared = Prepared(
        normalize_target(target),
        secret,
        datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        deployed,
    )
    kept = prepared_path(results, target)
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(attrs.asdict(prepared), indent=2) + "\n")
    kept.chmod(0o600)
    return prepared, refused


def cleanup(target: str, key: str | None, results: Path) -> list[str]:
    """Delete the workflows ``prepare`` put on ``target`` (and any other ``bench-``
    key there) and forget the secret; returns the keys deleted."""
    prepared = load_prepared(results, target)
    keys = set(prepared.workflows) if prepared else set()
    deleted: list[str] = []
    with _client(target, key) as client:
        try:
            listing = client.get("/api/workflows")
        except httpx.HTTPError as exc:
            raise PrepareError(f"{target} cannot be reached: {exc!r}") from exc
        if listing.status_code != 200:
            raise _refused(listing, "GET /api/workflows")
        keys |= {key for key in _listed_keys(listing.json()) if key.startswith(KEY_PREFIX)}
        for bench_key in sorted(keys):
            answer = client.delete(f"/api/workflows/{bench_key}")
            if answer.status_code == 204:
                deleted.append(bench_key)
            elif answer.status_code != 404:
                raise _refused(answer, f"DELETE /api/workflows/{bench_key}")
    prepared_path(results, target).unlink(missing_ok=True)
    return deleted


def _listed_keys(body: object) -> list[str]:
    items = body.get("workflows", body.get("items", [])) if isinstance(body, dict) else body
    if not isinstance(items, list):
        return []
    return [item["key"] for item in items if isinstance(item, dict) and "key" in item]
