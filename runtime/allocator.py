"""glibc allocator settings for a server process that handles large messages.

A 1,000-document execution is a ~340 KB buffer, several times per call (store
read, gRPC send and receive, JSON). glibc serves every allocation of 128 KiB
or more with a fresh `mmap` and gives it back with `munmap`, so each such
buffer costs page faults and the zeroing of new pages, per call; glibc raises
that threshold on its own only after such a buffer is freed, and keeps
trimming the top of the heap. With fixed thresholds, buffers below
`MMAP_THRESHOLD_BYTES` come from the heap and up to `TRIM_THRESHOLD_BYTES` of
free heap is kept for reuse (a bounded amount of memory). What that saves is
measured in docs/performance.md ("glibc allocator thresholds").
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

MMAP_THRESHOLD_BYTES: Final = 1 << 20
TRIM_THRESHOLD_BYTES: Final = 8 << 20
# mallopt(3) parameter numbers (malloc.h).
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
_M_ARENA_MAX: Final = -8


def keep_large_buffers_on_heap() -> bool:
    """Apply the thresholds when the C library is glibc; returns whether they were applied."""
    return _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and _mallopt(
        _M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES
    )


def use_one_arena() -> bool:
    """One malloc arena for every thread (as `MALLOC_ARENA_MAX=1`); returns whether applied.

    In the gateway a response's buffers are allocated on gRPC's poller thread
    (socket reads) and on the event loop, and glibc gives each thread its own
    arena, each keeping its own free heap and holes, so RSS after bursts kept
    creeping up where one arena stays flat (docs/performance.md, "One malloc
    arena"). Call it at start-up, before threads are started.
    """
    return _mallopt(_M_ARENA_MAX, 1)


def release_free_memory() -> bool:
    """Give the heap's free pages back to the OS (glibc `malloc_trim(0)`).

    Unlike the automatic trim (only the top of the main heap, above
    `TRIM_THRESHOLD_BYTES`), this releases every whole free page in every
    arena. It walks all arenas, so call it when idle and off the event loop.
    Returns whether any memory was released (False off glibc).
    """
    libc = _glibc()
    if libc is None:
        return False
    malloc_trim = libc.malloc_trim
    malloc_trim.argtypes = (ctypes.c_size_t,)
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))


def _mallopt(parameter: int, value: int) -> bool:
    """glibc `mallopt(parameter, value)`; False when it fails or the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(parameter, value))  # 1 on success, 0 on error


def _glibc() -> ctypes.CDLL | None:
    """The process's own C library when it is glibc, else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (ValueError, OSError):  # not glibc (musl, macOS, Windows)
        return None
    return ctypes.CDLL(None)
