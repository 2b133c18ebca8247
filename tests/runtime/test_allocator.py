"""Large buffers stop costing page faults once the allocator thresholds are set (glibc only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`

# In a child process: applies the settings or not, then 100 times holds 8
# buffers of ~340 KB at once (1,000-document responses of calls in flight) and
# frees them, and reports the page faults that took. A first pass is not
# counted (it may grow the heap).
_CHILD = """
import json, resource, sys
from runtime.allocator import keep_large_buffers_on_heap
applied = keep_large_buffers_on_heap() if sys.argv[1] == "apply" else False
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        in_flight = [bytes(340_000 + 4096 * i) for i in range(8)]
        del in_flight
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults()
print(json.dumps({"applied": applied, "faults": faults()}))
"""

_GLIBC = sys.platform.startswith("linux") and bool(
    os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
)


def _run_child(source: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs `source` in a fresh interpreter: allocator settings are per process."""
    return subprocess.run(
        [sys.executable, "-c", source, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _faults(mode: str) -> dict[str, object]:
    done = _run_child(_CHILD, mode)
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.skipif(not _GLIBC, reason="the thresholds are glibc's")
def test_large_buffers_reuse_heap_memory_instead_of_faulting_in_new_pages() -> None:
    default = _faults("default")
    tuned = _faults("apply")
    assert tuned["applied"] is True
    # Default glibc: fresh pages for the buffers again and again (measured ~24,000
    # faults here). Tuned: the same heap memory is reused (measured 0).
    assert isinstance(default["faults"], int)
    assert isinstance(tuned["faults"], int)
    assert default["faults"] > 100 * 8 * 10
    assert tuned["faults"] < 100


# In a child process with the thresholds applied: 64 live buffers of ~340 KB
# (responses in flight), every other one freed so the free space is not at the
# heap's top, then RSS before and after `release_free_memory`.
_RELEASE_CHILD = """
import json
from runtime.allocator import keep_large_buffers_on_heap, release_free_memory
keep_large_buffers_on_heap()
def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
buffers = [bytearray(340_000) for _ in range(64)]
for index in range(0, 64, 2):
    buffers[index] = None
before = rss_kib()
released = release_free_memory()
print(json.dumps({"released": released, "before": before, "after": rss_kib()}))
"""


@pytest.mark.skipif(not _GLIBC, reason="malloc_trim is glibc's")
def test_release_gives_free_heap_pages_back() -> None:
    done = _run_child(_RELEASE_CHILD)
    result = json.loads(done.stdout)
    assert result["released"] is True
    # 32 freed buffers of 340 KB between live ones: ~10 MiB that only malloc_trim returns.
    assert result["before"] - result["after"] > 8 * 1024


# In a child process: 4 threads allocate and keep buffers, then glibc's own
# malloc_stats (on stderr) lists one "Arena N:" block per arena in use.
_ARENA_CHILD = """
import ctypes, sys, threading
from runtime.allocator import use_one_arena
if sys.argv[1] == "apply":
    assert use_one_arena()
kept = []
def work():
    kept.extend(bytearray(4096) for _ in range(200))
threads = [threading.Thread(target=work) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def _arenas(mode: str) -> int:
    done = _run_child(_ARENA_CHILD, mode)
    return sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))


@pytest.mark.skipif(not _GLIBC, reason="arenas are glibc's")
def test_one_arena_serves_every_thread() -> None:
    assert _arenas("default") > 1  # a thread that allocates gets an arena of its own
    assert _arenas("apply") == 1
