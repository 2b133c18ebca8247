"""The viewer's static files, read once at start-up and served from memory.

Each file gets a strong ETag from a hash of its content, so a browser
revalidates with `If-None-Match` and gets a 304 after the first load. Every
file is held in memory for the life of the process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"

# Only these kinds of file are served; anything else in the directory is not.
CONTENT_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file as served: its bytes, type and ETag."""

    body: bytes
    content_type: str
    etag: str  # quoted, strong


def load_assets(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every servable file directly in `directory`, by file name.

    Raises FileNotFoundError when the directory or its `index.html` is missing,
    so that a broken install fails at start-up rather than serving a blank page.
    """
    if not (directory / "index.html").is_file():
        raise FileNotFoundError(f"the viewer's index.html is missing from {directory}")
    assets = {}
    for path in sorted(directory.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:32]
        assets[path.name] = Asset(body, content_type, f'"{digest}"')
    return assets
