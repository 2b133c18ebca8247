"""Resolve the `retriever_id` of a request (a `ret_…` ID or a retriever name) within a namespace."""

from __future__ import annotations

from service import ids
from service.errors import InvalidArgumentError, NotFoundError
from service.store.protocol import Retriever, Store
from service.ttl_cache import TtlCache

_MAX_REFERENCE_LENGTH = 128


class RetrieverDirectory:
    def __init__(self, store: Store, *, cache_seconds: float) -> None:
        self._store = store
        # Retrievers are never renamed or deleted, so a short-lived cache is safe.
        self._cache: TtlCache[tuple[str, str], Retriever] = TtlCache(cache_seconds)

    def cached(self, namespace_id: str, reference: str) -> Retriever | None:
        """The retriever if this process resolved it lately (no await: the hot path)."""
        return self._cache.get((namespace_id, reference))

    async def resolve(self, namespace_id: str, reference: str) -> Retriever:
        """The retriever, or NotFoundError that reads the same whether it is missing or foreign."""
        if not reference:
            raise InvalidArgumentError("retriever_id", "retriever_id is required")
        if len(reference) > _MAX_REFERENCE_LENGTH:
            raise InvalidArgumentError(
                "retriever_id", f"retriever_id must be at most {_MAX_REFERENCE_LENGTH} characters"
            )
        cache_key = (namespace_id, reference)
        retriever = self._cache.get(cache_key)
        if retriever is not None:
            return retriever
        if ids.is_retriever_id(reference) or ids.is_valid_name(reference):
            retriever = await self._store.find_retriever(namespace_id, reference)
        if retriever is None:
            raise NotFoundError("retriever", reference)
        self._cache.put(cache_key, retriever)
        return retriever
