"""An execution in flight updates on screen from the watch stream, without a reload.

A writer drives the execution through the real write path while the page is
open; the page must show every step, then the final documents, and say when
its connection to the gateway drops and comes back (resuming with
Last-Event-ID, so that a change made while it was away still arrives).
"""

from __future__ import annotations

import pytest
from playwright.async_api import Locator, expect

from tests.ui.viewer_stack import Viewer
from tests.ui.writes import Writer, writer_for

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


def _stage_value(viewer: Viewer, stage: str, index: int) -> Locator:
    return viewer.page.locator(f'#funnel > li[data-stage="{stage}"] .stage-counts data').nth(index)


async def _open_live(viewer: Viewer, writer: Writer, total_stages: int) -> str:
    execution_id = await writer.start(total_stages=total_stages)
    await viewer.sign_in()
    await viewer.open_execution(execution_id)
    await expect(viewer.page.locator("#live-status")).to_have_attribute("data-state", "live")
    # Set once: still there at the end only if the page was never reloaded.
    await viewer.page.evaluate("window.__sameDocument = true")
    return execution_id


async def test_a_running_execution_updates_on_screen(viewer: Viewer) -> None:
    page = viewer.page
    badge = page.locator(".overview .badge")
    async with writer_for(viewer.service) as writer:
        execution_id = await _open_live(viewer, writer, total_stages=2)
        await expect(badge).to_have_text("pending")

        await writer.report(execution_id, "search", (5000, 200), 12.5, done=0, running="search")
        await expect(badge).to_have_text("processing")
        await expect(_stage_value(viewer, "search", 0)).to_have_attribute("value", "5000")
        await expect(_stage_value(viewer, "search", 1)).to_have_attribute("value", "200")

        await writer.report(execution_id, "search", (5000, 250), 14.0, done=1, running="rerank")
        await expect(_stage_value(viewer, "search", 1)).to_have_attribute("value", "250")
        await expect(page.locator("#stages-progress")).to_have_text("1 of 2 completed")
        await expect(page.locator('#funnel > li[data-stage="rerank"]')).to_contain_text("running")

        await writer.report(execution_id, "rerank", (250, 3), 30.0, done=2)
        await expect(_stage_value(viewer, "rerank", 1)).to_have_attribute("value", "3")
        await writer.complete(
            execution_id,
            [{"document_id": f"doc_{rank}", "score": 1 - rank / 10} for rank in range(3)],
            budget={"credits_used": 2, "max_credits": 10},
            total_time_ms=44.0,
        )
        await expect(badge).to_have_text("completed")
        await expect(page.locator("#documents > li")).to_have_count(3)
        await expect(page.locator("#total-time")).to_have_attribute("value", "44")
        await expect(page.locator("#live-status")).to_have_attribute("data-state", "ended")
    # The page shows what the API answers now.
    retriever = viewer.service.demo.retriever.id
    final = await viewer.api("GET", f"/v1/retrievers/{retriever}/executions/{execution_id}")
    assert final["status"] == "completed"
    assert await page.evaluate("window.__sameDocument") is True
    viewer.assert_clean()


async def test_a_dropped_connection_is_shown_and_resumed(viewer: Viewer) -> None:
    page = viewer.page
    live = page.locator("#live-status")
    async with writer_for(viewer.service) as writer:
        execution_id = await _open_live(viewer, writer, total_stages=2)
        await writer.report(execution_id, "search", (900, 90), 5.0, done=1, running="rerank")
        await expect(_stage_value(viewer, "search", 0)).to_have_attribute("value", "900")

        await viewer.gateway.stop()
        await expect(live).to_have_attribute("data-state", "reconnecting")
        await expect(live).to_contain_text("Connection lost")
        # A change made while the page is away arrives after the reconnect.
        await writer.report(execution_id, "rerank", (90, 9), 7.0, done=2)
        await viewer.gateway.start()  # same port
        await expect(live).to_have_attribute("data-state", "live", timeout=30_000)
        await expect(_stage_value(viewer, "rerank", 1)).to_have_attribute("value", "9")
        await writer.complete(execution_id, [{"document_id": "d1", "score": 0.5}])
        await expect(page.locator(".overview .badge")).to_have_text("completed")
        await expect(live).to_have_attribute("data-state", "ended")
    assert await page.evaluate("window.__sameDocument") is True
    # While the gateway was down the browser logged the refused connections; nothing else.
    assert all("ERR_CONNECTION_REFUSED" in text for text in viewer.console_errors)
    viewer.console_errors.clear()
    viewer.assert_clean()
