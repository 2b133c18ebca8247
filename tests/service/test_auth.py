"""Authentication and tenancy over a real server: CONTRACT.md "Identity, tenancy, auth"."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import pytest_asyncio
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2

from service import ids
from tests.support.grpc_calls import Failure, failure
from tests.support.running_service import Metadata, RunningService, Stubs, auth
from tests.support.service_tenants import Tenants, add_tenants


async def get_failure(
    calls: Stubs, metadata: Metadata, retriever: str, execution_id: str
) -> Failure:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await calls.reader.GetExecution(
            service_pb2.GetExecutionRequest(retriever_id=retriever, execution_id=execution_id),
            metadata=metadata,
        )
    return failure(raised.value)


async def get_ok(
    calls: Stubs, metadata: Metadata, retriever: str, execution_id: str
) -> execution_pb2.ExecutionDetail:
    return await calls.reader.GetExecution(
        service_pb2.GetExecutionRequest(retriever_id=retriever, execution_id=execution_id),
        metadata=metadata,
    )


@pytest_asyncio.fixture
async def tenants(running_service: RunningService, service_stubs: Stubs) -> Tenants:
    return await add_tenants(running_service, service_stubs)


@pytest.mark.asyncio
async def test_no_key_is_unauthenticated_missing_api_key(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    demo = running_service.demo
    got = await get_failure(service_stubs, (), demo.retriever.name, demo.executions["completed_10"])
    assert got.code is grpc.StatusCode.UNAUTHENTICATED
    assert got.reason == "MISSING_API_KEY"
    assert got.domain == "execgate"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer egk_unknownkey",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "egk_no_scheme",
        "Bearer " + "x" * 300,
    ],
)
async def test_unknown_or_malformed_key_is_unauthenticated_invalid_api_key(
    running_service: RunningService, service_stubs: Stubs, authorization: str
) -> None:
    demo = running_service.demo
    got = await get_failure(
        service_stubs,
        (("authorization", authorization),),
        demo.retriever.name,
        demo.executions["completed_10"],
    )
    assert got.code is grpc.StatusCode.UNAUTHENTICATED
    assert got.reason == "INVALID_API_KEY"
    assert "egk_" not in got.message


@pytest.mark.asyncio
async def test_bearer_scheme_is_case_insensitive(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    demo = running_service.demo
    metadata = (("authorization", f"bearer {demo.api_key}"),)
    detail = await get_ok(service_stubs, metadata, demo.retriever.name, demo.executions["pending"])
    assert detail.execution_id == demo.executions["pending"]


@pytest.mark.asyncio
async def test_namespace_by_id_by_name_and_omitted_for_a_single_namespace_key(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    demo = running_service.demo
    execution_id = demo.executions["completed_10"]
    by_id = await get_ok(
        service_stubs, auth(demo.api_key, demo.namespace.id), demo.retriever.id, execution_id
    )
    by_name = await get_ok(
        service_stubs, auth(demo.api_key, "demo"), demo.retriever.id, execution_id
    )
    omitted = await get_ok(service_stubs, auth(demo.api_key), demo.retriever.id, execution_id)
    assert by_id == by_name == omitted
    assert by_id.execution_id == execution_id


@pytest.mark.asyncio
async def test_multi_namespace_key_needs_x_namespace(
    running_service: RunningService, service_stubs: Stubs, tenants: Tenants
) -> None:
    demo = running_service.demo
    execution_id = demo.executions["completed_10"]
    got = await get_failure(
        service_stubs, auth(tenants.both_key), demo.retriever.name, execution_id
    )
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.reason == "NAMESPACE_REQUIRED"
    assert got.metadata == {"field": "x-namespace"}
    detail = await get_ok(
        service_stubs, auth(tenants.both_key, "demo"), demo.retriever.name, execution_id
    )
    assert detail.execution_id == execution_id
    other = await get_ok(
        service_stubs,
        auth(tenants.both_key, tenants.other.id),
        tenants.other_retriever.name,
        tenants.other_execution_id,
    )
    assert other.retriever_id == tenants.other_retriever.id


@pytest.mark.asyncio
@pytest.mark.parametrize("form", ["id", "name"])
async def test_foreign_namespace_answers_exactly_like_a_missing_one(
    running_service: RunningService, service_stubs: Stubs, tenants: Tenants, form: str
) -> None:
    demo = running_service.demo
    execution_id = demo.executions["completed_10"]
    existing = demo.namespace.id if form == "id" else demo.namespace.name
    missing = ids.new_namespace_id() if form == "id" else "no-such-namespace"
    foreign = await get_failure(
        service_stubs, auth(tenants.other_key, existing), demo.retriever.name, execution_id
    )
    absent = await get_failure(
        service_stubs, auth(tenants.other_key, missing), demo.retriever.name, execution_id
    )
    for got, value in ((foreign, existing), (absent, missing)):
        assert got.code is grpc.StatusCode.NOT_FOUND
        assert got.reason == "NAMESPACE_NOT_FOUND"
        assert got.metadata == {"resource": "namespace", "id": value}
    assert foreign.message.replace(existing, "?") == absent.message.replace(missing, "?")


@pytest.mark.asyncio
async def test_another_tenants_execution_answers_exactly_like_a_missing_one(
    running_service: RunningService, service_stubs: Stubs, tenants: Tenants
) -> None:
    demo = running_service.demo
    # The other tenant has a retriever with the demo retriever's name.
    demo_execution = demo.executions["completed_10"]
    missing = ids.new_execution_id()
    foreign = await get_failure(
        service_stubs, auth(tenants.other_key), demo.retriever.name, demo_execution
    )
    absent = await get_failure(service_stubs, auth(tenants.other_key), demo.retriever.name, missing)
    assert foreign.code is absent.code is grpc.StatusCode.NOT_FOUND
    assert foreign.reason == absent.reason == "EXECUTION_NOT_FOUND"
    assert foreign.metadata == {"resource": "execution", "id": demo_execution}
    assert absent.metadata == {"resource": "execution", "id": missing}
    assert foreign.message.replace(demo_execution, "?") == absent.message.replace(missing, "?")
    # And the other way round, with the demo key.
    reverse = await get_failure(
        service_stubs, auth(demo.api_key), demo.retriever.name, tenants.other_execution_id
    )
    assert reverse.reason == "EXECUTION_NOT_FOUND"


@pytest.mark.asyncio
async def test_another_tenants_retriever_id_answers_exactly_like_a_missing_one(
    running_service: RunningService, service_stubs: Stubs, tenants: Tenants
) -> None:
    demo = running_service.demo
    missing = ids.new_retriever_id()
    foreign = await get_failure(
        service_stubs, auth(demo.api_key), tenants.other_retriever.id, tenants.other_execution_id
    )
    absent = await get_failure(
        service_stubs, auth(demo.api_key), missing, tenants.other_execution_id
    )
    for got, value in ((foreign, tenants.other_retriever.id), (absent, missing)):
        assert got.code is grpc.StatusCode.NOT_FOUND
        assert got.reason == "RETRIEVER_NOT_FOUND"
        assert got.metadata == {"resource": "retriever", "id": value}
    assert foreign.message.replace(tenants.other_retriever.id, "?") == absent.message.replace(
        missing, "?"
    )


@pytest.mark.asyncio
async def test_retriever_by_name_and_by_id_return_the_same_execution(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    demo = running_service.demo
    execution_id = demo.executions["completed_1000"]
    by_name = await get_ok(service_stubs, auth(demo.api_key), demo.retriever.name, execution_id)
    by_id = await get_ok(service_stubs, auth(demo.api_key), demo.retriever.id, execution_id)
    assert by_name == by_id
    assert by_name.retriever_id == demo.retriever.id


@pytest.mark.asyncio
async def test_read_only_key_cannot_write_and_write_only_key_cannot_read(
    running_service: RunningService, service_stubs: Stubs, tenants: Tenants
) -> None:
    demo = running_service.demo
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await service_stubs.writer.StartExecution(
            writer_pb2.StartExecutionRequest(retriever_id=demo.retriever.name),
            metadata=auth(tenants.read_only_key),
        )
    denied = failure(raised.value)
    assert denied.code is grpc.StatusCode.PERMISSION_DENIED
    assert denied.reason == "PERMISSION_DENIED"
    assert denied.metadata == {"permission": "write"}

    got = await get_failure(
        service_stubs, auth(tenants.write_only_key), demo.retriever.name, demo.executions["pending"]
    )
    assert got.code is grpc.StatusCode.PERMISSION_DENIED
    assert got.metadata == {"permission": "read"}
    # The read-only key reads.
    detail = await get_ok(
        service_stubs, auth(tenants.read_only_key), demo.retriever.name, demo.executions["pending"]
    )
    assert detail.status == execution_pb2.EXECUTION_STATUS_PENDING


@pytest.mark.asyncio
async def test_authentication_comes_before_everything_else(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    """A caller without a valid key learns nothing, not even that an ID is malformed."""
    got = await get_failure(service_stubs, auth("egk_wrong"), "no-such-retriever", "not-an-id")
    assert got.reason == "INVALID_API_KEY"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "metadata_of",
    [
        # One valid key and one invalid: whichever came first or last, refuse both orders.
        lambda t: (("authorization", f"Bearer {t.demo_key}"), ("authorization", "Bearer nope")),
        lambda t: (("authorization", "Bearer nope"), ("authorization", f"Bearer {t.demo_key}")),
        lambda t: (("authorization", f"Bearer {t.demo_key}"),) * 2,  # even when equal
        lambda t: (*auth(t.both_key, "demo"), ("x-namespace", "other")),
        lambda t: (*auth(t.both_key, "other"), ("x-namespace", "demo")),
    ],
    ids=["valid-first", "valid-last", "equal", "namespace-demo-first", "namespace-other-first"],
)
async def test_duplicated_auth_metadata_is_refused(
    running_service: RunningService, service_stubs: Stubs, tenants: Tenants, metadata_of: Any
) -> None:
    demo = running_service.demo
    metadata = metadata_of(tenants)
    got = await get_failure(
        service_stubs, metadata, demo.retriever.name, demo.executions["completed_10"]
    )
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.reason == "DUPLICATE_HEADER"
    assert got.metadata == {"field": metadata[-1][0]}
    # Writes too: no RPC picks one of the values.
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await service_stubs.writer.StartExecution(
            writer_pb2.StartExecutionRequest(retriever_id=demo.retriever.name),
            metadata=metadata,
        )
    assert failure(raised.value).reason == "DUPLICATE_HEADER"
