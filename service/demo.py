"""Seed a demo namespace idempotently: a retriever and one execution in every status.

Every execution is built through the domain's state machine (start → stage
reports → complete/fail), exactly as the write path would, and then stored
with one insert keyed by a fixed request id, so a second run finds the rows
of the first instead of adding new ones. The demo API key's secret is kept in
a file (by default next to the SQLite database) so that re-runs print the same
key; only its hash is in the store.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from execgate.type.v1 import raw_json_pb2

from service import admin, ids
from service.auth import hash_api_key
from service.executions import lifecycle
from service.store import SQLITE_PREFIX
from service.store.protocol import ExecutionRow, Namespace, Retriever, Store

NAMESPACE = "demo"
RETRIEVER = "product-search"
PIPELINE = ("feature_search", "attribute_filter", "rerank")
EXECUTION_KEYS = ("completed_10", "completed_1000", "failed", "processing", "pending")
_MINUTE_US = 60_000_000


@dataclass(frozen=True, slots=True)
class DemoData:
    namespace: Namespace
    retriever: Retriever
    api_key: str
    executions: dict[str, str]  # EXECUTION_KEYS → exec_…

    def as_json(self) -> dict[str, Any]:
        return {
            "namespace": {"id": self.namespace.id, "name": self.namespace.name},
            "api_key": self.api_key,
            "retriever": {"id": self.retriever.id, "name": self.retriever.name},
            "executions": self.executions,
        }


def shell_exports(data: DemoData) -> str:
    """`export` lines naming the demo data, for examples that work verbatim in a shell."""
    values = {
        "EXECGATE_DEMO_KEY": data.api_key,
        "EXECGATE_DEMO_NAMESPACE": data.namespace.name,
        "EXECGATE_DEMO_RETRIEVER_ID": data.retriever.id,
        "EXECGATE_DEMO_RETRIEVER": data.retriever.name,
        **{f"EXECGATE_DEMO_{name.upper()}": value for name, value in data.executions.items()},
    }
    # Every value is an ID, a key or a name of [A-Za-z0-9_.-]: nothing to quote.
    return "\n".join(f"export {name}={value}" for name, value in values.items())


def default_key_file(store_url: str) -> Path:
    """Where the demo key is kept: beside the SQLite file, else under ./var/."""
    if store_url.startswith(SQLITE_PREFIX):
        return Path(store_url[len(SQLITE_PREFIX) :] + ".demo-key")
    return Path("var") / "demo-api-key"


async def seed(store: Store, key_file: Path) -> DemoData:
    namespace = await _namespace(store)
    retriever = await _retriever(store, namespace)
    api_key = await _api_key(store, namespace, key_file)
    now_us = time.time_ns() // 1000
    executions = {
        name: (await store.insert_execution(build(retriever, now_us)))[0].execution_id
        for name, build in _BUILDERS.items()
    }
    return DemoData(namespace, retriever, api_key, executions)


async def _namespace(store: Store) -> Namespace:
    existing = await store.find_namespace(NAMESPACE)
    if existing is not None:
        return existing
    try:
        return await admin.create_namespace(store, NAMESPACE)
    except admin.AdminError:  # a concurrent run created it
        return await admin.find_namespace(store, NAMESPACE)


async def _retriever(store: Store, namespace: Namespace) -> Retriever:
    existing = await store.find_retriever(namespace.id, RETRIEVER)
    if existing is not None:
        return existing
    try:
        return await admin.create_retriever(store, namespace.id, RETRIEVER)
    except admin.AdminError:  # a concurrent run created it
        found = await store.find_retriever(namespace.id, RETRIEVER)
        assert found is not None
        return found


async def _api_key(store: Store, namespace: Namespace, key_file: Path) -> str:
    secret = _read_key_file(key_file)
    if secret is not None:
        key = await store.find_api_key(hash_api_key(secret))
        if key is not None and namespace.id in key.namespace_ids:
            return secret
    issued = await admin.create_api_key(store, [namespace.id], admin.PERMISSIONS)
    _write_key_file(key_file, issued.secret)
    return issued.secret


def _read_key_file(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_key_file(path: Path, secret: str) -> None:
    """Owner-only permissions, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")
    temporary.replace(path)


# --- the executions -------------------------------------------------------------


def _raw(value: dict[str, Any]) -> raw_json_pb2.RawJson:
    return raw_json_pb2.RawJson(json=orjson.dumps(value).decode())


def _started(retriever: Retriever, request_id: str, created_us: int) -> ExecutionRow:
    return lifecycle.start(
        writer_pb2.StartExecutionRequest(
            retriever_id=retriever.id, request_id=request_id, total_stages=len(PIPELINE)
        ),
        execution_id=ids.new_execution_id(),
        namespace_id=retriever.namespace_id,
        retriever_id=retriever.id,
        now_us=created_us,
    )


def _stage(
    row: ExecutionRow,
    stage: str,
    counts: tuple[int, int],
    duration_ms: float,
    *,
    done: int,
    running: str | None,
    metadata: dict[str, Any],
    **optional: Any,
) -> ExecutionRow:
    statistics = execution_pb2.StageStatistics(
        input_count=counts[0],
        output_count=counts[1],
        duration_ms=duration_ms,
        metadata=_raw(metadata),
        **optional,
    )
    request = writer_pb2.ReportStageProgressRequest(
        retriever_id=row.retriever_id,
        execution_id=row.execution_id,
        stage_name=stage,
        statistics=statistics,
        stages_completed=done,
    )
    if running is not None:
        request.current_stage = running
    return lifecycle.report_stage(row, lifecycle.prepare_stage_report(request))


def _search_stages(row: ExecutionRow, returned: int, *, cached_search: bool) -> ExecutionRow:
    candidates = returned * 25
    filtered = returned * 4
    search_cache: dict[str, Any] = (
        {"cache_hit": True, "cached_at": row.created_at_us / 1e6 - 90.0}
        if cached_search
        else {"cache_hit": False}
    )
    row = _stage(
        row,
        "feature_search",
        (candidates * 5, candidates),
        41.7,
        done=1,
        running="attribute_filter",
        metadata={
            "feature_uri": "mixpeek://text_extractor@v1/multilingual_e5_large",
            "index": "hnsw",
            "top_k": candidates,
        },
        **search_cache,
    )
    row = _stage(
        row,
        "attribute_filter",
        (candidates, filtered),
        6.3,
        done=2,
        running="rerank",
        metadata={"expression": "in_stock == true AND price < 200", "pushed_down": True},
    )
    return _stage(
        row,
        "rerank",
        (filtered, returned),
        88.9,
        done=3,
        running=None,
        metadata={"model_name": "bge-reranker-v2-m3", "batch_size": 32},
        llm_calls=1,
        tokens_used=filtered * 96,
    )


_CATEGORIES = ("shoes", "jackets", "backpacks", "tents", "headlamps")
_BRANDS = ("Northpeak", "Trailwise", "Altura", "Summit & Co", "Riverstone")
_COLORS = ("slate", "ember", "moss", "glacier", "sand")
_ADJECTIVES = ("lightweight", "waterproof", "breathable", "insulated", "packable")


def demo_documents(count: int, seed: int) -> list[raw_json_pb2.RawJson]:
    """Product documents of about 330 bytes each, the same on every run."""
    rng = random.Random(seed)
    documents = []
    for rank in range(count):
        category = rng.choice(_CATEGORIES)
        adjective = rng.choice(_ADJECTIVES)
        brand = rng.choice(_BRANDS)
        documents.append(
            _raw(
                {
                    "document_id": f"doc_{seed:02d}{rank:05d}",
                    "score": round(0.98 - rank * 0.9 / count, 4),
                    "collection_id": "col_outdoor_catalog",
                    "payload": {
                        "text": (
                            f"{brand} {adjective} {category[:-1]} for day hikes and "
                            f"multi-day treks, tested in wet alpine conditions. Model {rank}."
                        ),
                        "metadata": {
                            "category": category,
                            "brand": brand,
                            "price": round(rng.uniform(19, 199), 2),
                            "in_stock": rng.random() > 0.2,
                            "rating": round(rng.uniform(3.5, 5.0), 1),
                            "sku": f"SKU-{rng.randrange(10**7):07d}",
                            "color": rng.choice(_COLORS),
                        },
                    },
                }
            )
        )
    return documents


def _completed(
    row: ExecutionRow, documents: list[raw_json_pb2.RawJson], **fields: Any
) -> ExecutionRow:
    request = writer_pb2.CompleteExecutionRequest(
        retriever_id=row.retriever_id,
        execution_id=row.execution_id,
        documents=documents,
        pagination=_raw(
            {"total": len(documents), "limit": len(documents), "offset": 0, "has_next": False}
        ),
        **fields,
    )
    return lifecycle.complete(
        row, lifecycle.prepare_completion(request), row.created_at_us + 137_000
    )


def _completed_10(retriever: Retriever, now_us: int) -> ExecutionRow:
    row = _search_stages(
        _started(retriever, "demo-completed-10", now_us - 8 * _MINUTE_US), 10, cached_search=False
    )
    return _completed(
        row,
        demo_documents(10, seed=10),
        budget=_raw(
            {
                "credits_used": 0.5,
                "credits_remaining": 99.5,
                "time_used_ms": 137,
                "max_credits": 100,
            }
        ),
        optimization_applied=True,
        optimization_summary=_raw(
            {
                "original_stage_count": 4,
                "optimized_stage_count": 3,
                "optimization_time_ms": 8.2,
                "rules_applied": ["push_down_filters", "merge_adjacent_filters"],
                "stage_reduction_pct": 25,
            }
        ),
        learned_fusion_context=_raw(
            {
                "context_key": "segment:outdoor-enthusiasts",
                "sampled_weights": [0.62, 0.38],
                "feature_uris": [
                    "mixpeek://text_extractor@v1/multilingual_e5_large",
                    "mixpeek://image_extractor@v1/siglip_base",
                ],
                "effective_exploration": 0.08,
                "context_level": "segment",
            }
        ),
        total_time_ms=137.0,
        credits_used=0.5,
    )


def _completed_1000(retriever: Retriever, now_us: int) -> ExecutionRow:
    created_us = now_us - 10 * _MINUTE_US
    row = _search_stages(
        _started(retriever, "demo-completed-1000", created_us), 1000, cached_search=True
    )
    return _completed(
        row,
        demo_documents(1000, seed=42),
        budget=_raw({"credits_used": 4.0, "credits_remaining": 96.0, "time_used_ms": 137}),
        warnings=["Filtering on unindexed field 'metadata.rating' scanned 25,000 documents"],
        cached_at=created_us / 1e6 - 300.0,
        total_time_ms=137.0,
        credits_used=4.0,
    )


def _failed(retriever: Retriever, now_us: int) -> ExecutionRow:
    row = _started(retriever, "demo-failed", now_us - 6 * _MINUTE_US)
    row = _stage(
        row,
        "feature_search",
        (12500, 250),
        39.2,
        done=1,
        running="attribute_filter",
        metadata={"top_k": 250},
        cache_hit=False,
    )
    row = _stage(
        row,
        "attribute_filter",
        (250, 0),
        2.4,
        done=1,
        running=None,
        metadata={"expression": "collection == 'winter-2025'"},
        error="Collection 'winter-2025' not found",
    )
    failure = lifecycle.prepare_failure(
        writer_pb2.FailExecutionRequest(
            retriever_id=row.retriever_id,
            execution_id=row.execution_id,
            error="Retriever execution failed: Collection not found",
            total_time_ms=41.6,
        )
    )
    return lifecycle.fail(row, failure, row.created_at_us + 41_600)


def _processing(retriever: Retriever, now_us: int) -> ExecutionRow:
    row = _started(retriever, "demo-processing", now_us - _MINUTE_US)
    return _stage(
        row,
        "feature_search",
        (50000, 2500),
        44.0,
        done=1,
        running="attribute_filter",
        metadata={"top_k": 2500},
        cache_hit=False,
    )


def fresh_execution(retriever: Retriever, now_us: int) -> ExecutionRow:
    """A new pending execution of the demo pipeline (no request id: never deduplicated)."""
    return _started(retriever, "", now_us)


def _pending(retriever: Retriever, now_us: int) -> ExecutionRow:
    return _started(retriever, "demo-pending", now_us - 10_000_000)


_BUILDERS = {
    "completed_10": _completed_10,
    "completed_1000": _completed_1000,
    "failed": _failed,
    "processing": _processing,
    "pending": _pending,
}
