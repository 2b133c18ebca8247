"""The handler guard asks gRPC core for the peer only when it writes an access log line."""

from __future__ import annotations

import io
import json
from typing import Any, cast

import pytest
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2

from service.access_log import AccessLog
from service.metrics import ServiceMetrics
from service.rpc.call import CallMetadata
from service.rpc.guard import Context, guarded

pytestmark = pytest.mark.asyncio

METHOD = "/test.Guarded/Answer"


class _Context:
    """The part of a servicer context the guard reads on a call that succeeds."""

    def __init__(self) -> None:
        self.peer_calls = 0

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", "req-1"),)

    def peer(self) -> str:
        self.peer_calls += 1
        return "ipv4:127.0.0.1:5000"


async def _answers(
    request: service_pb2.GetExecutionRequest, metadata: CallMetadata, context: Any
) -> bytes:
    return b"answer"


async def _call(access_log: AccessLog) -> _Context:
    call = guarded(
        METHOD,
        service_pb2.GetExecutionRequest,
        _answers,
        ServiceMetrics(),
        access_log,
        max_in_flight=1,
    )
    context = _Context()
    assert await call(b"", cast(Context, context)) == b"answer"
    access_log.flush()
    return context


async def test_with_access_logging_off_the_peer_is_never_asked_for() -> None:
    assert (await _call(AccessLog(None))).peer_calls == 0


async def test_with_access_logging_on_the_peer_is_asked_for_once_and_logged() -> None:
    stream = io.BytesIO()
    context = await _call(AccessLog(stream))
    assert context.peer_calls == 1
    line = json.loads(stream.getvalue())
    assert (line["request_id"], line["peer"]) == ("req-1", "ipv4:127.0.0.1:5000")
