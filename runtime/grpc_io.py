"""gRPC core's I/O: the polling engine instead of the EventEngine, for grpc.aio processes.

grpcio 1.85 runs client and server sockets on gRPC core's EventEngine by
default: its own threads do the I/O and hand each completion on to the
completion queue, which grpc.aio's poller thread passes to the event loop.
With the EventEngine experiments below turned off, gRPC core uses its polling
I/O manager, where the thread waiting on the completion queue (grpc.aio's
poller) polls the sockets itself: one thread hand-off fewer per completion,
less CPU per call on both sides (docs/performance.md, "gRPC core's polling I/O").

gRPC core reads `GRPC_EXPERIMENTS` once, when `grpc` is first imported, so this
must run before that: the entry points (`python -m service`, `python -m gateway`)
call it first thing. An operator's own `GRPC_EXPERIMENTS` wins; set it to the
empty string to run on gRPC's defaults.
"""

from __future__ import annotations

import os
import sys
from typing import Final

ENV: Final = "GRPC_EXPERIMENTS"
# Experiment names of grpcio 1.85 (pinned in pyproject.toml); a name gRPC does
# not know is logged by gRPC core and otherwise ignored.
POLLING_IO_EXPERIMENTS: Final = ",".join(
    (
        "-event_engine_client",
        "-event_engine_listener",
        "-event_engine_callback_cq",
        "-event_engine_for_all_other_endpoints",
    )
)


def use_polling_io() -> bool:
    """Select the polling I/O manager for this process (and the processes it starts).

    Returns whether it did: not when `grpc` is already imported (too late to
    matter) or when `GRPC_EXPERIMENTS` is already set by whoever started us.
    """
    if "grpc" in sys.modules or ENV in os.environ:
        return False
    os.environ[ENV] = POLLING_IO_EXPERIMENTS
    return True
