"""Fixtures of the viewer's browser tests: a Chromium and the seeded stack with a page on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from playwright.async_api import Browser

from tests.running_service import RunningService
from tests.ui.browser import launched_chromium
from tests.ui.viewer_stack import Viewer, viewer_on


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launched_chromium() as launched:
        yield launched


@pytest_asyncio.fixture
async def viewer(browser: Browser, running_service: RunningService) -> AsyncIterator[Viewer]:
    async with viewer_on(browser, running_service) as running:
        yield running
