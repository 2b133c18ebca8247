"""Cost of one `get_execution` read from the SQLite store, in-process (no gRPC, no load).

    python -m bench.experiments.store_read

Seeds the demo data into a temporary SQLite file and times the store read of
the 10-document and the 1,000-document execution (best of 5 rounds of 300 reads): what
a cache of terminal (immutable) executions in the service would save per call.
`--allocator` applies `runtime.allocator` first, as the service does.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.stack import seed_demo
from runtime.allocator import keep_large_buffers_on_heap
from service.store import open_store


async def _main() -> None:
    with tempfile.TemporaryDirectory() as work:
        url = f"sqlite:///{Path(work) / 'read.db'}"
        demo = seed_demo(url)
        store = open_store(url)
        await store.open()
        try:
            namespace = await store.find_namespace(demo.namespace)
            assert namespace is not None
            for name in ("completed_10", "completed_1000"):
                execution_id = demo.executions[name]
                row = await store.get_execution(namespace.id, demo.retriever_id, execution_id)
                assert row is not None
                best = float("inf")
                for _ in range(5):
                    started = time.process_time()
                    for _ in range(300):
                        await store.get_execution(namespace.id, demo.retriever_id, execution_id)
                    best = min(best, (time.process_time() - started) / 300)
                print(f"{name}: {len(row.detail)} bytes, {best * 1e6:.0f} µs CPU per read")
        finally:
            await store.close()


if __name__ == "__main__":
    if "--allocator" in sys.argv:
        keep_large_buffers_on_heap()
    asyncio.run(_main())
