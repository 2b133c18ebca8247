"""Contract: namespaces, retrievers and API keys (the admin path)."""

from __future__ import annotations

import hashlib

import pytest

from runtime.token_bucket import Limit
from service.store.protocol import (
    AlreadyExists,
    ApiKey,
    Namespace,
    Retriever,
    Store,
    StoreError,
)

from .conftest import Scope


def key_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@pytest.mark.asyncio
async def test_namespace_is_found_by_id_and_by_name(store: Store) -> None:
    namespace = Namespace("ns_1", "acme", 1_700_000_000_000_000)
    await store.create_namespace(namespace)

    assert await store.find_namespace("ns_1") == namespace
    assert await store.find_namespace("acme") == namespace
    assert await store.find_namespace("ns_2") is None
    assert await store.find_namespace("ACME") is None  # names are case-sensitive


@pytest.mark.asyncio
async def test_namespace_id_wins_over_a_name_that_spells_it(store: Store) -> None:
    by_id = Namespace("ns_1", "first", 1)
    named_like_it = Namespace("ns_2", "ns_1", 2)
    await store.create_namespace(by_id)
    await store.create_namespace(named_like_it)

    assert await store.find_namespace("ns_1") == by_id


@pytest.mark.asyncio
async def test_namespaces_are_listed_by_name(store: Store) -> None:
    assert list(await store.list_namespaces()) == []
    created = [Namespace(f"ns_{i}", name, i) for i, name in enumerate(["zeta", "alpha", "mu"])]
    for namespace in created:
        await store.create_namespace(namespace)

    assert list(await store.list_namespaces()) == sorted(created, key=lambda n: n.name)


@pytest.mark.asyncio
async def test_taken_namespace_name_or_id_is_already_exists(store: Store) -> None:
    await store.create_namespace(Namespace("ns_1", "acme", 1))

    with pytest.raises(AlreadyExists):
        await store.create_namespace(Namespace("ns_2", "acme", 2))
    with pytest.raises(AlreadyExists):
        await store.create_namespace(Namespace("ns_1", "other", 2))
    assert [n.id for n in await store.list_namespaces()] == ["ns_1"]


@pytest.mark.asyncio
async def test_retriever_is_found_by_id_and_name_within_its_namespace(
    store: Store, scope: Scope
) -> None:
    retriever = scope.retriever
    assert await store.find_retriever(scope.namespace.id, retriever.id) == retriever
    assert await store.find_retriever(scope.namespace.id, retriever.name) == retriever
    assert await store.find_retriever(scope.namespace.id, "ret_missing") is None
    # Another namespace sees neither its ID nor its name.
    assert await store.find_retriever(scope.other_namespace.id, retriever.id) is None
    assert await store.find_retriever(scope.other_namespace.id, "rerank") is None
    # The same name in another namespace is another retriever.
    assert await store.find_retriever(scope.other_namespace.id, "search") == scope.foreign


@pytest.mark.asyncio
async def test_taken_retriever_name_in_a_namespace_is_already_exists(
    store: Store, scope: Scope
) -> None:
    with pytest.raises(AlreadyExists):
        await store.create_retriever(Retriever("ret_new", scope.namespace.id, "search", 9))
    with pytest.raises(AlreadyExists):
        await store.create_retriever(Retriever(scope.retriever.id, scope.namespace.id, "new", 9))
    assert await store.find_retriever(scope.namespace.id, "ret_new") is None


@pytest.mark.asyncio
async def test_retriever_of_an_unknown_namespace_is_refused(store: Store) -> None:
    with pytest.raises(StoreError) as raised:
        await store.create_retriever(Retriever("ret_1", "ns_missing", "search", 1))
    assert not isinstance(raised.value, AlreadyExists)


@pytest.mark.asyncio
async def test_api_key_is_found_by_hash_with_its_scope(store: Store, scope: Scope) -> None:
    both = ApiKey(
        "key_both",
        key_hash("secret-both"),
        (scope.namespace.id, scope.other_namespace.id),
        frozenset({"read", "write"}),
        5,
    )
    reader = ApiKey(
        "key_reader", key_hash("secret-reader"), (scope.namespace.id,), frozenset({"read"}), 6
    )
    await store.create_api_key(both)
    await store.create_api_key(reader)

    found_both = await store.find_api_key(key_hash("secret-both"))
    assert found_both is not None
    assert sorted(found_both.namespace_ids) == sorted(both.namespace_ids)
    assert (
        found_both.id,
        found_both.key_hash,
        found_both.permissions,
        found_both.created_at_us,
    ) == (
        "key_both",
        key_hash("secret-both"),
        frozenset({"read", "write"}),
        5,
    )
    assert await store.find_api_key(key_hash("secret-reader")) == reader
    assert await store.find_api_key(key_hash("secret-unknown")) is None


@pytest.mark.asyncio
async def test_api_key_hash_is_unique(store: Store, scope: Scope) -> None:
    await store.create_api_key(
        ApiKey("key_1", key_hash("s"), (scope.namespace.id,), frozenset({"read"}), 1)
    )
    with pytest.raises(AlreadyExists):
        await store.create_api_key(
            ApiKey("key_2", key_hash("s"), (scope.other_namespace.id,), frozenset({"write"}), 2)
        )
    found = await store.find_api_key(key_hash("s"))
    assert found is not None
    assert found.id == "key_1"
    assert found.namespace_ids == (scope.namespace.id,)


@pytest.mark.asyncio
async def test_api_key_keeps_its_own_rate_limit(store: Store, scope: Scope) -> None:
    limited = ApiKey(
        "key_limited",
        key_hash("secret-limited"),
        (scope.namespace.id,),
        frozenset({"read"}),
        7,
        rate_limit=Limit(30, 2.5),
    )
    await store.create_api_key(limited)
    assert await store.find_api_key(key_hash("secret-limited")) == limited
