"""The peer: GetExecution over REST the way a hand-written Python gateway would do it.

aiohttp handler → grpc.aio stub → `json_format.MessageToDict(preserving_proto_field_name=True)`
→ a little hand-written fixing up into the contract's shape → `json.dumps`. No uvloop, no
orjson, no tricks: the baseline execgate is compared with. It talks to the same service
process as execgate and answers the same contract-shaped JSON (checked by the harness).

    python -m bench.peer_gateway --listen 127.0.0.1:PORT --backend 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc
from aiohttp import web
from execgate.retrievers.v1 import execution_pb2, execution_service_pb2, execution_service_pb2_grpc
from google.protobuf import json_format

# googleapis-common-protos ships no type information.
from google.rpc import (  # type: ignore[import-untyped, unused-ignore]
    error_details_pb2,
    status_pb2,
)

if TYPE_CHECKING:  # the async stub type exists only for type checkers
    from execgate.retrievers.v1.execution_service_pb2_grpc import ExecutionServiceAsyncStub

STUB: web.AppKey[ExecutionServiceAsyncStub] = web.AppKey("stub")
FORWARDED_HEADERS = ("authorization", "x-namespace", "x-request-id", "traceparent")
DEADLINE_S = 10.0

# CONTRACT.md's gRPC → HTTP table, with the envelope's `type` per HTTP status.
HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
ERROR_TYPE = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "NotFoundError",
    409: "AlreadyExistsError",
    429: "TooManyRequestsError",
    501: "NotImplementedError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
}

RAW_JSON_FIELDS = ("pagination", "budget", "optimization_summary", "learned_fusion_context")
NULLABLE_FIELDS = (
    "cached_at",
    "error",
    "optimization_summary",
    "learned_fusion_context",
    "completed_at",
    "current_stage",
)
NULLABLE_STAGE_FIELDS = ("cache_hit", "cached_at", "error", "llm_calls", "tokens_used")


def execution_to_dict(detail: execution_pb2.ExecutionDetail, legacy: bool) -> dict[str, Any]:
    """The ExecutionDetail JSON of CONTRACT.md, fixed up field by field from MessageToDict."""
    body = json_format.MessageToDict(
        detail,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    body["status"] = body["status"].removeprefix("EXECUTION_STATUS_").lower()
    # RawJson / RawJsonList messages arrive as {"json": "<text>"}: parse them into JSON
    # values (the documents are one JSON array text).
    body["documents"] = json.loads(body.get("documents", {}).get("json") or "[]")
    # The deprecated alias is, by contract, equal to `documents` when asked for.
    body.pop("results", None)
    if legacy:
        body["results"] = body["documents"]
    for name in RAW_JSON_FIELDS:
        if name in body:
            body[name] = json.loads(body[name]["json"])
    body.setdefault("pagination", {})
    body.setdefault("budget", {})
    for name in NULLABLE_FIELDS:
        body.setdefault(name, None)
    statistics = body.setdefault("stage_statistics", {})
    statistics.setdefault("stages", {})
    statistics.setdefault("total_time_ms", 0.0)
    statistics.setdefault("credits_used", 0.0)
    for stage in statistics["stages"].values():
        stage["metadata"] = json.loads(stage["metadata"]["json"]) if "metadata" in stage else {}
        for name in NULLABLE_STAGE_FIELDS:
            stage.setdefault(name, None)
    return body


def error_response(error: grpc.aio.AioRpcError) -> web.Response:
    status = HTTP_STATUS.get(error.code(), 500)
    code: str | None = None
    details: dict[str, str] | None = None
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    code = info.reason.lower()
                    details = dict(info.metadata) or None
    body = {
        "success": False,
        "status": status,
        "error": {
            "message": error.details() or "",
            "type": ERROR_TYPE.get(status, "InternalServerError"),
            "code": code,
            "details": details,
        },
    }
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def get_execution(request: web.Request) -> web.Response:
    metadata = [
        (name, request.headers[name]) for name in FORWARDED_HEADERS if name in request.headers
    ]
    legacy = request.query.get("include_legacy_results", "false").lower() == "true"
    try:
        detail = await request.app[STUB].GetExecution(
            execution_service_pb2.GetExecutionRequest(
                retriever_id=request.match_info["retriever_id"],
                execution_id=request.match_info["execution_id"],
                include_legacy_results=legacy,
            ),
            metadata=metadata,
            timeout=DEADLINE_S,
        )
    except grpc.aio.AioRpcError as error:
        return error_response(error)
    return web.Response(
        text=json.dumps(execution_to_dict(detail, legacy)), content_type="application/json"
    )


def build_app(backend: str) -> web.Application:
    app = web.Application()

    async def channel_context(app: web.Application) -> Any:
        channel = grpc.aio.insecure_channel(backend)
        app[STUB] = execution_service_pb2_grpc.ExecutionServiceStub(channel)
        yield
        await channel.close()

    app.cleanup_ctx.append(channel_context)
    app.router.add_get("/v1/retrievers/{retriever_id}/executions/{execution_id}", get_execution)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a hand-written naive REST gateway")
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--backend", required=True, help="gRPC service HOST:PORT")
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    web.run_app(build_app(args.backend), host=host, port=int(port), print=None)


if __name__ == "__main__":
    main()
