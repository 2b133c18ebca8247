"""`within_deadline`: `await` semantics, and a timer only once the coroutine waits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from singleprocess.deadline import DeadlineExceeded, within_deadline


async def answer_at_once() -> str:
    return "at once"


async def answer_after(seconds: float, seen: list[str]) -> str:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        seen.append("cancelled")
        raise
    return "later"


def count_timers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The deadlines the running loop is asked to call at."""
    loop = asyncio.get_running_loop()
    asked: list[float] = []
    call_at = loop.call_at

    def spy(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        asked.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", spy)
    return asked


@pytest.mark.asyncio
async def test_a_coroutine_that_never_waits_gets_its_result_and_no_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timers = count_timers(monkeypatch)
    deadline = asyncio.get_running_loop().time() + 30
    assert await within_deadline(answer_at_once(), deadline) == "at once"
    assert timers == []


@pytest.mark.asyncio
async def test_a_coroutine_that_waits_gets_a_timer_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timers = count_timers(monkeypatch)
    deadline = asyncio.get_running_loop().time() + 30
    assert await within_deadline(answer_after(0.01, []), deadline) == "later"
    assert deadline in timers  # the same absolute time (asyncio.sleep asks for its own too)


@pytest.mark.asyncio
async def test_the_deadline_cancels_the_waiting_coroutine_and_raises_deadline_exceeded() -> None:
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    with pytest.raises(DeadlineExceeded):
        await within_deadline(answer_after(30, seen), loop.time() + 0.05)
    assert seen == ["cancelled"]
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the deadline's cancel is taken back


@pytest.mark.asyncio
async def test_an_answer_in_time_leaves_no_timer_behind() -> None:
    loop = asyncio.get_running_loop()
    # A wide margin: a loop stall must not make the answer and the deadline due together.
    deadline = loop.time() + 1.0
    assert await within_deadline(answer_after(0.01, []), deadline) == "later"
    await asyncio.sleep(max(0.0, deadline - loop.time()) + 0.1)  # past it: nothing cancels


@pytest.mark.asyncio
async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    waiter = asyncio.ensure_future(within_deadline(answer_after(30, seen), loop.time() + 30))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert seen == ["cancelled"]


@pytest.mark.asyncio
async def test_exceptions_pass_through_before_and_after_waiting() -> None:
    async def fail_at_once() -> None:
        raise ValueError("at once")

    async def fail_later() -> None:
        await asyncio.sleep(0)
        raise KeyError("later")

    deadline = asyncio.get_running_loop().time() + 30
    with pytest.raises(ValueError, match="at once"):
        await within_deadline(fail_at_once(), deadline)
    with pytest.raises(KeyError, match="later"):
        await within_deadline(fail_later(), deadline)


@pytest.mark.asyncio
async def test_a_coroutine_that_swallows_the_deadline_answers_and_leaves_no_cancel() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return "swallowed"
        return "slept"

    loop = asyncio.get_running_loop()
    assert await within_deadline(stubborn(), loop.time() + 0.05) == "swallowed"
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0.01)  # and no cancellation is still pending for it


@pytest.mark.asyncio
async def test_no_deadline_means_no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    timers = count_timers(monkeypatch)
    assert await within_deadline(answer_after(0.01, []), None) == "later"
    assert len(timers) <= 1  # asyncio.sleep's own, none of ours
