"""The test-only library protos served over REST with no gateway code: every kind of rule.

The gateway is configured with the services' names only; the routes come from
their `google.api.http` annotations (path fields, nested path fields, `**`,
a custom verb, `body: "*"`, `body: "<field>"`, `response_body`, query
parameters of every scalar kind, additional bindings, PATCH and DELETE).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from execgate.testing.v1 import library_pb2

from gateway.config import GatewayConfig
from tests.gateway.app.gateway_harness import LIBRARY_SERVICES, RunningGateway, running_gateway
from tests.gateway.library_servicer import RunningLibrary, serve_library


@pytest_asyncio.fixture
async def library() -> AsyncIterator[RunningLibrary]:
    async with serve_library() as running:
        yield running


@pytest_asyncio.fixture
async def gateway(library: RunningLibrary) -> AsyncIterator[RunningGateway]:
    config = GatewayConfig(port=0, backend=library.address, services=LIBRARY_SERVICES)
    async with running_gateway(config) as running:
        yield running


@pytest_asyncio.fixture
async def http(gateway: RunningGateway) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=gateway.base_url) as session:
        yield session


async def _json(response: aiohttp.ClientResponse, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


@pytest.mark.asyncio
async def test_every_rule_kind_is_served(
    http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    async with http.post("/v1/shelves", json={"id": "s1", "theme": "sci-fi"}) as response:
        assert await _json(response) == {"id": "s1", "theme": "sci-fi", "book_count": 0}
    book = {"id": "b1", "title": "Dune", "author": "Herbert", "genre": "fiction", "pages": 612}
    async with http.post("/v1/shelves/s1/books", json=book) as response:
        created = await _json(response)
    assert created["name"] == "shelves/s1/books/b1"
    assert created["genre"] == "fiction"
    assert created["pages"] == 612  # int64 as a JSON number
    second = {
        "id": "b2",
        "title": "Cosmos",
        "genre": "GENRE_SCIENCE",
        "pages": 365,
        "tags": ["space"],
    }
    async with http.post("/v1/shelves/s1/books", json=second) as response:
        await _json(response)

    async with http.get("/v1/shelves/s1") as response:  # response_body: "shelf"
        assert await _json(response) == {"id": "s1", "theme": "sci-fi", "book_count": 2}

    query = [
        ("include_unpublished", "true"),
        ("tags", "space"),
        ("genre", "science"),
        ("filter.min_pages", "300"),
        ("page_size", "5"),
    ]
    async with http.get("/v1/shelves/s1/books", params=query) as response:
        listed = await _json(response)
    assert [b["id"] for b in listed["books"]] == ["b2"]
    received = library.library.list_requests[-1]
    assert received.genre == library_pb2.GENRE_SCIENCE
    assert list(received.tags) == ["space"]
    assert received.filter.min_pages == 300

    async with http.get("/v1/shelves/s1/books/b1") as response:  # {name=shelves/*/books/*}
        assert (await _json(response))["title"] == "Dune"
    async with http.get("/v1/archive/shelves/s1/books/b1") as response:  # additional binding, **
        assert (await _json(response))["title"] == "Dune"

    patch = {"title": "Dune Messiah", "pages": 256}
    async with http.patch("/v1/shelves/s1/books/b1", json=patch) as response:
        updated = await _json(response)
    assert (updated["title"], updated["shelf_id"], updated["id"]) == ("Dune Messiah", "s1", "b1")

    async with http.post("/v1/shelves/s1/books/b1:publish", json={"note": "go"}) as response:
        assert (await _json(response))["published"] is True
    assert library.library.publish_notes == {"shelves/s1/books/b1": "go"}

    async with http.delete("/v1/shelves/s1/books/b2") as response:
        assert await _json(response) == {"name": "shelves/s1/books/b2"}


@pytest.mark.asyncio
async def test_library_errors_come_through_the_one_table(http: aiohttp.ClientSession) -> None:
    async with http.get("/v1/shelves/missing") as response:
        body = await _json(response, 404)
    assert body["error"]["code"] == "shelf_not_found"
    assert body["error"]["details"] == {"resource": "shelf", "id": "missing"}
    async with http.post("/v1/shelves", json={"id": "dup"}) as response:
        await _json(response)
    async with http.post("/v1/shelves", json={"id": "dup"}) as response:
        body = await _json(response, 409)
    assert (body["error"]["type"], body["error"]["code"]) == (
        "AlreadyExistsError",
        "shelf_already_exists",
    )
    async with http.get("/v1/shelves/s1/books", params={"page_size": "ten"}) as response:
        body = await _json(response, 422)
    assert body["detail"][0]["loc"] == ["query", "page_size"]
    async with http.get("/v1/shelves/missing:watch") as response:  # before any event: a real 404
        body = await _json(response, 404)
    assert body["error"]["code"] == "shelf_not_found"
