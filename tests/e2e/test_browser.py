"""The web UI in headless Chromium (Debian's package, driven by Playwright): find a
failed execution, see the failed node highlighted with its error, replay it once the
outage is over, and see the new execution succeed; then filter a collection's records.

Set ``HOOKLINE_SCREENSHOTS=docs/img`` to refresh the README's screenshots.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import pytest
import trio

from hookline.definition import Fields
from hookline.errors import NodeError
from hookline.nodes._base import Job, NodeResult, NodeSpec
from hookline.nodes._registry import NodeListParser, register
from tests.conftest import StoreFactory
from tests.http.conftest import ACKED, FAILS, ORDERS, STEPS, running_server, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (scripts/install-chromium.sh installs it)",
)

# Services the test takes down and brings back.
_DOWN: set[str] = set()


@attrs.frozen
class OutageNode:
    """Calls a service that may be down (the test decides)."""

    service: str

    def branches(self) -> Sequence[Sequence[NodeSpec]]:
        return ()

    async def run(self, job: Job) -> NodeResult:
        if self.service in _DOWN:
            raise NodeError(f"{self.service} answered 503 Service Unavailable")
        return NodeResult(output={"deployed": True, "service": self.service})


@register("e2e_deploy")
def _parse_outage(fields: Fields, nodes: NodeListParser) -> OutageNode:
    return OutageNode(service=fields.string("service"))


PUSH = """
key: github-push
title: Deploy on push to main
trigger: {type: webhook, path: "github/{repo}"}
nodes:
  - {key: branch, type: set, values: {branch: "{{$context.data.ref}}"}}
  - key: is_main
    type: condition
    if: {equal: ["{{$nodes.branch.branch}}", "refs/heads/main"]}
    then:
      - {key: deploy, type: e2e_deploy, service: deploy-api}
      - {key: notify, type: set, values: {text: "deployed {{$context.params.repo}}"}}
    else:
      - {key: ignore, type: end, status: succeeded}
"""


@pytest.fixture(autouse=True)
def _services_up() -> Iterable[None]:
    yield
    _DOWN.clear()


def browse(url: str, shots: Path) -> str:
    """The operator's walk through the UI; returns the replayed execution's id."""
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            # Whatever the Content-Security-Policy blocks is a console error: the UI's own
            # scripts, styles and pictures must all get through.
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(f"{url}/ui/")
            expect(page.locator("tr[data-workflow='github-push']")).to_contain_text("enabled")
            page.screenshot(path=str(shots / "ui-workflows.png"), full_page=True)

            page.click("text=Executions")
            failed = page.locator("#executions tr.status-failed", has_text="github-push")
            expect(failed).to_have_count(1)
            page.screenshot(path=str(shots / "ui-executions.png"), full_page=True)
            failed.locator("a").click()

            node = page.locator("g.node[data-node='deploy']")
            expect(node).to_have_attribute("data-status", "failed")
            expect(node.locator("text.node-error")).to_contain_text("deploy-api answered 503")
            expect(page.locator("g.node[data-node='notify']")).to_have_attribute(
                "data-status", "not_run"
            )
            node.click()  # opens the node's jobs
            panel = page.locator("section#node-deploy")
            expect(panel.locator("pre.job-error")).to_be_visible()
            expect(panel.locator("pre.job-error")).to_contain_text("503 Service Unavailable")
            page.screenshot(path=str(shots / "ui-execution-failed.png"), full_page=True)
            # A node that succeeded: its job starts closed, and a click opens it.
            branch_job = page.locator("section#node-branch details")
            expect(branch_job).not_to_have_attribute("open", "")
            page.locator("g.node[data-node='branch']").click()
            expect(branch_job).to_have_attribute("open", "")
            expect(branch_job.locator("pre", has_text="refs/heads/main")).to_be_visible()

            _DOWN.clear()  # the outage is over
            page.click("button#replay")
            expect(page.locator("#execution-status")).to_have_text("succeeded", timeout=10_000)
            expect(page.locator("g.node[data-node='notify']")).to_have_attribute(
                "data-status", "succeeded"
            )
            page.screenshot(path=str(shots / "ui-execution-replayed.png"), full_page=True)
            replayed = str(page.url).rsplit("/", 1)[-1]

            page.click("text=Deliveries")
            expect(page.locator("#deliveries")).to_contain_text("rejected")
            page.screenshot(path=str(shots / "ui-deliveries.png"), full_page=True)

            # Collection records, filtered by a where operator.
            page.click("nav >> text=Collections")
            expect(page.locator("tr[data-collection='customers'] td.count")).to_have_text("3")
            page.click("text=customers")
            form = page.locator("#collection-filter")
            form.locator("input[name=field]").first.fill("plan")
            form.locator("select[name=op]").first.select_option("not_equal")
            form.locator("input[name=value]").first.fill("free")
            page.click("#apply-filter")
            expect(page.locator("#records tr[data-record]")).to_have_count(2)
            expect(page.locator("#records")).not_to_contain_text("Grace")
            assert [text for text in console if "Content Security Policy" in text] == []

            # Reflected XSS (issue 13, finding 3): the id is shown as text, nothing runs.
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{url}/ui/executions/<img src=x onerror=alert(1)>")
            expect(page.locator("#error-detail")).to_contain_text("<img src=x onerror=alert(1)>")
            page.goto(f"{url}/ui/executions?status=<img src=x onerror=alert(2)>")
            expect(page.locator("#error-detail")).to_contain_text("onerror=alert(2)")
            assert page.locator("img").count() == 0
            assert dialogs == []
            return replayed
        finally:
            browser.close()


async def test_find_a_failed_execution_and_replay_it(
    tmp_path: Path, make_store: StoreFactory
) -> None:
    shots = Path(os.environ.get("HOOKLINE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    store = make_store()
    async with running_server([PUSH, ORDERS, ACKED, STEPS, FAILS], store=store) as server:
        client = server.client
        for n in range(3):
            await client.post(f"/api/webhooks/orders/{n}", json={"n": n})
        await client.post("/api/webhooks/steps", json={"n": 12})
        await client.post("/api/webhooks/github/site", json={"ref": "refs/heads/dev"})
        await client.post("/api/webhooks/nowhere", json={})
        for name, plan in (("Ada", "pro"), ("Grace", "free"), ("Linus", "team")):
            await client.post(
                "/api/collections/customers/records", json={"name": name, "plan": plan}
            )
        await client.post(
            "/api/webhooks/orders/9", content=b"{", headers={"content-type": "application/json"}
        )
        _DOWN.add("deploy-api")
        first = (
            await client.post("/api/webhooks/github/site", json={"ref": "refs/heads/main"})
        ).json()
        await wait_until(lambda: server.engine.pending() == 0)

        with trio.fail_after(60):
            replayed = await trio.to_thread.run_sync(browse, server.url, shots)

        record = (await client.get(f"/api/executions/{replayed}")).json()
    assert replayed != first["execution_id"]
    assert record["status"] == "succeeded"
    assert record["workflow"] == "github-push"
    assert {p.name for p in shots.iterdir()} >= {"ui-workflows.png", "ui-execution-failed.png"}
