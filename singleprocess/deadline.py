"""A deadline for a coroutine run in the caller's task, armed only once the coroutine waits.

`asyncio.timeout_at` arms a timer on entry and cancels it on exit, at a cost per call
even when nothing ever waits, and most in-process calls never wait (a point read from
SQLite answers without suspending). `within_deadline` steps the coroutine
itself, as `await` would, and arms the timer at its first suspension; a call that
answers at once costs no timer (docs/performance.md, "Single-process request path").

The deadline is the same absolute time either way: when it passes while the coroutine
waits, the task is cancelled (the coroutine sees `CancelledError`, as under
`asyncio.timeout_at`) and `DeadlineExceeded` is raised in its place. A cancellation from
anyone else stays a `CancelledError`. A coroutine that never suspends cannot be
interrupted by either; its caller checks the deadline after it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, Generic, TypeVar

Result = TypeVar("Result")


class DeadlineExceeded(Exception):
    """Raised by `within_deadline` when the deadline passed while the coroutine waited."""


def within_deadline(
    coroutine: Coroutine[Any, Any, Result], deadline: float | None
) -> Awaitable[Result]:
    """The result of `coroutine`, run in the awaiting task, by `deadline` (the event loop's
    clock; None: no deadline)."""
    return _WithinDeadline(coroutine, deadline)


class _WithinDeadline(Generic[Result]):
    """What `within_deadline` returns: steps the coroutine as `await` would."""

    __slots__ = ("_coroutine", "_deadline")

    def __init__(self, coroutine: Coroutine[Any, Any, Result], deadline: float | None) -> None:
        self._coroutine = coroutine
        self._deadline = deadline

    def __await__(self) -> Generator[Any, Any, Result]:
        coroutine = self._coroutine
        task: asyncio.Task[Any] | None = None
        timer: asyncio.TimerHandle | None = None
        cancelling = 0
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            if task is not None:
                task.cancel()

        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                # One step of the coroutine, as the task would take it through `await`.
                try:
                    step = coroutine.send(value) if error is None else coroutine.throw(error)
                except StopIteration as stop:
                    if expired and task is not None:
                        task.uncancel()  # it answered after all: take our cancel back
                    result: Result = stop.value
                    return result
                except asyncio.CancelledError:
                    if expired and task is not None and task.uncancel() <= cancelling:
                        raise DeadlineExceeded from None
                    raise
                except BaseException:
                    if expired and task is not None:
                        task.uncancel()
                    raise
                if timer is None and self._deadline is not None:
                    # The first suspension: from here on the deadline can act.
                    task = asyncio.current_task()
                    if task is not None:
                        cancelling = task.cancelling()
                        timer = asyncio.get_running_loop().call_at(self._deadline, expire)
                try:
                    value, error = (yield step), None
                except GeneratorExit:
                    coroutine.close()
                    raise
                except BaseException as thrown:  # what the task throws in: passed on
                    value, error = None, thrown
        finally:
            if timer is not None:
                timer.cancel()
