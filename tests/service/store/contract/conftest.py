"""Fixtures of the store contract suite: `store`, parametrised over BACKENDS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from service.store.protocol import Namespace, Retriever, Store
from tests.support.store_backends import BACKENDS, Backend, StoreMaker


@pytest.fixture(params=[pytest.param(b, id=b.name, marks=b.marks) for b in BACKENDS])
def store_maker(request: pytest.FixtureRequest) -> StoreMaker:
    backend: Backend = request.param
    return backend.make(request)


@pytest_asyncio.fixture
async def store(store_maker: StoreMaker) -> AsyncIterator[Store]:
    opened = store_maker()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@dataclass(frozen=True)
class Scope:
    """Two namespaces; the first has two retrievers, the second one."""

    namespace: Namespace
    retriever: Retriever
    sibling: Retriever  # another retriever in the same namespace
    other_namespace: Namespace
    foreign: Retriever  # a retriever of the other namespace


@pytest_asyncio.fixture
async def scope(store: Store) -> Scope:
    created = Scope(
        namespace=Namespace("ns_alpha", "alpha", 1_700_000_000_000_000),
        retriever=Retriever("ret_alpha1", "ns_alpha", "search", 1_700_000_000_000_001),
        sibling=Retriever("ret_alpha2", "ns_alpha", "rerank", 1_700_000_000_000_002),
        other_namespace=Namespace("ns_beta", "beta", 1_700_000_000_000_003),
        foreign=Retriever("ret_beta1", "ns_beta", "search", 1_700_000_000_000_004),
    )
    for namespace in (created.namespace, created.other_namespace):
        await store.create_namespace(namespace)
    for retriever in (created.retriever, created.sibling, created.foreign):
        await store.create_retriever(retriever)
    return created
