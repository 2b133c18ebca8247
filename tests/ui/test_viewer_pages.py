"""The viewer in headless Chromium against the real stack: sign-in, the list, one execution.

What the page shows is compared with what the REST API answers for the same
execution: the same stage counts, timings and budget, in pipeline order.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from service.demo import PIPELINE
from tests.ui.viewer_stack import Viewer
from tests.ui.writes import writer_for

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


async def test_sign_in_keeps_the_key_in_the_tab_session_only(viewer: Viewer) -> None:
    await viewer.sign_in()
    page = viewer.page
    stored = await page.evaluate("sessionStorage.getItem('execgate.viewer.session')")
    assert viewer.key in stored
    assert await page.evaluate("localStorage.length") == 0
    assert await page.evaluate("document.cookie") == ""
    await page.fill("#retriever", viewer.service.demo.retriever.name)
    await page.get_by_role("button", name="Open").click()
    await expect(page.locator("table.executions tbody tr")).to_have_count(5)
    assert viewer.key not in page.url
    # A reload keeps the session; signing out forgets it.
    await page.reload()
    await expect(page.locator("table.executions tbody tr")).to_have_count(5)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#signin")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0
    # The demo key is scoped to one namespace, so the namespace may be left out.
    await page.fill("#api-key", viewer.key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("table.executions tbody tr")).to_have_count(5)
    viewer.assert_clean()


async def test_list_shows_the_demo_executions(viewer: Viewer) -> None:
    await viewer.sign_in()
    await viewer.open_list()
    page = viewer.page
    rows = page.locator("table.executions tbody tr")
    await expect(rows).to_have_count(5)
    listing = await viewer.api(
        "POST", f"/v1/retrievers/{viewer.service.demo.retriever.id}/executions/list", {}
    )
    shown = await rows.evaluate_all("rows => rows.map(row => row.dataset.executionId)")
    assert shown == [summary["execution_id"] for summary in listing["results"]]  # newest first
    assert set(shown) == set(viewer.service.demo.executions.values())
    assert await page.text_content("#list-summary") == "5 shown of 5"
    first = rows.first
    assert await first.locator("td").nth(1).text_content() == listing["results"][0]["status"]

    # Status filter, then a sort, both through the URL (shareable).
    await page.select_option("#filter-status", "completed")
    await expect(rows).to_have_count(2)
    assert "status=completed" in page.url
    await page.select_option("#filter-sort", "credits_used.desc")
    await expect(page.locator("#filter-sort")).to_have_value("credits_used.desc")
    await expect(rows).to_have_count(2)
    by_credits = await rows.evaluate_all("rows => rows.map(row => row.dataset.executionId)")
    assert by_credits == [viewer.execution("completed_1000"), viewer.execution("completed_10")]
    await page.select_option("#filter-status", "failed")
    await expect(rows).to_have_count(1)
    assert await rows.first.get_attribute("data-execution-id") == viewer.execution("failed")
    viewer.assert_clean()


async def test_cursor_paging_walks_every_execution_once(viewer: Viewer) -> None:
    async with writer_for(viewer.service) as writer:
        for _ in range(20):
            await writer.start(total_stages=2)
    await viewer.sign_in()
    await viewer.open_list()
    page = viewer.page
    rows = page.locator("table.executions tbody tr")
    await expect(rows).to_have_count(20)
    assert await page.text_content("#list-summary") == "20 shown of 25"
    first_page = await rows.evaluate_all("rows => rows.map(row => row.dataset.executionId)")
    await page.click("#next-page")
    await expect(rows).to_have_count(5)
    assert "cursor=" in page.url
    second_page = await rows.evaluate_all("rows => rows.map(row => row.dataset.executionId)")
    assert not set(first_page) & set(second_page)
    assert set(viewer.service.demo.executions.values()) <= set(first_page + second_page)
    assert await page.locator("#next-page").count() == 0
    await page.get_by_role("link", name="Previous page").click()
    await expect(rows).to_have_count(20)
    assert await rows.evaluate_all("rows => rows.map(row => row.dataset.executionId)") == first_page
    viewer.assert_clean()


async def _shown(viewer: Viewer) -> dict[str, Any]:
    """The numbers the detail page shows, read from its elements."""
    return dict(
        await viewer.page.evaluate(
            """() => {
            const value = (node) => Number(node.getAttribute("value"));
            const funnel = [...document.querySelectorAll("#funnel > li")].map((li) => {
              const data = li.querySelectorAll(".stage-counts data");
              return { stage: li.dataset.stage, in: data.length ? value(data[0]) : null,
                       out: data.length ? value(data[1]) : null,
                       efficiency: data.length ? value(data[2]) : null,
                       text: li.querySelector(".stage-counts")?.textContent ?? "" };
            });
            const timing = [...document.querySelectorAll("#timing > li")].map((li) => ({
              stage: li.dataset.stage, ms: value(li.querySelector("data")) }));
            const budget = [...document.querySelectorAll("#budget > li")].map((li) => {
              const meter = li.querySelector("meter");
              return { key: li.dataset.key, used: meter ? Number(meter.value) : null,
                       max: meter ? Number(meter.max) : null,
                       text: li.querySelector(".budget-value").textContent };
            });
            return {
              status: document.querySelector(".overview .badge").textContent,
              stages: document.getElementById("stages-progress").textContent,
              total: value(document.getElementById("total-time")),
              credits: document.getElementById("credits-used").textContent,
              error: document.getElementById("execution-error")?.textContent ?? null,
              funnel, timing, budget,
              documents: document.getElementById("documents-count").textContent,
            };
          }"""
        )
    )


@pytest.mark.parametrize(
    "name", ["completed_10", "completed_1000", "failed", "processing", "pending"]
)
async def test_detail_shows_what_the_api_answers(viewer: Viewer, name: str) -> None:
    execution_id = viewer.execution(name)
    retriever = viewer.service.demo.retriever.id
    detail = await viewer.api("GET", f"/v1/retrievers/{retriever}/executions/{execution_id}")
    await viewer.sign_in()
    await viewer.open_execution(execution_id)
    live = viewer.page.locator("#live-status")
    if detail["status"] in ("pending", "processing"):
        # In flight: the page follows the watch stream (its snapshot is the same execution).
        await expect(live).to_have_attribute("data-state", "live")
    else:
        assert await live.is_hidden()
    shown = await _shown(viewer)

    assert shown["status"] == detail["status"]
    assert shown["stages"] == f"{detail['stages_completed']} of {detail['total_stages']} completed"
    statistics = detail["stage_statistics"]
    assert shown["total"] == statistics["total_time_ms"]
    assert shown["error"] == detail["error"]
    stages = statistics["stages"]
    # Pipeline order: the API's key order (not alphabetical), the demo's pipeline.
    order = [row["stage"] for row in shown["funnel"]][: len(stages)]
    assert order == list(stages) == [stage for stage in PIPELINE if stage in stages]
    for row in shown["funnel"][: len(stages)]:
        stage = stages[row["stage"]]
        assert (row["in"], row["out"]) == (stage["input_count"], stage["output_count"])
        assert row["efficiency"] == stage["efficiency"]
        assert f"in {stage['input_count']:,}" in row["text"]
        assert f"out {stage['output_count']:,}" in row["text"]
    if detail["current_stage"] and detail["current_stage"] not in stages:
        assert shown["funnel"][-1]["stage"] == detail["current_stage"]
    assert {row["stage"]: row["ms"] for row in shown["timing"]} == {
        stage: values["duration_ms"] for stage, values in stages.items()
    }
    budget = detail["budget"]
    used_keys = sorted(key for key in budget if "_used" in key)
    assert sorted(row["key"] for row in shown["budget"]) == used_keys
    for row in shown["budget"]:
        if row["key"] == "credits_used":
            assert row["used"] == budget["credits_used"]
            limit = budget.get("max_credits", budget["credits_used"] + budget["credits_remaining"])
            assert row["max"] == limit
        else:
            assert row["used"] is None
            assert "no limit reported" in row["text"]
    assert shown["documents"] == f"({len(detail['documents']):,})"
    viewer.assert_clean()


async def test_a_thousand_documents_render_fifty_at_a_time(viewer: Viewer) -> None:
    await viewer.sign_in()
    page = viewer.page
    started = await page.evaluate("performance.now()")
    await viewer.open_execution(viewer.execution("completed_1000"))
    await expect(page.locator("#documents > li")).to_have_count(50)
    elapsed_ms = await page.evaluate("performance.now()") - started
    assert elapsed_ms < 10_000  # generous: the machine is shared; figures in docs/
    # Payloads are built only when opened.
    assert (
        await page.locator("#documents pre.json").evaluate_all(
            "pres => pres.filter(pre => pre.textContent).length"
        )
        == 0
    )
    await page.click("#more-documents")
    await expect(page.locator("#documents > li")).to_have_count(100)
    assert await page.text_content("#more-documents") == "Show 50 more (900 left)"
    first = page.locator("#documents > li").first
    await first.locator("summary").click()
    # The payload is formatted on the disclosure's `toggle` event, which fires after the click.
    await expect(first.locator("pre.json")).to_contain_text('"document_id": "doc_4200000"')
    payload = await first.locator("pre.json").text_content()
    assert payload is not None
    assert '\n  "payload": {' in payload  # pretty-printed
    viewer.assert_clean()


async def test_errors_show_the_envelope(viewer: Viewer) -> None:
    page = viewer.page
    await viewer.sign_in()
    await viewer.open_execution("exec_doesnotexist1")
    box = page.locator(".detail .error-box")
    await expect(box).to_contain_text("NotFoundError")
    await expect(box).to_contain_text("execution_not_found")
    await expect(box).to_contain_text("HTTP 404")
    # A wrong key: the 401 envelope, and a way back to the sign-in form.
    await page.get_by_role("button", name="Sign out").click()
    await page.fill("#namespace", "demo")
    await page.fill("#api-key", "egk_not_a_real_key")
    await page.get_by_role("button", name="Sign in").click()
    # Signing in keeps the location: the execution is asked for again, now with the bad key.
    await expect(page.locator(".detail .error-box")).to_contain_text("invalid_api_key")
    await viewer.open_list()
    await expect(page.locator(".error-box")).to_contain_text("UnauthorizedError")
    await page.get_by_role("button", name="Sign in with another key").click()
    await expect(page.locator("#signin")).to_be_visible()
    # The browser logs each failed fetch (404, 401, 401) as a console error.
    viewer.assert_clean(expected_console_errors=3)
