"""The list cursor codec: any string is a valid cursor or a clean INVALID_CURSOR refusal."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import InvalidArgumentError
from service.executions.listing import Listing, decode_cursor, encode_cursor
from service.store.protocol import ListQuery, SortKey

SORTS: tuple[tuple[SortKey, ...], ...] = (
    (SortKey("created_at", True),),
    (SortKey("completed_at", False),),
    (SortKey("credits_used", True), SortKey("duration_ms", False)),
)
FINGERPRINT = "0123456789abcdef"
INT64 = range(-(2**63), 2**63)
TIME_COLUMNS = {"created_at", "completed_at"}
FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow],
)


def cursor_of(payload: Any) -> str:
    # The standard library writes integers of any size (orjson refuses beyond 64 bits).
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


def decoded_or_refused(cursor: str, sort: tuple[SortKey, ...]) -> tuple[Any, ...] | None:
    """The position, or None for a refusal; any other exception fails the property."""
    refusal: InvalidArgumentError | None = None
    try:
        return decode_cursor(cursor, FINGERPRINT, sort)
    except InvalidArgumentError as error:
        refusal = error
    assert refusal.reason == "INVALID_CURSOR"
    assert refusal.metadata == {"field": "cursor"}
    return None


def assert_storable(position: tuple[Any, ...], sort: tuple[SortKey, ...]) -> None:
    """What the stores can bind as parameters: 64-bit integers, finite doubles."""
    *keys, execution_id = position
    assert len(keys) == len(sort)
    assert isinstance(execution_id, str)
    assert execution_id.startswith("exec_")
    for key, value in zip(sort, keys, strict=True):
        assert not isinstance(value, bool)
        if isinstance(value, int):
            assert value in INT64
        else:
            assert isinstance(value, float)
            assert math.isfinite(value)
            assert key.column not in TIME_COLUMNS


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities are written as NaN/Infinity: not JSON
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
execution_ids = st.from_regex(r"exec_[A-Za-z0-9]{1,64}", fullmatch=True)


@FUZZ
@given(cursor=st.text(max_size=1100), sort=st.sampled_from(SORTS))
def test_any_string_decodes_or_is_refused(cursor: str, sort: tuple[SortKey, ...]) -> None:
    position = decoded_or_refused(cursor, sort)
    if position is not None:
        assert_storable(position, sort)


@FUZZ
@given(
    keys=st.lists(json_values, min_size=0, max_size=4),
    execution_id=execution_ids | json_values,
    sort=st.sampled_from(SORTS),
)
def test_any_payload_with_the_right_fingerprint_decodes_or_is_refused(
    keys: list[Any], execution_id: Any, sort: tuple[SortKey, ...]
) -> None:
    position = decoded_or_refused(cursor_of({"f": FINGERPRINT, "a": [*keys, execution_id]}), sort)
    if position is not None:
        assert_storable(position, sort)


@FUZZ
@given(
    created=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    credits=st.floats(allow_nan=False, allow_infinity=False),
    duration=st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False),
    execution_id=execution_ids,
)
def test_every_position_the_service_writes_reads_back(
    created: int, credits: float, duration: int | float, execution_id: str
) -> None:
    for sort, position in (
        (SORTS[0], (created, execution_id)),
        (SORTS[1], (created, execution_id)),
        (SORTS[2], (credits, duration, execution_id)),
    ):
        listing = Listing(ListQuery("ns_a", "ret_a", limit=1, sort=sort), FINGERPRINT)
        cursor = encode_cursor(listing, position)
        assert decode_cursor(cursor, FINGERPRINT, sort) == position


@pytest.mark.parametrize(
    "value",
    [2**63, -(2**63) - 1, 2**64 - 1, 1.5, True, None, "1"],
    ids=["2^63", "-2^63-1", "2^64-1", "float time", "bool", "null", "string"],
)
def test_times_out_of_the_64_bit_range_or_of_another_type_are_refused(value: Any) -> None:
    cursor = cursor_of({"f": FINGERPRINT, "a": [value, "exec_abc"]})
    with pytest.raises(InvalidArgumentError) as raised:
        decode_cursor(cursor, FINGERPRINT, SORTS[0])
    assert raised.value.reason == "INVALID_CURSOR"
