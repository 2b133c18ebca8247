"""The viewer's files as the gateway serves them: headers, caching, and what the files may hold.

No browser here (the `test_viewer_*.py` files beside this one drive one): these check
the HTTP side and, by reading the shipped files, the rules the page's security rests on.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from gateway.config import GatewayConfig
from gateway.ui.assets import STATIC_DIR, load_assets
from gateway.ui.routes import CONTENT_SECURITY_POLICY
from tests.support.gateway_harness import RunningGateway, running_gateway

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = sorted(STATIC_DIR.glob("*.js"))
IMPORT = re.compile(r"""^import\s.*?from\s+"\./([\w.]+)";$""", re.MULTILINE)


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[RunningGateway]:
    # No backend is needed to serve static files; nothing here calls it.
    config = GatewayConfig(port=0, backend="127.0.0.1:1", shutdown_timeout_s=1.0)
    async with running_gateway(config) as running:
        yield running


@pytest_asyncio.fixture
async def http(gateway: RunningGateway) -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(gateway.base_url, timeout=timeout) as session:
        yield session


@pytest.mark.asyncio
async def test_page_is_served_with_a_strict_policy(http: aiohttp.ClientSession) -> None:
    async with http.get("/ui/") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        body = await response.text()
        headers = response.headers
    assert "<title>execgate" in body
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["form-action"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.asyncio
async def test_every_file_has_its_type_and_revalidates_with_its_etag(
    http: aiohttp.ClientSession,
) -> None:
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for name, asset in load_assets().items():
        url = "/ui/" if name == "index.html" else f"/ui/{name}"
        async with http.get(url) as response:
            assert response.status == 200, name
            assert response.headers["ETag"] == asset.etag
            assert response.headers["Cache-Control"] == "no-cache"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "Content-Security-Policy" in response.headers
            assert await response.read() == asset.body
            if Path(name).suffix in types:
                assert response.content_type == types[Path(name).suffix]
        async with http.get(url, headers={"If-None-Match": asset.etag}) as response:
            assert response.status == 304
            assert await response.read() == b""
        async with http.get(url, headers={"If-None-Match": '"stale"'}) as response:
            assert response.status == 200


@pytest.mark.asyncio
async def test_if_none_match_is_compared_as_rfc_9110_says(http: aiohttp.ClientSession) -> None:
    etag = load_assets()["main.js"].etag
    for matching in (f'"stale", W/{etag}', "*"):
        async with http.get("/ui/main.js", headers={"If-None-Match": matching}) as response:
            assert response.status == 304, matching


@pytest.mark.asyncio
async def test_bare_prefix_redirects_and_unknown_files_are_the_usual_404(
    http: aiohttp.ClientSession,
) -> None:
    async with http.get("/ui", allow_redirects=False) as response:
        assert response.status == 308
        assert response.headers["Location"] == "/ui/"
    for path in ("/ui/nope.js", "/ui/../gateway/app.py", "/ui/assets.py", "/ui/static/main.js"):
        async with http.get(path) as response:
            assert response.status == 404, path
            body = await response.json()
            assert body["success"] is False
            assert body["error"]["code"] == "route_not_found"
    async with http.head("/ui/main.js") as response:
        assert response.status == 200


@pytest.mark.asyncio
async def test_the_viewer_can_be_turned_off() -> None:
    config = GatewayConfig(port=0, backend="127.0.0.1:1", shutdown_timeout_s=1.0, ui=False)
    async with (
        running_gateway(config) as gateway,
        aiohttp.ClientSession(gateway.base_url) as session,
        session.get("/ui/main.js") as response,
    ):
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "route_not_found"


def test_the_page_has_no_inline_code_and_loads_only_its_own_files() -> None:
    page = (STATIC_DIR / "index.html").read_text()
    assert "<style" not in page
    assert " style=" not in page
    assert re.findall(r"<script[^>]*>", page) == ['<script type="module" src="main.js">']
    assert re.search(r"\son[a-z]+=", page) is None
    for reference in re.findall(r'(?:src|href)="([^"]+)"', page):
        if reference.startswith("#"):
            continue
        assert (STATIC_DIR / reference).is_file(), reference


def test_modules_import_only_shipped_modules_and_never_parse_html() -> None:
    served = set(load_assets())
    for script in SCRIPTS:
        source = script.read_text()
        for imported in IMPORT.findall(source):
            assert imported in served, f"{script.name} imports {imported}"
        assert not re.search(r"\bimport\s*\(", source), script.name  # no dynamic loading
        # Values become text nodes and attributes; nothing is ever parsed as markup or code.
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{script.name} uses {sink}"
        assert "new Function" not in source
        assert "localStorage" not in source, "the key belongs in sessionStorage only"


def test_no_file_names_another_host() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        urls = re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}", text)
        # The SVG namespace is an identifier, never fetched.
        assert set(urls) <= {"http://www.w3.org"}, (path.name, urls)


def test_static_files_are_package_data() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["gateway.ui"]
    shipped = {p for pattern in patterns for p in (STATIC_DIR.parent).glob(pattern)}
    assert shipped == {path for path in STATIC_DIR.iterdir() if path.is_file()}


def test_a_missing_page_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "main.js").write_text("")
    with pytest.raises(FileNotFoundError, match=r"index\.html"):
        load_assets(tmp_path)
