"""HTTP load with `wrk`, parsed from the report line of `bench/wrk_report.lua`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence

from bench.load_result import LoadResult
from bench.processes import REPO_ROOT, HarnessError

REPORT_SCRIPT = "bench/wrk_report.lua"
MIX_SCRIPT = "bench/wrk_mix.lua"
_REPORT_PREFIX = "BENCH_WRK_JSON "
INSTALL_HINT = (
    "wrk is not installed. On Debian/Ubuntu: `sudo apt-get install wrk` "
    "(on macOS: `brew install wrk`), then run the benchmark again."
)


def wrk_executable() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise HarnessError(INSTALL_HINT)
    return found


def wrk_version() -> str:
    done = subprocess.run([wrk_executable(), "--version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).splitlines()[0].strip()


def run_wrk(
    base_url: str,
    paths: Sequence[str],
    *,
    connections: int,
    duration_s: int,
    headers: Mapping[str, str],
    expected_status: int,
) -> LoadResult:
    """Run wrk for `duration_s` seconds against `base_url` + path.

    One path uses wrk's static pre-built request; several paths are cycled by
    each connection (bench/wrk_mix.lua), for the mixed memory phases.
    """
    threads = max(1, min(connections, os.cpu_count() or 1))
    command = [
        wrk_executable(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "10s",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if len(paths) == 1:
        command += ["-s", REPORT_SCRIPT, base_url + paths[0]]
    else:
        command += ["-s", MIX_SCRIPT, base_url + paths[0], "--", *paths]
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, text=True
        )
        # wait4 rather than wait: it also returns the CPU time wrk used.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    if process.returncode != 0:
        raise HarnessError(f"wrk failed ({process.returncode}): {' '.join(command)}\n{text}")
    return _parse(text, expected_status, usage.ru_utime + usage.ru_stime)


def _parse(text: str, expected_status: int, cpu_s: float) -> LoadResult:
    lines = [line for line in text.splitlines() if line.startswith(_REPORT_PREFIX)]
    if not lines:
        raise HarnessError(f"wrk printed no report line; its output was:\n{text}")
    report = json.loads(lines[-1].removeprefix(_REPORT_PREFIX))
    errors = report["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    requests = int(report["requests"])
    # wrk only counts "status >= 400" (errors.status), so a 404 case expects
    # every response there; the exact status was checked once before the load.
    failed_status = int(errors["status"])
    expected = failed_status if expected_status >= 400 else requests - failed_status
    return LoadResult(
        requests=requests,
        duration_s=report["duration_us"] / 1e6,
        expected=expected,
        unexpected=requests - expected + socket_errors,
        p50_us=float(report["latency_us"]["p50"]),
        p99_us=float(report["latency_us"]["p99"]),
        client_cpu_s=cpu_s,
    )
