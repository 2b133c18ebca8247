"""Usable without a mouse and readable at phone width."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.running_service import RunningService
from tests.ui.viewer_stack import PHONE, Viewer, viewer_on

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


async def _focused(viewer: Viewer) -> str:
    return str(
        await viewer.page.evaluate(
            "(() => { const e = document.activeElement; const text = e.textContent.trim();"
            " return `${e.tagName.toLowerCase()}#${e.id}|${text.slice(0, 60)}`; })()"
        )
    )


async def test_sign_in_list_and_detail_with_the_keyboard_only(viewer: Viewer) -> None:
    page = viewer.page
    await page.goto(f"{viewer.base_url}/ui/")
    assert (await _focused(viewer)).startswith("input#namespace")
    await page.keyboard.type("demo")
    await page.keyboard.press("Tab")
    assert (await _focused(viewer)).startswith("input#api-key")
    await page.keyboard.type(viewer.key)
    await page.keyboard.press("Enter")
    await expect(page.locator("#open-retriever")).to_be_visible()
    await page.keyboard.press("Tab")
    assert (await _focused(viewer)).startswith("input#retriever")
    await page.keyboard.type(viewer.service.demo.retriever.name)
    await page.keyboard.press("Enter")
    await expect(page.locator("table.executions tbody tr")).to_have_count(5)
    # Focus moved to the new heading; tabbing reaches the filters, then the rows' links.
    assert (await _focused(viewer)).startswith("h1#|Executions")
    target = viewer.execution("completed_10")
    for _ in range(40):
        await page.keyboard.press("Tab")
        if (await _focused(viewer)).endswith(f"|{target}"):
            break
    else:
        pytest.fail("Tab never reached the execution's link")
    # The focused element is visibly marked.
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    await page.keyboard.press("Enter")
    await expect(page.locator("#funnel")).to_be_visible()
    assert (await _focused(viewer)).startswith("h1#|Execution")
    # A document's payload opens with the keyboard.
    for _ in range(60):
        await page.keyboard.press("Tab")
        if "doc_1000000" in await _focused(viewer):
            break
    else:
        pytest.fail("Tab never reached the first document")
    await page.keyboard.press("Enter")
    await expect(page.locator("#documents > li").first.locator("pre.json")).to_contain_text(
        '"document_id": "doc_1000000"'
    )
    viewer.assert_clean()


async def test_readable_at_phone_width(browser: Browser, running_service: RunningService) -> None:
    async with viewer_on(browser, running_service, viewport=PHONE) as viewer:
        page = viewer.page
        await viewer.sign_in()
        await viewer.open_list()
        await expect(page.locator("table.executions tbody tr")).to_have_count(5)
        no_sideways = "document.documentElement.scrollWidth <= window.innerWidth"
        assert await page.evaluate(no_sideways)
        # Rows become cards that name their columns.
        assert await page.locator("table.executions thead").is_hidden()
        for name in ("completed_1000", "failed"):
            await viewer.open_execution(viewer.execution(name))
            await expect(page.locator("#funnel")).to_be_visible()
            assert await page.evaluate(no_sideways), name
        viewer.assert_clean()
