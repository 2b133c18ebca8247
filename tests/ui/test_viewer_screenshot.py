"""The README's screenshot, taken by this test: `make screenshot` writes docs/viewer.png.

Without `EXECGATE_UI_SCREENSHOT` the picture goes to a temporary directory, so
that the suite still proves the page renders the demo's completed execution.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.ui.viewer_stack import Viewer

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


async def test_screenshot_of_a_completed_execution(viewer: Viewer, tmp_path: Path) -> None:
    target = Path(os.environ.get("EXECGATE_UI_SCREENSHOT") or tmp_path / "viewer.png")
    await viewer.sign_in()
    await viewer.open_execution(viewer.execution("completed_10"))
    page = viewer.page
    await expect(page.locator("#documents > li")).to_have_count(10)
    first = page.locator("#documents > li").first
    await first.locator("summary").click()
    await expect(first.locator("pre.json")).to_contain_text("document_id")
    await page.set_viewport_size({"width": 1200, "height": 1000})
    png = await page.screenshot(path=str(target), full_page=True)
    assert len(png) > 10_000
    viewer.assert_clean()
