"""Make the test-only protos (`tests/gen/`, from `tests/protos/`) importable.

Their Python package is `execgate.testing.v1`, but `execgate` is already the
regular package generated into `gen/` (installed in editable mode), so putting
`tests/gen` on `sys.path` would shadow one of the two. Instead the test copy is
added to the existing package's search path, as `pkgutil.extend_path` would.
"""

from __future__ import annotations

from pathlib import Path

import execgate

_TESTS_GEN_EXECGATE = str(Path(__file__).resolve().parent.parent / "gen" / "execgate")
if _TESTS_GEN_EXECGATE not in execgate.__path__:
    execgate.__path__.append(_TESTS_GEN_EXECGATE)

from collections.abc import AsyncIterator  # noqa: E402

import pytest_asyncio  # noqa: E402

from tests.support.probe_servicer import ProbeBackend, probe_backend  # noqa: E402


@pytest_asyncio.fixture
async def probe() -> AsyncIterator[ProbeBackend]:
    """The probe backend (`tests/support/probe_servicer.py`), stopped after the test."""
    async with probe_backend() as backend:
        yield backend
