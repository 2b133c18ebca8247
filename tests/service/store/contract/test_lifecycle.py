"""Contract: open, health, close, and reopening the same database."""

from __future__ import annotations

import pytest

from service.store.protocol import Namespace, Store
from tests.support.store_backends import StoreMaker
from tests.support.store_rows import execution

from .conftest import Scope


@pytest.mark.asyncio
async def test_healthy_while_open_only(store_maker: StoreMaker) -> None:
    store = store_maker()
    await store.open()
    assert await store.healthy() is True
    await store.close()
    assert await store.healthy() is False


@pytest.mark.asyncio
async def test_reopening_keeps_everything_and_migrates_nothing_twice(
    store: Store, scope: Scope, store_maker: StoreMaker
) -> None:
    row = execution(scope.retriever, request_id="req-1")
    await store.insert_execution(row)

    # A second store on the same database, opened while the first is open
    # (another replica), then again after both closed.
    replica = store_maker()
    await replica.open()
    try:
        assert (
            await replica.get_execution(row.namespace_id, row.retriever_id, row.execution_id) == row
        )
        await replica.create_namespace(Namespace("ns_gamma", "gamma", 7))
    finally:
        await replica.close()
    assert await store.find_namespace("gamma") == Namespace("ns_gamma", "gamma", 7)
    await store.close()

    reopened = store_maker()
    await reopened.open()
    try:
        assert await reopened.find_retriever(scope.namespace.id, "search") == scope.retriever
        assert await reopened.insert_execution(execution(scope.retriever, request_id="req-1")) == (
            row,
            False,
        )
    finally:
        await reopened.close()
