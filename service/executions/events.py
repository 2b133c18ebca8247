"""The events a write makes, for the execution's event log (WatchExecution).

`change_events` compares the stored row before and after one write and
returns the serialized `ExecutionEvent`s (without `event_id`: the log's
sequence number is the ID, added when the event is sent). It runs inside the
store's transaction, so the log and the row never disagree.

The terminal event is logged as an empty `completed`/`failed` marker: the
final detail (up to hundreds of kilobytes with its documents) is already the
stored row, which never changes again, so the watcher sends the row's bytes
in its place instead of the log keeping a second copy.
"""

from __future__ import annotations

from typing import TypeVar

from execgate.retrievers.v1 import execution_events_pb2 as events_pb2
from execgate.retrievers.v1 import execution_pb2

from service.store.protocol import ExecutionRow

Event = events_pb2.ExecutionEvent
_StageEvent = TypeVar("_StageEvent", events_pb2.StageCompleted, events_pb2.StageProgress)

# The oneof fields whose event ends a stream.
TERMINAL_EVENTS = frozenset({"completed", "failed"})


def change_events(before: ExecutionRow, after: ExecutionRow) -> list[bytes]:
    """Serialized events for the change from `before` to `after`; none when nothing changed."""
    if after.etag == before.etag:
        return []  # an idempotent retry or an identical report
    old = execution_pb2.ExecutionDetail.FromString(before.detail)
    new = execution_pb2.ExecutionDetail.FromString(after.detail)
    events: list[Event] = []
    if new.status == execution_pb2.EXECUTION_STATUS_COMPLETED:
        _budget(old, new, events)
        events.append(Event(completed=execution_pb2.ExecutionDetail()))
    elif new.status == execution_pb2.EXECUTION_STATUS_FAILED:
        events.append(Event(failed=execution_pb2.ExecutionDetail()))
    else:
        _stages(old, new, events)
        _budget(old, new, events)
    return [event.SerializeToString(deterministic=True) for event in events]


def _stages(
    old: execution_pb2.ExecutionDetail, new: execution_pb2.ExecutionDetail, events: list[Event]
) -> None:
    started = _started(old, new)
    old_stages = old.stage_statistics.stages
    finished_more = new.stages_completed > old.stages_completed
    for name, statistics in new.stage_statistics.stages.items():
        if name in old_stages and old_stages[name] == statistics:
            continue
        if started is not None and started.stage_name == name:
            # The reporting stage is also the one now running: started first.
            events.append(Event(stage_started=started))
            started = None
        if finished_more and name != new.current_stage:
            completed = _stage_event(events_pb2.StageCompleted, name, statistics, new)
            events.append(Event(stage_completed=completed))
        else:
            progress = _stage_event(events_pb2.StageProgress, name, statistics, new)
            events.append(Event(stage_progress=progress))
    if started is not None:
        events.append(Event(stage_started=started))


def _stage_event(
    kind: type[_StageEvent],
    name: str,
    statistics: execution_pb2.StageStatistics,
    new: execution_pb2.ExecutionDetail,
) -> _StageEvent:
    """A StageCompleted or StageProgress: the two carry the same fields."""
    return kind(
        stage_name=name,
        statistics=statistics,
        status=new.status,
        stages_completed=new.stages_completed,
        total_stages=new.total_stages,
    )


def _started(
    old: execution_pb2.ExecutionDetail, new: execution_pb2.ExecutionDetail
) -> events_pb2.StageStarted | None:
    if not new.HasField("current_stage"):
        return None
    if old.HasField("current_stage") and old.current_stage == new.current_stage:
        return None
    return events_pb2.StageStarted(
        stage_name=new.current_stage,
        status=new.status,
        stages_completed=new.stages_completed,
        total_stages=new.total_stages,
    )


def _budget(
    old: execution_pb2.ExecutionDetail, new: execution_pb2.ExecutionDetail, events: list[Event]
) -> None:
    if new.budget.json != old.budget.json:
        events.append(Event(budget_changed=events_pb2.BudgetChanged(budget=new.budget)))
