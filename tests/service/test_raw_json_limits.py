"""A writer's RawJson: nesting limited once, at the write path, to what the encoders can
render; a record too large to read is never stored. Properties of the validator with
hypothesis, then the limits over a real server."""

from __future__ import annotations

import json
from typing import Any

import grpc
import orjson
import pytest
from execgate.type.v1 import raw_json_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import InvalidArgumentError
from service.executions.checks import MAX_JSON_DEPTH, json_depth, json_object
from service.executions.records import MAX_DETAIL_BYTES
from tests.running_service import RunningService, Stubs, stubs
from tests.service.grpc_calls import failure
from tests.service.test_service_writes import Writer, stats

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow],
)


def nested(depth: int, *, kind: str = "object") -> str:
    """A JSON object `depth` levels deep (the outer object is level 1)."""
    inner = "[" * (depth - 1) + "]" * (depth - 1) if kind == "array" else None
    if inner is not None:
        return '{"a":' + inner + "}" if depth > 1 else "{}"
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def checked(text: str) -> str | None:
    """The stored text, or None for a refusal; any other exception fails the property."""
    refusal: InvalidArgumentError | None = None
    try:
        return json_object(raw_json_pb2.RawJson(json=text), "metadata").json
    except InvalidArgumentError as error:
        refusal = error
    assert refusal.metadata == {"field": "metadata"}
    return None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=20,
)


@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_is_stored_as_encodable_json_or_refused(text: str) -> None:
    stored = checked(text)
    if stored is not None:
        value = orjson.loads(stored)
        assert isinstance(value, dict)
        assert orjson.dumps(value).decode() == stored  # what every reader's encoder writes


@FUZZ
@given(value=json_values, depth=st.integers(min_value=0, max_value=1100), array=st.booleans())
def test_any_value_wrapped_to_any_depth_is_stored_within_the_limit_or_refused(
    value: Any, depth: int, array: bool
) -> None:
    # `value` under `depth` arrays or objects, inside an object. The standard library
    # writes what orjson would refuse (NaN, integers beyond 64 bits): refusals to cover.
    value_text = json.dumps(value)
    try:
        orjson.loads(value_text)
        readable = True
    except orjson.JSONDecodeError:
        readable = False
    opener, closer = ("[", "]") if array else ('{"k":', "}")
    text = '{"v":' + opener * depth + value_text + closer * depth + "}"
    stored = checked(text)
    assert (stored is not None) is (readable and 1 + depth + json_depth(value) <= MAX_JSON_DEPTH)
    if stored is not None:
        assert orjson.dumps(orjson.loads(stored)).decode() == stored


@pytest.mark.parametrize("depth", [1, 2, 127, MAX_JSON_DEPTH])
@pytest.mark.parametrize("kind", ["object", "array"])
def test_nesting_up_to_the_limit_is_kept(depth: int, kind: str) -> None:
    text = nested(depth, kind=kind)
    assert json_depth(orjson.loads(text)) == depth
    assert checked(text) == text


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 254, 255, 256, 1024, 1025, 5000])
@pytest.mark.parametrize("kind", ["object", "array"])
def test_deeper_nesting_is_refused_with_a_clear_message(depth: int, kind: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        json_object(raw_json_pb2.RawJson(json=nested(depth, kind=kind)), "metadata")
    assert raised.value.metadata == {"field": "metadata"}
    if depth <= 1024:  # deeper than orjson reads: "not valid JSON" names the recursion
        assert f"nested more than {MAX_JSON_DEPTH} levels deep" in raised.value.message


def test_many_brackets_inside_strings_are_not_nesting() -> None:
    text = orjson.dumps({"s": "[{" * 500}).decode()
    assert checked(text) == text


# --- over gRPC --------------------------------------------------------------------


@pytest.fixture
def writer(running_service: RunningService, service_stubs: Stubs) -> Writer:
    return Writer(running_service, service_stubs)


async def refused(call: Any) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return failure(raised.value)


@pytest.mark.asyncio
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 255, 600, 1024])
async def test_deep_json_is_invalid_argument_on_write_never_internal(
    writer: Writer, depth: int
) -> None:
    execution_id = (await writer.start()).execution.execution_id
    metadata = raw_json_pb2.RawJson(json=nested(depth))
    got = await refused(writer.report(execution_id, statistics=stats(1, 1, metadata=metadata)))
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.metadata == {"field": "statistics.metadata"}
    document = raw_json_pb2.RawJson(json=nested(depth, kind="array"))
    got = await refused(writer.complete(execution_id, documents=[document]))
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.metadata == {"field": "documents[0]"}
    # Nothing was stored, and what is stored reads back.
    detail = await writer.get(execution_id)
    assert not detail.stage_statistics.stages


@pytest.mark.asyncio
async def test_json_at_the_limit_reads_back(writer: Writer) -> None:
    execution_id = (await writer.start()).execution.execution_id
    metadata = raw_json_pb2.RawJson(json=nested(MAX_JSON_DEPTH))
    await writer.report(execution_id, statistics=stats(1, 1, metadata=metadata))
    detail = await writer.get(execution_id)
    assert detail.stage_statistics.stages["feature_search"].metadata.json == metadata.json


@pytest.mark.asyncio
async def test_an_execution_too_large_to_read_is_never_stored(
    running_service: RunningService,
) -> None:
    # Every write answers the whole execution: this client takes what the service sends.
    options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(running_service.address, options=options) as channel:
        writer = Writer(running_service, stubs(channel))
        execution_id = (await writer.start(total_stages=5)).execution.execution_id
        chunk = MAX_DETAIL_BYTES // 4
        big = raw_json_pb2.RawJson(json=orjson.dumps({"blob": "x" * chunk}).decode())
        for stage in ("one", "two", "three"):
            await writer.report(
                execution_id, stage_name=stage, statistics=stats(1, 1, metadata=big)
            )
        got = await refused(
            writer.report(execution_id, stage_name="four", statistics=stats(1, 1, metadata=big))
        )
        assert got.code is grpc.StatusCode.INVALID_ARGUMENT
        assert got.reason == "EXECUTION_TOO_LARGE"
        detail = await writer.get(execution_id)  # still readable, unchanged
        assert list(detail.stage_statistics.stages_order) == ["one", "two", "three"]


def test_a_scalar_under_the_deepest_allowed_containers_is_refused() -> None:
    # 128 containers (the outer object included) put a scalar at depth 129: the
    # bracket-count shortcut must not let it through (found by the property above).
    text = '{"v":' + '{"k":' * (MAX_JSON_DEPTH - 1) + "null" + "}" * (MAX_JSON_DEPTH - 1) + "}"
    assert json_depth(orjson.loads(text)) == MAX_JSON_DEPTH + 1
    assert checked(text) is None
