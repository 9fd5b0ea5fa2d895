"""The workflow editor in headless Chromium: create a workflow, see a live error at its
line, fix it, save it, send it a test delivery and see the result, change it, compare
the versions, roll back, and see its charts once real deliveries came in.

Set ``HOOKLINE_SCREENSHOTS=docs/img`` to refresh the README's screenshots.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.http.conftest import ORDERS, running_server, wait_until

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (scripts/install-chromium.sh installs it)",
)

DRAFT = """\
key: greet
title: Greet a visitor
trigger:
  type: webhook
  path: greet
  mode: sync
nodes:
  - key: greeting
    type: sett
    values:
      text: "Hello, {{$context.data.name}}"
  - key: reply
    type: response
    status: 200
    body: {greeting: "{{$nodes.greeting.text}}"}
"""


def replace_text(page: Any, text: str) -> None:
    """Replace the editor's text as a paste would (typed into a contenteditable, leading
    spaces would arrive as no-break spaces)."""
    page.locator(".cm-content").click()
    page.evaluate(
        "text => { const view = window.hooklineEditorView;"
        " view.dispatch({changes: {from: 0, to: view.state.doc.length, insert: text}}); }",
        text,
    )


def author(url: str, shots: Path) -> None:
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(f"{url}/ui/workflows/new")
            expect(page.locator(".cm-editor")).to_be_visible()
            expect(page.locator("#draft-state")).to_have_text("valid")

            replace_text(page, DRAFT)
            # The server's check, shown at the line as you type.
            errors = page.locator("#draft-errors li")
            expect(errors).to_have_count(1)
            expect(errors.first).to_have_attribute("data-line", "9")
            expect(errors.first).to_contain_text("a node type")
            expect(page.locator("#draft-state")).to_have_text("invalid")
            expect(page.locator(".cm-lint-marker-error")).to_have_count(1)
            page.screenshot(path=str(shots / "ui-editor-error.png"), full_page=True)

            page.locator(".cm-line", has_text="type: sett").click()
            page.keyboard.press("End")
            page.keyboard.press("Backspace")
            expect(page.locator("#draft-state")).to_have_text("valid")
            expect(errors).to_have_count(0)
            expect(page.locator("#draft-tree g.node[data-node='reply']")).to_be_visible()
            page.screenshot(path=str(shots / "ui-editor.png"), full_page=True)

            page.click("button#save")
            expect(page.locator("p.flash")).to_have_text("saved greet as version 1")
            assert page.url.endswith("/ui/workflows/greet/edit")

            # A test delivery to what is in the editor: its tree fills in, its answer shows.
            page.fill("#test-body", '{"name": "Ada"}')
            page.click("button#send-test")
            expect(page.locator("#test-run-status")).to_have_text("succeeded", timeout=10_000)
            expect(page.locator("g.node[data-node='reply']")).to_have_attribute(
                "data-status", "succeeded"
            )
            expect(page.locator("#test-run-answer")).to_contain_text("Hello, Ada")
            page.screenshot(path=str(shots / "ui-test-run.png"), full_page=True)
            page.go_back()

            # A second version, then the diff and a rollback.
            replace_text(page, DRAFT.replace("sett", "set").replace("Hello, ", "Hi, "))
            expect(page.locator("#draft-state")).to_have_text("valid")
            page.click("button#save")
            expect(page.locator("p.flash")).to_have_text("saved greet as version 2")
            page.click("button#diff")
            expect(page.locator("#version-diff .del")).to_contain_text("Hello, ")
            expect(page.locator("#version-diff .add")).to_contain_text("Hi, ")
            page.screenshot(path=str(shots / "ui-editor-diff.png"), full_page=True)
            page.go_back()
            page.click("tr[data-version='1'] button.rollback")
            expect(page.locator("p.flash")).to_have_text("greet rolled back to version 1")
            expect(page.locator("tr[data-version='1']")).to_contain_text("current")

            # Real deliveries, then the workflow's charts drawn from their records.
            for name in ("Ada", "Grace"):
                answer = page.request.post(f"{url}/api/webhooks/greet", data={"name": name})
                assert answer.status == 200
            page.goto(f"{url}/ui/workflows/greet")
            hour = page.locator("#charts-greet section[data-window='hour']")
            expect(hour.locator(".total-deliveries")).to_have_text("2 deliveries")
            expect(hour.locator(".total-success")).to_have_text("100% succeeded")
            expect(hour.locator("#chart-deliveries-greet-hour polyline")).not_to_have_count(0)
            success = hour.locator("#chart-success-greet-hour").locator("polyline, circle")
            expect(success).not_to_have_count(0)
            page.screenshot(path=str(shots / "ui-workflow-charts.png"), full_page=True)
            page.click("text=Workflows")
            expect(
                page.locator("#charts-all section[data-window='day'] .total-deliveries")
            ).to_have_text("2 deliveries")
            assert [text for text in console if "Content Security Policy" in text] == []
        finally:
            browser.close()


async def test_create_a_workflow_in_the_editor(tmp_path: Path) -> None:
    shots = Path(os.environ.get("HOOKLINE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    async with running_server([ORDERS]) as server:
        with trio.fail_after(60):
            await trio.to_thread.run_sync(author, server.url, shots)
        assert "Hello, " in server.engine.workflows["greet"].text
        # The test run is not one of the server's executions: only the two deliveries are.
        executions = (await server.engine.store.list_executions(workflow="greet")).items
        assert len(executions) == 2
        answer = await server.client.post("/api/webhooks/greet", json={"name": "Ada"})
        assert answer.json() == {"greeting": "Hello, Ada"}
        await wait_until(lambda: server.engine.pending() == 0)
