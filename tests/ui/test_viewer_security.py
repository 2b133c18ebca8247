"""Values written by a hostile writer show as text and run nothing; the page stays on the gateway.

The payloads go in through the real write path (gRPC writer service → store),
come back through the REST API, and are rendered by the page: markup in a
document, a stage name, stage metadata, a warning or an error must neither run
script nor load anything (an `<img src=x>` would request `/ui/x`).
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.ui.viewer_stack import Viewer
from tests.ui.writes import writer_for

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

IMG = '<img src=x onerror="window.__pwned = 1">'
SCRIPT = "<script>window.__pwned = 2</script>"
SVG = "<svg onload=window.__pwned=3></svg>"
HOSTILE = IMG + SCRIPT + SVG


async def _nothing_ran(viewer: Viewer) -> None:
    page = viewer.page
    assert await page.evaluate("window.__pwned") is None
    # Only the page's own elements: no image, script, frame or foreign SVG from the data.
    assert (
        await page.evaluate(
            "document.querySelectorAll('#main img, #main script, #main iframe, #main [onerror], "
            "#main [onload]').length"
        )
        == 0
    )
    assert await page.evaluate("document.querySelectorAll('#main svg:not(.bar)').length") == 0
    assert not [url for url in viewer.requests if url.endswith("/x") or "/ui/x" in url]
    viewer.assert_clean()


async def test_a_hostile_completed_execution_shows_as_text(viewer: Viewer) -> None:
    async with writer_for(viewer.service) as writer:
        execution_id = await writer.start(total_stages=2)
        await writer.report(
            execution_id,
            f"search {IMG}",
            (100, 10),
            5.0,
            done=1,
            running=SCRIPT,
            metadata={"note": HOSTILE},
            error=IMG,
        )
        await writer.complete(
            execution_id,
            [
                {"document_id": HOSTILE, "score": 0.9, "payload": {"html": HOSTILE}},
                {"document_id": "plain", "score": 0.5, "payload": {"text": SCRIPT}},
            ],
            budget={"credits_used": 1, "max_credits": 2, "note": HOSTILE},
            warnings=[HOSTILE],
            total_time_ms=5.0,
        )
    await viewer.sign_in()
    await viewer.open_execution(execution_id)
    page = viewer.page
    await expect(page.locator("#documents > li")).to_have_count(2)
    assert await page.locator(".document-id").first.text_content() == HOSTILE
    assert await page.locator(".stage-name").first.text_content() == f"search {IMG}"
    await expect(page.locator(".warnings li")).to_have_text([HOSTILE])
    await expect(page.locator(".stage-error-text")).to_have_text(f"Stage error: {IMG}")
    # Open every disclosure so that every payload is rendered.
    for summary in await page.locator("#main details > summary").all():
        await summary.click()
    # Formatted on the disclosures' `toggle` events, which fire after the clicks.
    await expect(page.locator("#documents pre.json").first).to_contain_text("document_id")
    await expect(page.locator("#funnel pre.json").first).to_contain_text("note")
    first_payload = await page.locator("#documents pre.json").first.text_content()
    assert first_payload is not None
    assert HOSTILE.replace('"', '\\"') in first_payload
    metadata = await page.locator("#funnel pre.json").first.text_content()
    assert metadata is not None
    assert "<script>" in metadata
    await page.wait_for_timeout(300)  # an onerror would have fired by now
    await _nothing_ran(viewer)


async def test_a_hostile_error_message_shows_as_text(viewer: Viewer) -> None:
    async with writer_for(viewer.service) as writer:
        execution_id = await writer.start(total_stages=1)
        await writer.fail(execution_id, HOSTILE)
    await viewer.sign_in()
    await viewer.open_execution(execution_id)
    await expect(viewer.page.locator("#execution-error")).to_have_text(HOSTILE)
    await viewer.page.wait_for_timeout(300)
    await _nothing_ran(viewer)


async def test_hostile_ids_in_the_url_show_as_text(viewer: Viewer) -> None:
    await viewer.sign_in()
    page = viewer.page
    base = f"{viewer.base_url}/ui/"
    await page.goto(f"{base}#/retrievers/%3Cimg%20src%3Dx%20onerror%3Dwindow.__pwned%3D1%3E")
    await expect(page.locator(".error-box")).to_be_visible()
    await expect(page.locator("#crumbs")).to_contain_text("<img src=x")
    await page.wait_for_timeout(300)
    assert await page.evaluate("window.__pwned") is None
    assert await page.evaluate("document.querySelectorAll('img').length") == 0
    viewer.assert_clean(expected_console_errors=1)  # the API's 404 for that retriever


async def test_the_policy_refuses_inline_script(viewer: Viewer) -> None:
    """Proof that the CSP is in force: markup injected into the DOM cannot run script."""
    await viewer.sign_in()
    page = viewer.page
    await page.evaluate(
        """() => {
        const holder = document.createElement("div");
        holder.innerHTML = '<img src="data:," onload="window.__pwned = 4">';
        document.body.append(holder);
        const script = document.createElement("script");
        script.textContent = "window.__pwned = 5";
        document.body.append(script);
      }"""
    )
    await page.wait_for_timeout(300)
    assert await page.evaluate("window.__pwned") is None
    refused = [text for text in viewer.console_errors if "Content Security Policy" in text]
    assert len(refused) >= 2
