"""`cancel_and_wait`: the stopped task's cancellation is absorbed, the caller's own is not."""

from __future__ import annotations

import asyncio

import pytest

from runtime.tasks import cancel_and_wait


@pytest.mark.asyncio
async def test_the_task_is_cancelled_and_waited_for() -> None:
    task = asyncio.create_task(asyncio.sleep(30))
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()


@pytest.mark.asyncio
async def test_no_task_is_nothing_to_do() -> None:
    await cancel_and_wait(None)


@pytest.mark.asyncio
async def test_a_caller_cancelled_while_it_waits_stays_cancelled() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await release.wait()  # clean-up that takes a while
            raise

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait(task))
    await asyncio.sleep(0.01)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert stopper.cancelled()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
