"""Profile execgate's gateway and service under load with py-spy (the facts behind PROFILE.md).

Starts the same stack as the benchmark, drives one case through execgate with wrk,
and meanwhile samples both processes with `py-spy record` (non-blocking, so the
processes are not paused), then prints the top functions of each by own and by
inclusive share of the samples. Collapsed stacks are kept in the output directory
for flame graphs (e.g. speedscope.app, or `inferno-flamegraph`).

    python -m bench.profile --case "10 docs" --connections 64 --seconds 20

Needs py-spy (`pip install py-spy`; root or ptrace permission to attach).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.collapsed import format_summary, summarize
from bench.load_result import LoadResult
from bench.proc_stats import group_cpu_seconds, thread_cpu_seconds
from bench.processes import REPO_ROOT, HarnessError, ProcessSet, ServerProcess
from bench.stack import start_stack
from bench.wrk import run_wrk

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "profile"


def py_spy_executable() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise HarnessError("py-spy is not installed: `.venv/bin/pip install py-spy`")
    return found


def _record(
    server: ServerProcess, seconds: int, rate: int, out: Path, *, native: bool, gil: bool
) -> list[str]:
    command = [
        py_spy_executable(),
        "record",
        "--pid",
        str(server.pid),
        "--duration",
        str(seconds),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    if gil:
        command.append("--gil")
    # Native frames need the process paused while sampled; Python-only sampling does not.
    return [*command, "--native"] if native else [*command, "--nonblocking"]


def _per_request_us(
    before: dict[str, float], after: dict[str, float], result: LoadResult
) -> dict[str, float]:
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    ordered = sorted(spent.items(), key=lambda item: -item[1])
    return {name: seconds / max(result.requests, 1) * 1e6 for name, seconds in ordered}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="py-spy profile of gateway and service")
    parser.add_argument("--case", default="10 docs", help='"10 docs", "1000 docs", "404 miss"')
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument(
        "--native", action="store_true", help="include C/C++ frames (pauses the processes)"
    )
    parser.add_argument(
        "--gil", action="store_true", help="only samples of the thread holding the GIL"
    )
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    try:
        py_spy_executable()
        with (
            tempfile.TemporaryDirectory(prefix="execgate-profile-") as work,
            ProcessSet(Path(work)) as processes,
        ):
            stack = start_stack(processes, Path(work))
            case = next((c for c in stack.cases if c.name == args.case), None)
            if case is None:
                raise HarnessError(f"no case {args.case!r}: {[c.name for c in stack.cases]}")
            headers = stack.demo.http_headers
            # Warm up first, so that start-up work does not enter the profile.
            run_wrk(
                stack.gateway_url,
                [case.path],
                connections=args.connections,
                duration_s=2,
                headers=headers,
                expected_status=case.expected_http,
            )
            outputs = {
                "gateway": args.output_dir / "gateway.collapsed.txt",
                "service": args.output_dir / "service.collapsed.txt",
            }
            servers = {"gateway": stack.gateway, "service": stack.service}
            recorders = [
                subprocess.Popen(
                    _record(
                        servers[name],
                        args.seconds,
                        args.rate,
                        out,
                        native=args.native,
                        gil=args.gil,
                    ),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for name, out in outputs.items()
            ]
            # Load outlasts the recording by a second on each side.
            cpu_before = {name: group_cpu_seconds(s.pid) for name, s in servers.items()}
            threads_before = {name: thread_cpu_seconds(s.pid) for name, s in servers.items()}
            result = run_wrk(
                stack.gateway_url,
                [case.path],
                connections=args.connections,
                duration_s=args.seconds + 2,
                headers=headers,
                expected_status=case.expected_http,
            )
            cpu_us = {
                name: (group_cpu_seconds(s.pid) - cpu_before[name]) / max(result.requests, 1) * 1e6
                for name, s in servers.items()
            }
            threads_us = {
                name: _per_request_us(threads_before[name], thread_cpu_seconds(s.pid), result)
                for name, s in servers.items()
            }
            for recorder in recorders:
                _, errors = recorder.communicate(timeout=60)
                if recorder.returncode != 0:
                    raise HarnessError(f"py-spy failed: {errors[-2000:]}")
    except HarnessError as error:
        print(f"profile harness error: {error}", file=sys.stderr)
        return 1
    print(
        f"load: {case.name} @{args.connections} through execgate: "
        f"{result.throughput:.0f} req/s, p50 {result.p50_us / 1000:.3f} ms "
        f"(while being profiled), unexpected {result.unexpected}\n"
    )
    for name, out in outputs.items():
        print(f"{name}: {cpu_us[name]:.0f} µs CPU per request (all threads, whole load run)")
        split = ", ".join(f"{thread} {us:.0f}" for thread, us in threads_us[name].items() if us)
        print(f"  by thread name, µs per request: {split}")
        print(format_summary(name, summarize(out.read_text().splitlines())))
        print(f"  (collapsed stacks: {out})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
