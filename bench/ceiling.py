"""The ceiling: a minimal aiohttp server answering every benchmarked URL from memory.

It returns, byte for byte, the bodies execgate returned for the same URLs (fetched
once by the harness at start-up), so it shows what aiohttp on uvloop can serve on
this machine when the gateway and the gRPC hop cost nothing.

    python -m bench.ceiling --listen 127.0.0.1:PORT --responses FILE

FILE is a JSON list of `{"path": "/v1/…", "status": 200, "body": "<JSON text>"}`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import uvloop
from aiohttp import web

_NOT_FOUND = web.Response(status=404, body=b"{}", content_type="application/json")


def build_app(responses: dict[str, tuple[int, bytes]]) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        found = responses.get(request.path_qs)
        if found is None:
            return _NOT_FOUND
        status, body = found
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    return app


def load_responses(path: Path) -> dict[str, tuple[int, bytes]]:
    entries = json.loads(path.read_text())
    return {entry["path"]: (int(entry["status"]), entry["body"].encode()) for entry in entries}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="aiohttp serving fixed JSON bodies from memory")
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--responses", required=True, type=Path, help="JSON file of bodies")
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    app = build_app(load_responses(args.responses))
    uvloop.install()
    web.run_app(app, host=host, port=int(port), access_log=None, print=None)


if __name__ == "__main__":
    main()
