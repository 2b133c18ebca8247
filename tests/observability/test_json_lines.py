"""JSON lines batched per event-loop iteration, and a broken stream that only costs a warning."""

from __future__ import annotations

import asyncio
import io
import logging

import orjson
import pytest

from observability.json_lines import JsonLinesWriter

_LOGGER = logging.getLogger("tests.observability.json_lines")


class _Lines(JsonLinesWriter):
    def write(self, entry: dict[str, object]) -> None:
        self._append(entry)


class _CountingStream(io.BytesIO):
    """A real in-memory stream that also counts the writes it is asked for."""

    writes = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        return super().write(data)


@pytest.mark.asyncio
async def test_lines_of_one_iteration_are_written_together_on_the_next() -> None:
    stream = _CountingStream()
    lines = _Lines(stream, _LOGGER)
    lines.write({"n": 1, "text": "é"})
    lines.write({"n": 2, "text": None})
    assert stream.getvalue() == b""  # not before the loop runs the flush
    await asyncio.sleep(0)
    assert stream.writes == 1
    assert [orjson.loads(line) for line in stream.getvalue().splitlines()] == [
        {"n": 1, "text": "é"},
        {"n": 2, "text": None},
    ]
    assert stream.getvalue().endswith(b"\n")


@pytest.mark.asyncio
async def test_a_later_iteration_gets_its_own_write() -> None:
    stream = _CountingStream()
    lines = _Lines(stream, _LOGGER)
    lines.write({"n": 1})
    await asyncio.sleep(0)
    lines.write({"n": 2})
    await asyncio.sleep(0)
    assert stream.writes == 2
    assert stream.getvalue() == b'{"n":1}\n{"n":2}\n'


@pytest.mark.asyncio
async def test_flush_writes_what_is_pending_at_once() -> None:
    stream = _CountingStream()
    lines = _Lines(stream, _LOGGER)
    lines.write({"n": 1})
    lines.flush()
    assert stream.getvalue() == b'{"n":1}\n'
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert stream.writes == 1


def test_without_a_stream_writing_is_off() -> None:
    lines = _Lines(None, _LOGGER)
    assert not lines.enabled
    lines.flush()
    assert _Lines(io.BytesIO(), _LOGGER).enabled


@pytest.mark.asyncio
async def test_a_closed_stream_drops_the_batch_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.BytesIO()
    lines = _Lines(stream, _LOGGER)
    stream.close()
    with caplog.at_level(logging.WARNING, logger=_LOGGER.name):
        lines.write({"n": 1})
        lines.write({"n": 2})
        await asyncio.sleep(0)
    assert [(record.name, record.getMessage()) for record in caplog.records] == [
        (_LOGGER.name, "dropped 2 access log lines")
    ]
