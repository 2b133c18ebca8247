"""Admin operations on namespaces, retrievers and API keys (for the CLI and the demo)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from runtime.token_bucket import Limit
from service import ids
from service.auth import hash_api_key, new_api_key_secret
from service.store.protocol import AlreadyExists, ApiKey, Namespace, Permission, Retriever, Store

PERMISSIONS: tuple[Permission, ...] = ("read", "write")


class AdminError(Exception):
    """An admin command cannot be carried out as asked (bad name, unknown namespace, ...)."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once; only its hash is stored


def _now_us() -> int:
    return time.time_ns() // 1000


def _checked_name(kind: str, name: str) -> str:
    if not ids.is_valid_name(name):
        raise AdminError(
            f"invalid {kind} name {name!r}: use 1 to 63 of A-Z a-z 0-9 _ . - "
            "(starting with a letter or digit, not shaped like an ID such as ns_… or ret_…)"
        )
    return name


async def create_namespace(store: Store, name: str) -> Namespace:
    namespace = Namespace(
        id=ids.new_namespace_id(), name=_checked_name("namespace", name), created_at_us=_now_us()
    )
    try:
        await store.create_namespace(namespace)
    except AlreadyExists:
        raise AdminError(f"a namespace named {name!r} already exists") from None
    return namespace


async def find_namespace(store: Store, id_or_name: str) -> Namespace:
    namespace = await store.find_namespace(id_or_name)
    if namespace is None:
        raise AdminError(f"no namespace {id_or_name!r}")
    return namespace


async def create_retriever(store: Store, namespace: str, name: str) -> Retriever:
    owner = await find_namespace(store, namespace)
    retriever = Retriever(
        id=ids.new_retriever_id(),
        namespace_id=owner.id,
        name=_checked_name("retriever", name),
        created_at_us=_now_us(),
    )
    try:
        await store.create_retriever(retriever)
    except AlreadyExists:
        raise AdminError(f"namespace {owner.name} already has a retriever named {name!r}") from None
    return retriever


async def create_api_key(
    store: Store,
    namespaces: Iterable[str],
    permissions: Iterable[Permission],
    rate_limit: Limit | None = None,
) -> IssuedKey:
    namespace_ids = tuple(
        dict.fromkeys([(await find_namespace(store, ref)).id for ref in namespaces])
    )
    granted = frozenset(permissions)
    if not namespace_ids:
        raise AdminError("an API key needs at least one namespace")
    if not granted:
        raise AdminError("an API key needs at least one permission (read, write)")
    secret = new_api_key_secret()
    key = ApiKey(
        id=ids.new_api_key_id(),
        key_hash=hash_api_key(secret),
        namespace_ids=namespace_ids,
        permissions=granted,
        created_at_us=_now_us(),
        rate_limit=rate_limit,
    )
    await store.create_api_key(key)
    return IssuedKey(key, secret)
