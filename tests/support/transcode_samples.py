"""ExecutionDetail messages in every status, shaped like the service's demo executions."""

from __future__ import annotations

import json

from execgate.retrievers.v1 import execution_pb2
from execgate.type.v1 import raw_json_pb2

CREATED_NANOS = 1_795_898_295_123_456_000  # 2026-11-28T20:38:15.123456Z
COMPLETED_NANOS = 1_795_898_295_198_000_000  # 2026-11-28T20:38:15.198Z
STAGES = ("feature_search", "attribute_filter", "rerank")


def document_json(index: int) -> str:
    """A compact ~330-byte document; non-ASCII text checks that splicing keeps it verbatim."""
    document = {
        "document_id": f"doc_{index:08d}",
        "score": round(0.98 - index * 0.0003, 6),
        "payload": {
            "title": f"Résumé of quarterly review {index}",
            "text": "Sample content describing the retrieved document. " * 2,
            "url": f"https://example.com/docs/{index}",
        },
        "metadata": {"category": "AI", "page": index % 40, "tags": ["a", "b"]},
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _raw(text: str) -> raw_json_pb2.RawJson:
    return raw_json_pb2.RawJson(json=text)


def _base(status: int, total_stages: int = 3) -> execution_pb2.ExecutionDetail:
    detail = execution_pb2.ExecutionDetail(
        retriever_id="ret_7fK2mQ9xLp",
        execution_id="exec_Qm3ZtY8vRw",
        status=status,  # type: ignore[arg-type]
        total_stages=total_stages,
    )
    detail.created_at.FromNanoseconds(CREATED_NANOS)
    return detail


def _add_stage(detail: execution_pb2.ExecutionDetail, name: str, inputs: int, outputs: int) -> None:
    stage = detail.stage_statistics.stages[name]
    stage.input_count = inputs
    stage.output_count = outputs
    stage.duration_ms = 12.5
    stage.efficiency = outputs / inputs if inputs else 0.0
    stage.metadata.json = '{"model_name":"bge-reranker","top_k":10}' if name == "rerank" else ""


def completed(document_count: int = 10) -> execution_pb2.ExecutionDetail:
    detail = _base(execution_pb2.EXECUTION_STATUS_COMPLETED)
    detail.documents.json = "[" + ",".join(document_json(i) for i in range(document_count)) + "]"
    detail.pagination.json = (
        f'{{"total":{document_count},"limit":{document_count},"offset":0,"has_next":false}}'
    )
    detail.budget.json = '{"credits_used":0.5,"credits_remaining":99.5,"time_used_ms":150}'
    for name, (inputs, outputs) in zip(
        STAGES, ((5000, 250), (250, 40), (40, document_count)), strict=True
    ):
        _add_stage(detail, name, inputs, outputs)
    rerank = detail.stage_statistics.stages["rerank"]
    rerank.llm_calls = 1
    rerank.tokens_used = 5120
    rerank.cache_hit = False
    detail.stage_statistics.total_time_ms = 75.0
    detail.stage_statistics.credits_used = 0.5
    detail.warnings.append("filter on unindexed field metadata.page")
    detail.optimization_applied = True
    detail.optimization_summary.json = (
        '{"original_stage_count":4,"optimized_stage_count":3,"optimization_time_ms":2.1,'
        '"rules_applied":["push_down_filters"],"stage_reduction_pct":25}'
    )
    detail.learned_fusion_context.json = '{"context_key":"global","context_level":"global"}'
    detail.stages_completed = 3
    detail.completed_at.FromNanoseconds(COMPLETED_NANOS)
    return detail


def failed() -> execution_pb2.ExecutionDetail:
    detail = _base(execution_pb2.EXECUTION_STATUS_FAILED)
    _add_stage(detail, "feature_search", 5000, 0)
    detail.stage_statistics.stages["feature_search"].error = "collection not found"
    detail.error = "Retriever execution failed: Collection not found"
    detail.stages_completed = 1
    detail.completed_at.FromNanoseconds(COMPLETED_NANOS)
    return detail


def processing() -> execution_pb2.ExecutionDetail:
    detail = _base(execution_pb2.EXECUTION_STATUS_PROCESSING)
    _add_stage(detail, "feature_search", 5000, 250)
    stage = detail.stage_statistics.stages["feature_search"]
    stage.cache_hit = True
    stage.cached_at = 1795898290.25
    detail.current_stage = "attribute_filter"
    detail.stages_completed = 1
    return detail


def pending() -> execution_pb2.ExecutionDetail:
    return _base(execution_pb2.EXECUTION_STATUS_PENDING)
