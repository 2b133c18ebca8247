"""`checking_certificates` leaves no task of its own behind when its block ends."""

from __future__ import annotations

import asyncio

import pytest

from runtime.tls import checking_certificates

pytestmark = pytest.mark.asyncio


async def test_the_poll_task_has_ended_when_the_block_ends() -> None:
    polled = asyncio.Event()

    def check(force: bool) -> None:
        assert not force  # a periodic check, not SIGHUP's
        polled.set()

    before = asyncio.all_tasks()
    async with checking_certificates([check], interval_s=0.01):
        await asyncio.wait_for(polled.wait(), timeout=5)
        polls = asyncio.all_tasks() - before
        assert len(polls) == 1
    assert all(task.done() for task in polls)
