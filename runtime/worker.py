"""What a worker process started by the supervisor (`runtime.supervisor`) knows about itself.

The supervisor passes three environment variables: the worker's index (stable
across restarts: worker 2's replacement is worker 2 again), a directory shared
by all workers of one server (ready markers, the sockets over which workers
answer each other's metrics scrapes), and the supervisor's pid. A process
without them is not a worker: it serves alone, as with `--workers 1`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ENV_INDEX: Final = "EXECGATE_WORKER_INDEX"
ENV_DIRECTORY: Final = "EXECGATE_WORKER_DIR"
ENV_SUPERVISOR: Final = "EXECGATE_SUPERVISOR_PID"
_PR_SET_PDEATHSIG: Final = 1


@dataclass(frozen=True, slots=True)
class Worker:
    index: int
    directory: Path
    supervisor_pid: int

    def ready_marker(self) -> Path:
        return ready_marker(self.directory, self.index)

    def mark_ready(self) -> None:
        """Tell the supervisor this worker listens: its pid in its ready marker."""
        marker = self.ready_marker()
        partial = marker.with_suffix(".partial")
        partial.write_text(str(os.getpid()))
        partial.replace(marker)  # atomic: the supervisor never reads half a pid

    def stop_with_supervisor(self) -> None:
        """SIGTERM (a graceful drain) to this worker when the supervisor dies, even by SIGKILL."""
        if sys.platform == "linux":
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != self.supervisor_pid:  # it died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
        # The supervisor forwards SIGHUP (re-read TLS certificates): a worker with
        # certificates reloads them (`runtime.tls`), any other must not die of it.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def ready_marker(directory: Path, index: int) -> Path:
    return directory / f"worker-{index}.ready"


def current_worker(environ: Mapping[str, str] = os.environ) -> Worker | None:
    """This process's place among the supervisor's workers, or None when it serves alone."""
    index = environ.get(ENV_INDEX)
    directory = environ.get(ENV_DIRECTORY)
    supervisor = environ.get(ENV_SUPERVISOR)
    if index is None or directory is None or supervisor is None:
        return None
    return Worker(int(index), Path(directory), int(supervisor))
