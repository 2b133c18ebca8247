"""The `/docs` page: Swagger UI (5.x, renders OpenAPI 3.1) served from an installed package.

The assets come from the PyPI package `swagger-ui-py`, which ships Swagger UI's
distribution files under `swagger_ui/static/`; nothing is fetched from a CDN. Only its
static files are used (not its framework glue), located without importing it.
"""

from __future__ import annotations

import html
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SWAGGER_UI_PACKAGE = "swagger_ui"  # import name of the PyPI distribution `swagger-ui-py`
# The files the page loads; everything else in the package (the editor) stays unserved.
ASSET_NAMES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png")


@dataclass(frozen=True, slots=True)
class DocsPage:
    """What the gateway serves for the docs: the page and its static files."""

    html: str  # the `/docs` page (text/html)
    assets_prefix: str  # URL prefix of the assets, e.g. `/docs/assets`
    assets: Mapping[str, Path]  # file name under the prefix -> file on disk

    def asset_routes(self) -> dict[str, Path]:
        """Full URL path -> file, for one GET route each."""
        return {f"{self.assets_prefix}/{name}": path for name, path in self.assets.items()}


def swagger_ui_static_dir() -> Path:
    """Swagger UI's distribution directory inside the installed package."""
    spec = importlib.util.find_spec(SWAGGER_UI_PACKAGE)
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise FileNotFoundError(
            f"the docs page needs the `swagger-ui-py` package ({SWAGGER_UI_PACKAGE!r} not found)"
        )
    return Path(next(iter(locations))) / "static"


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{prefix}/swagger-ui.css">
<link rel="icon" type="image/png" href="{prefix}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="{prefix}/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{prefix}/swagger-ui-bundle.js" charset="utf-8"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {openapi_url},
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
</script>
</body>
</html>
"""


def swagger_ui_page(
    *,
    title: str,
    openapi_url: str = "/openapi.json",
    assets_prefix: str = "/docs/assets",
) -> DocsPage:
    """The docs page for the document at `openapi_url`; raises FileNotFoundError when the
    Swagger UI package or one of its files is missing, so a broken install fails at start-up."""
    static = swagger_ui_static_dir()
    assets = {name: static / name for name in ASSET_NAMES}
    missing = [name for name, path in assets.items() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"swagger-ui-py is missing {', '.join(missing)} in {static}")
    page = _PAGE.format(
        title=html.escape(title),
        prefix=html.escape(assets_prefix),
        # JSON is a JavaScript literal; escaping `<` keeps `</script>` out of it.
        openapi_url=json.dumps(openapi_url).replace("<", "\\u003c"),
    )
    return DocsPage(page, assets_prefix, assets)
