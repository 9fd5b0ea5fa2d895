"""Hot reload under a running ``hookline serve``: a file is edited, broken and fixed
while the server answers, and each change shows in answers and in /api/workflows."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._server import ServerProcess

CONFIG = """\
server: {bind: "127.0.0.1:0"}
workflows: ./workflows
"""


def greeting(word: str) -> str:
    return f"""\
key: greet
trigger: {{path: greet, mode: sync}}
nodes:
  - {{key: reply, type: response, status: 200, body: {{word: {word}}}}}
"""


def write(folder: Path, text: str) -> None:
    # As editors save: a whole new file renamed over the old one.
    partial = folder / ".greet.yaml.swp"
    partial.write_text(text)
    partial.replace(folder / "greet.yaml")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    write(folder, greeting("one"))
    (tmp_path / "hookline.yaml").write_text(CONFIG)
    process = ServerProcess(tmp_path / "hookline.yaml", tmp_path / "hookline.db")
    yield process, folder
    if process.process.poll() is None:
        process.process.kill()


def wait_until(client: httpx.Client, check: object, *, within: float) -> float:
    """Seconds until ``check(client)`` is true; fails past ``within``."""
    assert callable(check)
    start = time.monotonic()
    while not check(client):
        assert time.monotonic() - start < within, "the change did not show in time"
        time.sleep(0.02)
    return time.monotonic() - start


def answers(word: str) -> object:
    def check(client: httpx.Client) -> bool:
        answer = client.post("/api/webhooks/greet", json={})
        return answer.status_code == 200 and answer.json() == {"word": word}

    return check


def listed_invalid(*, invalid: bool) -> object:
    def check(client: httpx.Client) -> bool:
        (listed,) = client.get("/api/workflows").json()["workflows"]
        return bool(listed["invalid"] is invalid)

    return check


def test_a_file_edited_broken_fixed_and_deleted_under_a_running_server(
    served: tuple[ServerProcess, Path],
) -> None:
    server, folder = served
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert answers("one")(client)

        write(folder, greeting("two"))
        took = wait_until(client, answers("two"), within=2.0)
        print(f"an edited file served within {took:.2f} s")

        write(folder, greeting("two").replace("type: response", "type: responce"))
        wait_until(client, listed_invalid(invalid=True), within=2.0)
        assert answers("two")(client)  # the previous version keeps serving
        listed = client.get("/api/workflows").json()
        (workflow,) = listed["workflows"]
        assert [e["field"] for e in workflow["errors"]] == ["nodes[0].type"]
        assert listed["errors"][0]["source"].endswith("greet.yaml")
        assert "invalid" in client.get("/ui/").text

        write(folder, greeting("three"))
        wait_until(client, answers("three"), within=2.0)
        assert listed_invalid(invalid=False)(client)
        versions = client.get("/api/workflows/greet/versions").json()["versions"]
        assert [v["version"] for v in versions] == [3, 2, 1]

        (folder / "greet.yaml").unlink()
        wait_until(client, lambda c: c.get("/api/workflows/greet").status_code == 404, within=2.0)
        assert client.post("/api/webhooks/greet", json={}).status_code == 404

        # SIGHUP loads the folder too (the watcher would as well: either is fine here).
        write(folder, greeting("four"))
        server.process.send_signal(signal.SIGHUP)
        wait_until(client, answers("four"), within=2.0)
    assert server.stop(signal.SIGTERM) == 0
