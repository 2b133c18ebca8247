"""Public identifiers: a type prefix followed by an alphanumeric token.

`ns_…` namespaces, `ret_…` retrievers, `exec_…` executions, `key_…` API keys
(the key's public handle, never its secret). Tokens come from `secrets`, so
an ID cannot be guessed from another one.
"""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
# 22 base-62 characters: about 131 bits, more than a UUID.
_TOKEN_LENGTH = 22
# Accept shorter tokens (IDs such as `exec_abc123` appear in the contract) but
# bound the length so that a request cannot make us hash or log megabytes.
_TOKEN = r"[A-Za-z0-9]{1,64}"  # noqa: S105 (a regex, not a secret)

NAMESPACE_PREFIX = "ns_"
RETRIEVER_PREFIX = "ret_"
EXECUTION_PREFIX = "exec_"
API_KEY_PREFIX = "key_"

_NAMESPACE_ID = re.compile(rf"ns_{_TOKEN}")
_RETRIEVER_ID = re.compile(rf"ret_{_TOKEN}")
_EXECUTION_ID = re.compile(rf"exec_{_TOKEN}")
# Names of namespaces and retrievers: readable, URL-safe, and never shaped like
# an ID (a name `ret_x` would be ambiguous where an ID or a name is accepted).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_ID_PREFIXES = (NAMESPACE_PREFIX, RETRIEVER_PREFIX, EXECUTION_PREFIX, API_KEY_PREFIX)


def token(length: int = _TOKEN_LENGTH) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_namespace_id() -> str:
    return NAMESPACE_PREFIX + token()


def new_retriever_id() -> str:
    return RETRIEVER_PREFIX + token()


def new_execution_id() -> str:
    return EXECUTION_PREFIX + token()


def new_api_key_id() -> str:
    return API_KEY_PREFIX + token()


def is_namespace_id(value: str) -> bool:
    return _NAMESPACE_ID.fullmatch(value) is not None


def is_retriever_id(value: str) -> bool:
    return _RETRIEVER_ID.fullmatch(value) is not None


def is_execution_id(value: str) -> bool:
    return _EXECUTION_ID.fullmatch(value) is not None


def is_valid_name(value: str) -> bool:
    """A namespace or retriever name: 1 to 63 of [A-Za-z0-9_.-], not ID-shaped."""
    return _NAME.fullmatch(value) is not None and not value.startswith(_ID_PREFIXES)
