"""The whole stack for a browser test: the seeded service, the gateway and a page on it.

Everything the page asks for is recorded (URL of every request), and so is
everything that went wrong inside the page (console errors, uncaught
exceptions, Content-Security-Policy refusals), so that tests can assert that
the page stayed on the gateway, stayed clean, and never put the key in a URL
or in the gateway's access log.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from playwright.async_api import Browser, ConsoleMessage, Page, Request

from gateway.access_log import AccessLog
from gateway.app import build_app, start_site
from gateway.config import GatewayConfig
from tests.running_service import RunningService

PHONE: dict[str, int] = {"width": 375, "height": 740}
DESKTOP: dict[str, int] = {"width": 1200, "height": 900}


@dataclass
class Gateway:
    """The gateway under test; it can be stopped and started again on the same port."""

    config: GatewayConfig
    log: AccessLog
    port: int = 0
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        config = dataclasses.replace(self.config, port=self.port)
        self.runner, self.port = await start_site(build_app(config, access_log=self.log), config)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@dataclass
class Viewer:
    page: Page
    gateway: Gateway
    service: RunningService
    access_log: io.BytesIO
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.port}"

    @property
    def key(self) -> str:
        return self.service.demo.api_key

    def execution(self, name: str) -> str:
        return self.service.demo.executions[name]

    async def sign_in(self, namespace: str = "demo") -> None:
        await self.page.goto(f"{self.base_url}/ui/")
        await self.page.fill("#namespace", namespace)
        await self.page.fill("#api-key", self.key)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.wait_for_selector("#open-retriever")

    async def open_list(self, query: str = "") -> None:
        retriever = self.service.demo.retriever.id
        await self.page.goto(f"{self.base_url}/ui/#/retrievers/{retriever}{query}")
        await self.page.wait_for_selector("#list-summary, .error-box")

    async def open_execution(self, execution_id: str) -> None:
        retriever = self.service.demo.retriever.id
        await self.page.goto(
            f"{self.base_url}/ui/#/retrievers/{retriever}/executions/{execution_id}"
        )
        await self.page.wait_for_selector("#funnel-title, .detail .error-box")

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        """The same call through the REST API directly, for comparing with the page."""
        headers = {"Authorization": f"Bearer {self.key}", "X-Namespace": "demo"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, self.base_url + path, json=body, headers=headers) as response,
        ):
            assert response.status == 200, await response.text()
            return await response.json()

    def access_log_text(self) -> str:
        self.gateway.log.flush()
        return self.access_log.getvalue().decode()

    def assert_clean(self, *, expected_console_errors: int = 0) -> None:
        """Only the gateway was asked for anything; no key in a URL or a log line; no errors."""
        outside = [url for url in self.requests if not url.startswith(self.base_url + "/")]
        assert outside == [], f"requests outside the gateway: {outside}"
        assert not [url for url in self.requests if self.key in url]
        assert self.key not in self.access_log_text()
        assert self.page_errors == []
        refused = [text for text in self.console_errors if "Content Security Policy" in text]
        assert refused == []
        assert len(self.console_errors) <= expected_console_errors, self.console_errors


@asynccontextmanager
async def viewer_on(
    browser: Browser, service: RunningService, viewport: dict[str, int] = DESKTOP
) -> AsyncIterator[Viewer]:
    access_log = io.BytesIO()
    config = GatewayConfig(port=0, backend=service.address, shutdown_timeout_s=2.0)
    gateway = Gateway(config, AccessLog(access_log))
    await gateway.start()
    try:
        context = await browser.new_context(
            viewport=viewport,  # type: ignore[arg-type]
            locale="en-US",
            timezone_id="UTC",
            service_workers="block",
        )
        context.set_default_timeout(15_000)
        page = await context.new_page()
        viewer = Viewer(page, gateway, service, access_log)

        def on_request(request: Request) -> None:
            viewer.requests.append(request.url)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                viewer.console_errors.append(message.text)

        page.on("request", on_request)
        page.on("console", on_console)
        page.on("pageerror", lambda error: viewer.page_errors.append(str(error)))
        try:
            yield viewer
        finally:
            await context.close()
    finally:
        await gateway.stop()
