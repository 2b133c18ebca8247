"""Schemathesis against the gateway's own `/openapi.json`: no 5xx, no off-schema body.

A real service (SQLite, demo data) and gateway run on 127.0.0.1 port 0 in a thread of
their own (schemathesis calls them synchronously). Every operation is fuzzed with
the demo's real retriever and execution IDs (so 200 bodies are checked too), with
generated path values, and with invalid input (negative mode: no 5xx); each pass is
bounded in examples, and the whole run in time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from gateway.config import GatewayConfig
from service.demo import DemoData
from tests.gateway.app.gateway_harness import running_gateway
from tests.running_service import start_service

# Bounds: examples per operation and pass, and the whole run (CI's budget).
MAX_EXAMPLES = 40
MAX_RUN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class _Stack:
    base_url: str
    demo: DemoData


@contextmanager
def _stack_in_a_thread(directory: Path) -> Iterator[_Stack]:
    """Service and gateway on their own event loop in a thread, stopped on exit."""
    ready: list[_Stack] = []
    started = threading.Event()
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with start_service(directory) as service:
            config = GatewayConfig(port=0, backend=service.address, shutdown_timeout_s=2.0)
            async with running_gateway(config, with_docs=True) as gateway:
                ready.append(_Stack(gateway.base_url, service.demo))
                started.set()
                await stop.wait()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as error:  # reported by the test, not lost in the thread
            failure.append(error)
        finally:
            started.set()
            loop.close()

    thread = threading.Thread(target=run, name="fuzz-stack", daemon=True)
    thread.start()
    started.wait(30)
    try:
        if not ready:
            raise RuntimeError(f"the stack did not start: {failure!r}")
        yield ready[0]
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        assert not failure, failure


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Invalid input: whatever the gateway answers, never a 5xx and always a documented body.
NEGATIVE_CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_off_schema_body(tmp_path: Path) -> None:
    with _stack_in_a_thread(tmp_path) as stack:
        document: dict[str, Any] = requests.get(f"{stack.base_url}/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(document)
        demo = stack.demo
        auth = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
        real_ids = {
            "retriever_id": demo.retriever.id,
            "execution_id": demo.executions["completed_10"],
        }
        deadline = time.monotonic() + MAX_RUN_SECONDS
        calls = 0
        with requests.Session() as session:
            for result in schema.get_all_operations():
                assert isinstance(result, Ok), result  # the document must be valid
                operation = result.ok()
                fixed = {k: v for k, v in real_ids.items() if f"{{{k}}}" in operation.path}
                passes = [
                    (GenerationMode.POSITIVE, fixed),
                    (GenerationMode.POSITIVE, None),
                    (GenerationMode.NEGATIVE, fixed),  # invalid input: 4xx, never 5xx
                ]
                for mode, path_parameters in passes:
                    strategy = operation.as_strategy(
                        mode, headers=auth, path_parameters=path_parameters or None
                    )
                    checks = CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS

                    @settings(
                        max_examples=MAX_EXAMPLES,
                        deadline=None,
                        derandomize=True,  # the same cases on every run: CI is reproducible
                        database=None,
                        phases=[Phase.explicit, Phase.generate],
                        suppress_health_check=list(HealthCheck),
                    )
                    @given(case=strategy)
                    def check(case: schemathesis.Case[Any]) -> None:
                        nonlocal calls
                        if time.monotonic() > deadline:
                            return
                        calls += 1
                        response = case.call(base_url=stack.base_url, session=session, timeout=10)
                        # check() runs at once, within this iteration: `checks` is current.
                        case.validate_response(response, checks=checks)  # noqa: B023

                    check()
        assert time.monotonic() < deadline, "the fuzz run outgrew its time budget"
        assert calls >= 6 * MAX_EXAMPLES // 2  # it really ran (2 operations, 3 passes)
