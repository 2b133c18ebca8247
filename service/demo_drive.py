"""`python -m service demo drive`: move a demo execution forward, step by step, for watchers.

It writes through the same domain rules and event rules as the write path
(`lifecycle` for the state machine, `change_events` for the event log) and
the store the service uses, so a service process watching the same store sees
each step arrive as it would from a writer: through PostgreSQL NOTIFY, or
through its SQLite change check when the service is another process.

Each remaining stage of the demo pipeline takes two steps (running with
partial counts, then finished with its final counts and the budget used so
far); the last step completes the execution with ten documents.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from execgate.type.v1 import raw_json_pb2

from service import admin
from service.demo import PIPELINE, DemoData, demo_documents, fresh_execution
from service.executions import lifecycle
from service.executions.events import change_events
from service.executions.records import TERMINAL
from service.store.protocol import ExecutionRow, ExecutionUpdate, Store

# (documents in, documents out, duration in ms) of each demo stage.
_STAGE_COUNTS = {
    "feature_search": (50_000, 2_500, 44.0),
    "attribute_filter": (2_500, 400, 6.3),
    "rerank": (400, 10, 88.9),
}
_CREDITS_PER_STAGE = 0.4
_CREDITS_LIMIT = 5.0


@dataclass(frozen=True, slots=True)
class Step:
    description: str
    update: ExecutionUpdate


def remaining_steps(row: ExecutionRow, now_us: Callable[[], int]) -> list[Step]:
    """The writes that take `row` (in flight) from where it is to completed."""
    detail = execution_pb2.ExecutionDetail.FromString(row.detail)
    steps: list[Step] = []
    done = detail.stages_completed
    for index in range(done, len(PIPELINE)):
        stage = PIPELINE[index]
        following = PIPELINE[index + 1] if index + 1 < len(PIPELINE) else None
        inputs, outputs, duration = _STAGE_COUNTS[stage]
        running = _report(row, stage, (inputs, outputs * 3), duration / 2, index, stage, None)
        finished = _report(
            row, stage, (inputs, outputs), duration, index + 1, following, _budget(index + 1)
        )
        steps.append(Step(f"{stage}: running", running))
        steps.append(Step(f"{stage}: finished", finished))
    steps.append(Step("completed", _complete(row, now_us)))
    return steps


def _report(
    row: ExecutionRow,
    stage: str,
    counts: tuple[int, int],
    duration_ms: float,
    done: int,
    running: str | None,
    budget: raw_json_pb2.RawJson | None,
) -> ExecutionUpdate:
    request = writer_pb2.ReportStageProgressRequest(
        retriever_id=row.retriever_id,
        execution_id=row.execution_id,
        stage_name=stage,
        statistics=execution_pb2.StageStatistics(
            input_count=counts[0], output_count=counts[1], duration_ms=duration_ms
        ),
        stages_completed=done,
        budget=budget,
    )
    if running is not None:
        request.current_stage = running
    report = lifecycle.prepare_stage_report(request)
    return lambda current: lifecycle.report_stage(current, report)


def _complete(row: ExecutionRow, now_us: Callable[[], int]) -> ExecutionUpdate:
    completion = lifecycle.prepare_completion(
        writer_pb2.CompleteExecutionRequest(
            retriever_id=row.retriever_id,
            execution_id=row.execution_id,
            documents=demo_documents(10, seed=7),
            budget=_budget(len(PIPELINE)),
            total_time_ms=sum(duration for _, _, duration in _STAGE_COUNTS.values()),
            credits_used=_CREDITS_PER_STAGE * len(PIPELINE),
        )
    )
    return lambda current: lifecycle.complete(current, completion, now_us())


def _budget(stages_done: int) -> raw_json_pb2.RawJson:
    used = round(_CREDITS_PER_STAGE * stages_done, 2)
    value = {
        "credits_used": used,
        "credits_remaining": round(_CREDITS_LIMIT - used, 2),
        "credits_limit": _CREDITS_LIMIT,
    }
    return raw_json_pb2.RawJson(json=orjson.dumps(value).decode())


async def drive(
    store: Store,
    data: DemoData,
    target: str,
    *,
    interval: float,
    say: Callable[[str], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> str:
    """Drive the demo execution `target` (a key of `data.executions`, or "new") to completed.

    Returns its ID; raises AdminError when the execution is already finished.
    """
    if target == "new":
        row, _ = await store.insert_execution(fresh_execution(data.retriever, _now_us()))
    else:
        found = await store.get_execution(
            data.namespace.id, data.retriever.id, data.executions[target]
        )
        if found is None:
            raise admin.AdminError(f"the demo execution {target!r} is missing; run `demo` first")
        row = found
    if row.status in TERMINAL:
        raise admin.AdminError(
            f"execution {row.execution_id} is already {row.status}; "
            "`demo drive --execution new` starts a fresh one"
        )
    say(f"execution {row.execution_id}")
    for step in remaining_steps(row, _now_us):
        await sleep(interval)
        await store.update_execution(
            row.namespace_id, row.retriever_id, row.execution_id, step.update, change_events
        )
        say(f"  {step.description}")
    return row.execution_id


def _now_us() -> int:
    return time.time_ns() // 1000
