"""Micro-benchmark of the gateway's response renderer against naive rendering.

    python -m bench.micro_render [--repeat N]

For a demo-like `ExecutionDetail` with 10 and with 1,000 documents (~330 bytes each), it
prints CPU µs per render for:
- `execgate`: `compile_response_renderer` (descriptor-specialised, RawJson spliced);
- `naive`: `MessageToDict(preserving_proto_field_name=True)` + `json.dumps`, which leaves
  the documents as `{"json": "<array text>"}` (not even the same JSON);
- `naive+loads`: the same plus `json.loads` of every RawJson(List), which is what a naive
  gateway needs to produce the same body as execgate.
Each includes parsing the message from its wire bytes, as a gateway does per response.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from execgate.retrievers.v1 import execution_pb2
from execgate.type.v1 import raw_json_pb2
from google.protobuf import json_format

from gateway.transcode.renderer import compile_response_renderer

_STAGES = ("feature_search", "attribute_filter", "rerank")


def _document(index: int) -> str:
    """A compact JSON document of about 330 bytes, shaped like a retriever result."""
    document = {
        "document_id": f"doc_{index:08d}a7f3c2",
        "score": round(0.98 - index * 0.0003, 6),
        "payload": {
            "title": f"Quarterly product review, part {index}",
            "text": "Sample content describing the retrieved document in a few words. " * 2,
            "url": f"https://example.com/docs/{index}",
        },
        "metadata": {"category": "AI", "language": "en", "page": index % 40},
    }
    return json.dumps(document, separators=(",", ":"))


def build_execution(document_count: int) -> execution_pb2.ExecutionDetail:
    """A completed execution like the demo's: three stages, budget, pagination, documents."""
    detail = execution_pb2.ExecutionDetail(
        retriever_id="ret_7fK2mQ9xLp",
        execution_id=f"exec_{document_count:04d}Qm3ZtY8v",
        status=execution_pb2.EXECUTION_STATUS_COMPLETED,
        documents=raw_json_pb2.RawJsonList(
            json="[" + ",".join(_document(i) for i in range(document_count)) + "]"
        ),
        pagination=raw_json_pb2.RawJson(
            json=f'{{"total":{document_count},"limit":{document_count},"offset":0,'
            '"has_next":false,"has_previous":false}'
        ),
        budget=raw_json_pb2.RawJson(
            json='{"credits_used":0.5,"credits_remaining":99.5,"time_used_ms":150}'
        ),
        warnings=["filter on unindexed field metadata.page"],
        stages_completed=3,
        total_stages=3,
    )
    counts = (5000, 250, document_count)
    for position, name in enumerate(_STAGES):
        stage = detail.stage_statistics.stages[name]
        stage.input_count = counts[position - 1] * 4 if position else 20000
        stage.output_count = counts[position]
        stage.duration_ms = 12.5 * (position + 1)
        stage.efficiency = stage.output_count / stage.input_count
        stage.cache_hit = False
        stage.metadata.json = '{"model_name":"bge-reranker"}' if name == "rerank" else "{}"
    detail.stage_statistics.total_time_ms = 75.0
    detail.stage_statistics.credits_used = 0.5
    detail.created_at.FromNanoseconds(1_795_898_295_123_456_000)
    detail.completed_at.FromNanoseconds(1_795_898_295_198_000_000)
    return detail


def _naive(wire: bytes) -> bytes:
    message = execution_pb2.ExecutionDetail.FromString(wire)
    body = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return json.dumps(body).encode()


def _naive_with_loads(wire: bytes) -> bytes:
    message = execution_pb2.ExecutionDetail.FromString(wire)
    body = json_format.MessageToDict(message, preserving_proto_field_name=True)
    for key in ("documents", "pagination", "budget"):
        if key in body:
            body[key] = json.loads(body[key]["json"])
    return json.dumps(body).encode()


_render = compile_response_renderer(execution_pb2.ExecutionDetail.DESCRIPTOR)


def _execgate(wire: bytes) -> bytes:
    return _render(execution_pb2.ExecutionDetail.FromString(wire))


def _microseconds(function: Callable[[bytes], bytes], wire: bytes, repeat: int) -> float:
    """CPU µs per call: the best of 5 rounds (process time, so other load on the machine
    inflates it less than wall time would)."""
    rounds = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            function(wire)
        rounds.append((time.process_time() - start) / repeat * 1e6)
    return min(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000, help="calls per round (10 documents)")
    args = parser.parse_args()
    print(f"{'case':<14}{'execgate µs':>14}{'naive µs':>12}{'naive+loads µs':>16}{'speed-up':>10}")
    for count, repeat in ((10, args.repeat), (1000, max(args.repeat // 100, 5))):
        wire = build_execution(count).SerializeToString()
        fast = _microseconds(_execgate, wire, repeat)
        naive = _microseconds(_naive, wire, repeat)
        naive_loads = _microseconds(_naive_with_loads, wire, repeat)
        print(
            f"{count:>5} docs {len(wire) // 1024:>3}K{fast:>14.1f}{naive:>12.1f}"
            f"{naive_loads:>16.1f}{naive_loads / fast:>9.1f}x"
        )


if __name__ == "__main__":
    main()
