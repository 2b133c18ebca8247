"""API keys and the caller of an RPC: who they are, which namespace they act in, what they may do.

Keys are random secrets shown once at creation; the store keeps only their
SHA-256, and the secret is never logged. Each call resolves
`authorization: Bearer <key>` and `x-namespace` (a namespace ID or name) as
CONTRACT.md says: a key scoped to exactly one namespace may omit the
namespace; a namespace the key cannot see answers exactly like a missing one,
in content and in time (names resolve only among the key's own namespaces).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.token_bucket import Limit, TokenBuckets
from service import ids
from service.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    UnauthenticatedError,
)
from service.store.protocol import ApiKey, Permission, Store
from service.ttl_cache import TtlCache

API_KEY_PREFIX = "egk_"
_SECRET_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = 40  # about 238 bits
_MAX_KEY_LENGTH = 256
_MAX_NAMESPACE_LENGTH = 128
DEFAULT_CACHE_SECONDS = 5.0


def new_api_key_secret() -> str:
    return API_KEY_PREFIX + "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(_SECRET_LENGTH))


def hash_api_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    namespace_id: str


class Authenticator:
    """Resolves a call's metadata to a `Caller`, or raises the error the caller must see."""

    def __init__(
        self,
        store: Store,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        rate_limit: Limit | None = None,
    ) -> None:
        self._store = store
        # Per key, in this process (docs/deployment.md: workers and replicas). The
        # default applies to keys without their own limit; None: such keys are unlimited.
        self._default_rate = rate_limit
        # (Every take names its limit: the table's own default is never used.)
        self._rates: TokenBuckets[str] = TokenBuckets(rate_limit or Limit(1, 1.0))
        self._keys: TtlCache[bytes, ApiKey] = TtlCache(cache_seconds)
        # Per key: the names of the namespaces it may act in, and their IDs.
        self._names: TtlCache[str, Mapping[str, str]] = TtlCache(cache_seconds)

    async def caller(
        self, authorization: str | None, namespace: str | None, permission: Permission
    ) -> Caller:
        # Awaits only on a cache miss: a steady stream of calls runs this without suspending
        # (docs/performance.md, "Single-process request path").
        digest = _key_digest(authorization)
        key = self._keys.get(digest)
        if key is None:
            key = await self._store.find_api_key(digest)
            if key is None:
                raise _invalid_key()
            self._keys.put(digest, key)
        # The lookup is by hash already; compare in constant time all the same.
        if not hmac.compare_digest(key.key_hash, digest):
            raise _invalid_key()
        limit = key.rate_limit or self._default_rate
        if limit is not None:
            wait_s = self._rates.take(key.id, limit)
            if wait_s:
                raise RateLimitedError(max(1, math.ceil(wait_s)), limit.policy())
        if permission not in key.permissions:
            raise PermissionDeniedError(permission)
        namespace_id = _scoped_namespace_id(key, namespace)
        if namespace_id is None:  # a name
            namespace_id = await self._named_namespace_id(key, namespace or "")
        return Caller(key.id, namespace_id)

    async def _named_namespace_id(self, key: ApiKey, name: str) -> str:
        # A name is looked up only among the key's own namespaces, never in the store:
        # another tenant's name must cost exactly what a name nobody has costs (no cache
        # of it, no query that finds it), or its answer time would tell it exists.
        namespace_id = (await self._namespace_names(key)).get(name)
        if namespace_id is None:
            raise NotFoundError("namespace", name)
        return namespace_id

    async def _namespace_names(self, key: ApiKey) -> Mapping[str, str]:
        """Name → ID of the namespaces `key` is scoped to (the same work whatever is asked)."""
        names = self._names.get(key.id)
        if names is None:
            found = [await self._store.find_namespace(ns_id) for ns_id in key.namespace_ids]
            names = {namespace.name: namespace.id for namespace in found if namespace}
            self._names.put(key.id, names)
        return names


def _key_digest(authorization: str | None) -> bytes:
    """The hash of the API key in `authorization` (`Bearer <key>`), or the error to answer."""
    if not authorization:
        raise UnauthenticatedError(
            "Missing API key: send 'authorization: Bearer <api key>'", reason="MISSING_API_KEY"
        )
    scheme, _, secret = authorization.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > _MAX_KEY_LENGTH:
        raise _invalid_key()
    return hash_api_key(secret)


def _scoped_namespace_id(key: ApiKey, requested: str | None) -> str | None:
    """The namespace ID the call acts in, None when `requested` is a name (to look up), or
    the error to answer."""
    if not requested:
        if len(key.namespace_ids) == 1:
            return key.namespace_ids[0]
        raise InvalidArgumentError(
            "x-namespace",
            "This API key is valid in several namespaces: send 'x-namespace: <ID or name>'",
            reason="NAMESPACE_REQUIRED",
        )
    if len(requested) > _MAX_NAMESPACE_LENGTH:
        raise InvalidArgumentError(
            "x-namespace", f"x-namespace must be at most {_MAX_NAMESPACE_LENGTH} characters"
        )
    if ids.is_namespace_id(requested):
        # Keys are only ever created for existing namespaces, and namespaces
        # are never deleted, so an ID in the key's scope needs no lookup.
        if requested in key.namespace_ids:
            return requested
        raise NotFoundError("namespace", requested)
    return None


def _invalid_key() -> UnauthenticatedError:
    return UnauthenticatedError("Invalid API key", reason="INVALID_API_KEY")
