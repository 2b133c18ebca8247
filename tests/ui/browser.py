"""Headless Chromium for the viewer's tests: Debian's `chromium`, driven by Playwright.

Playwright's own browser download (`playwright install`) is never used: the
tests drive the system browser `.ci/run` installs with apt. Without it they
skip, except under `CI=true`, where a missing browser is a failure (as a missing
PostgreSQL is, see `tests/pg_cluster.py`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM_PATHS: Final = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """The system Chromium; skips the test (fails it in CI) when there is none."""
    for candidate in (shutil.which("chromium"), *CHROMIUM_PATHS):
        if candidate and Path(candidate).is_file():
            return candidate
    reason = "no chromium on PATH or in /usr/bin"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run the browser tests (apt-get install chromium)")
    pytest.skip(f"{reason} (apt-get install chromium)")


@asynccontextmanager
async def launched_chromium() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS), timeout=30_000
        )
        try:
            yield browser
        finally:
            await browser.close()
