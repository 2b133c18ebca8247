"""The retriever directory: references resolve within a namespace; hits are answered without
awaiting (`cached`), and only hits are remembered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from service.errors import NotFoundError
from service.retrievers import RetrieverDirectory
from service.store import open_store
from service.store.protocol import Namespace, Retriever, Store


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    await opened.open()
    await opened.create_namespace(Namespace("ns_a", "a", 1))
    await opened.create_namespace(Namespace("ns_b", "b", 1))
    await opened.create_retriever(Retriever("ret_1", "ns_a", "search", 1))
    yield opened
    await opened.close()


@pytest.mark.asyncio
async def test_a_resolved_retriever_is_then_answered_from_the_cache(store: Store) -> None:
    directory = RetrieverDirectory(store, cache_seconds=60)
    assert directory.cached("ns_a", "search") is None
    resolved = await directory.resolve("ns_a", "search")
    assert resolved.id == "ret_1"
    assert directory.cached("ns_a", "search") == resolved
    assert directory.cached("ns_a", "ret_1") is None  # each reference on its own
    assert directory.cached("ns_b", "search") is None  # never across namespaces


@pytest.mark.asyncio
async def test_misses_are_not_remembered(store: Store) -> None:
    directory = RetrieverDirectory(store, cache_seconds=60)
    with pytest.raises(NotFoundError):
        await directory.resolve("ns_b", "search")
    assert directory.cached("ns_b", "search") is None
    await store.create_retriever(Retriever("ret_2", "ns_b", "search", 2))
    assert (await directory.resolve("ns_b", "search")).id == "ret_2"


@pytest.mark.asyncio
async def test_with_caching_off_nothing_is_remembered(store: Store) -> None:
    directory = RetrieverDirectory(store, cache_seconds=0)
    await directory.resolve("ns_a", "search")
    assert directory.cached("ns_a", "search") is None
