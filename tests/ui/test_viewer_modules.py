"""The page's pure modules, run in the browser as the page runs them (imported from /ui/).

The SSE parser meets bytes split anywhere; stages keep the API's order; budget
limits are found by name; watch events update the execution.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.viewer_stack import Viewer

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


async def _run(viewer: Viewer, module: str, body: str, argument: Any = None) -> Any:
    await viewer.page.goto(f"{viewer.base_url}/ui/")
    return await viewer.page.evaluate(
        f"async (argument) => {{ const m = await import('/ui/{module}'); {body} }}", argument
    )


STREAM = (
    ": heartbeat comment\r\n"
    "retry: 2500\n"
    'event: snapshot\nid: 0\ndata: {"a":\ndata: 1}\n\n'
    ' data: a field named " data" is not data\n\n'
    'event: stage_progress\r\nid: 1\r\ndata: {"b": "x\\ny"}\r\n\r\n'
    "data: plain\rdata: two\r\r"
    "event: ignored-without-data\nid: 2\n\n"
)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, len(STREAM)])
async def test_sse_parser_gives_the_same_events_however_the_bytes_are_split(
    viewer: Viewer, chunk: int
) -> None:
    events = await _run(
        viewer,
        "sse.js",
        """const seen = [];
        const parser = new m.SseParser((event) => seen.push(event));
        for (let i = 0; i < argument.text.length; i += argument.chunk) {
          parser.push(argument.text.slice(i, i + argument.chunk));
        }
        return { seen, retry: parser.retryMs, last: parser.lastEventId };""",
        {"text": STREAM, "chunk": chunk},
    )
    assert events["seen"] == [
        {"type": "snapshot", "data": '{"a":\n1}', "id": "0"},
        {"type": "stage_progress", "data": '{"b": "x\\ny"}', "id": "1"},
        {"type": "message", "data": "plain\ntwo", "id": "1"},
    ]
    assert events["retry"] == 2500
    assert events["last"] == "2"  # an id without data still moves the resume position
    viewer.assert_clean()


async def test_stages_keep_the_order_the_api_gives(viewer: Viewer) -> None:
    # Not alphabetical, not by counts: the order of the keys (the API's pipeline order).
    stages = '{"z_search": {"input_count": 1}, "b_filter": {"input_count": 9}, "a_rerank": {}}'
    order = await _run(
        viewer,
        "stages.js",
        "return m.pipelineOrder(JSON.parse(argument)).map(([name]) => name);",
        stages,
    )
    assert order == ["z_search", "b_filter", "a_rerank"]
    assert await _run(viewer, "stages.js", "return m.pipelineOrder(undefined);") == []
    viewer.assert_clean()


async def test_budget_limits_are_found_by_name(viewer: Viewer) -> None:
    meters = await _run(
        viewer,
        "budget.js",
        "return m.budgetMeters(argument);",
        {
            "credits_used": 4,
            "credits_remaining": 96,
            "time_used_ms": 137,
            "max_time_ms": 500,
            "tokens_used": 10,
            "note": "x",
        },
    )
    assert meters == [
        {"key": "credits_used", "thing": "credits", "unit": "", "used": 4, "limit": 100},
        {"key": "time_used_ms", "thing": "time", "unit": "ms", "used": 137, "limit": 500},
        {"key": "tokens_used", "thing": "tokens", "unit": "", "used": 10, "limit": None},
    ]
    viewer.assert_clean()


async def test_watch_events_update_the_execution(viewer: Viewer) -> None:
    result = await _run(
        viewer,
        "live_state.js",
        """let detail = { status: "pending", stages_completed: 0, total_stages: 2,
                          stage_statistics: { stages: {}, total_time_ms: 0, credits_used: 0 },
                          budget: {}, current_stage: null };
        const steps = [];
        for (const [type, data] of argument) {
          detail = m.applyEvent(detail, type, data);
          steps.push(JSON.parse(JSON.stringify(detail)));
        }
        return steps;""",
        [
            [
                "stage_started",
                {
                    "event_id": "1",
                    "stage_started": {
                        "stage_name": "search",
                        "status": "processing",
                        "stages_completed": 0,
                        "total_stages": 2,
                    },
                },
            ],
            [
                "stage_completed",
                {
                    "event_id": "2",
                    "stage_completed": {
                        "stage_name": "search",
                        "statistics": {"input_count": 9, "output_count": 3},
                        "status": "processing",
                        "stages_completed": 1,
                        "total_stages": 2,
                    },
                },
            ],
            [
                "budget_changed",
                {"event_id": "3", "budget_changed": {"budget": {"credits_used": 1}}},
            ],
            ["heartbeat", {"event_id": "3", "heartbeat": {}}],
            ["completed", {"event_id": "4", "completed": {"status": "completed", "documents": []}}],
        ],
    )
    assert result[0]["status"] == "processing"
    assert result[0]["current_stage"] == "search"
    assert result[1]["stages_completed"] == 1
    assert result[1]["stage_statistics"]["stages"]["search"]["output_count"] == 3
    assert result[2]["budget"] == {"credits_used": 1}
    assert result[3] == result[2]
    assert result[4] == {"status": "completed", "documents": []}
    viewer.assert_clean()
