"""Interleaved A/B runs of service and gateway variants: CPU per request of each process.

    python -m bench.experiments.ab http CONFIG [CONFIG...] [--case 10|1000|miss]
        [--connections 64] [--duration 3] [--rounds 4]
    python -m bench.experiments.ab grpc SERVICE_VARIANT [...] (direct gRPC load)

A CONFIG is `SERVICE_VARIANT/GATEWAY_VARIANT` (see `variants.py`; `+` joins
several). Every config gets its own service and gateway processes on one
seeded SQLite file, so each process's CPU is its own. Rounds rotate the
order. Printed: median over rounds of CPU µs per request of gateway, service
and load generator, requests/s and p50 — compare within one run only.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.cases import cases_for
from bench.measure import Measurement, Target, measure
from bench.proc_stats import group_rss_kib
from bench.processes import ProcessSet, free_port, python_module_command
from bench.stack import fetch_when_ready, seed_demo, start_service

CASES = {"10": "10 docs", "1000": "1000 docs", "miss": "404 miss"}


def _launch(role: str, variant: str, *args: str) -> list[str]:
    return python_module_command("bench.experiments.launch", role, variant, "--", *args)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["http", "grpc"])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--case", default="10", choices=list(CASES))
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    # The same config twice (an A/A check of the noise) gets distinct names.
    args.configs = [
        config if args.configs.index(config) == index else f"{config}#{index}"
        for index, config in enumerate(args.configs)
    ]

    with tempfile.TemporaryDirectory() as work, ProcessSet(Path(work)) as processes:
        store_url = f"sqlite:///{Path(work) / 'ab.db'}"
        demo = seed_demo(store_url)
        case = next(c for c in cases_for(demo) if c.name == CASES[args.case])
        targets: dict[str, Target] = {}
        for index, config in enumerate(args.configs):
            service_variant, _, gateway_variant = config.split("#")[0].partition("/")
            service, service_address = start_service(
                processes,
                store_url,
                name=f"service{index}",
                command=_launch("service", service_variant),
            )
            if args.mode == "grpc":
                targets[config] = Target(config, None, service_address, None, service.pid)
                continue
            gateway_port = free_port()
            gateway = processes.start(
                f"gateway{index}",
                _launch(
                    "gateway",
                    gateway_variant or "base",
                    "serve",
                    "--listen",
                    f"127.0.0.1:{gateway_port}",
                    "--backend",
                    service_address,
                ),
            )
            gateway.wait_for_port(gateway_port)
            url = f"http://127.0.0.1:{gateway_port}"
            answer = fetch_when_ready(gateway, url + case.path, demo.http_headers)
            assert answer.status == case.expected_http, (config, answer)
            targets[config] = Target(config, url, None, gateway.pid, service.pid)

        results: dict[str, list[Measurement]] = {config: [] for config in args.configs}
        order = list(args.configs)
        # Warm-up: one short run each (JIT-free Python, but caches and connections).
        for config in order:
            measure(
                targets[config],
                case,
                connections=args.connections,
                duration_s=1,
                round_index=-1,
                http_headers=demo.http_headers,
                grpc_metadata=demo.grpc_metadata,
            )
        for round_index in range(args.rounds):
            shift = round_index % len(order)
            for config in order[shift:] + order[:shift]:
                results[config].append(
                    measure(
                        targets[config],
                        case,
                        connections=args.connections,
                        duration_s=args.duration,
                        round_index=round_index,
                        http_headers=demo.http_headers,
                        grpc_metadata=demo.grpc_metadata,
                    )
                )
        rss = {
            config: (
                group_rss_kib(target.front) if target.front else 0,
                group_rss_kib(target.service) if target.service else 0,
            )
            for config, target in targets.items()
        }
    print(
        f"case {case.name}, {args.connections} connections, {args.rounds} rounds of "
        f"{args.duration} s, medians"
    )
    columns = ("gateway µs", "service µs", "client µs", "req/s", "p50 ms")
    print(f"{'config':34} " + " ".join(f"{c:>10}" for c in columns))
    for config in args.configs:
        runs = results[config]

        def per_request(values: list[float | None]) -> str:
            known = [v for v in values if v is not None]
            return f"{statistics.median(known) * 1e6:.0f}" if known else "-"

        gateway_us = per_request(
            [m.front_cpu_s / m.result.requests if m.front_cpu_s is not None else None for m in runs]
        )
        service_us = per_request(
            [
                m.service_cpu_s / m.result.requests if m.service_cpu_s is not None else None
                for m in runs
            ]
        )
        client_us = per_request([m.result.client_cpu_s / m.result.requests for m in runs])
        rate = statistics.median(m.result.throughput for m in runs)
        p50 = statistics.median(m.result.p50_us for m in runs) / 1000
        bad = sum(m.result.unexpected for m in runs)
        print(
            f"{config:34} {gateway_us:>10} {service_us:>10} {client_us:>10}"
            f" {rate:10.0f} {p50:10.3f}" + (f"  ({bad} unexpected)" if bad else "")
        )
    print("RSS at the end, MiB (gateway / service):")
    for config, (front_kib, service_kib) in rss.items():
        print(f"{config:34} {front_kib / 1024:6.1f} {service_kib / 1024:6.1f}")
    # Paired by round (same minute, same neighbours): CPU of each config over the first's.
    first = results[args.configs[0]]
    print(f"ratios to {args.configs[0]}, median over rounds: gateway / service / both")
    for config in args.configs[1:]:
        ratios: list[tuple[float, float, float]] = []
        for mine, theirs in zip(results[config], first, strict=True):
            mine_gw = (mine.front_cpu_s or 0.0) / mine.result.requests
            mine_svc = (mine.service_cpu_s or 0.0) / mine.result.requests
            base_gw = (theirs.front_cpu_s or 0.0) / theirs.result.requests
            base_svc = (theirs.service_cpu_s or 0.0) / theirs.result.requests
            ratios.append(
                (
                    mine_gw / base_gw if base_gw else 0.0,
                    mine_svc / base_svc if base_svc else 0.0,
                    (mine_gw + mine_svc) / (base_gw + base_svc),
                )
            )
        gw, svc, both = (statistics.median(r[i] for r in ratios) for i in range(3))
        print(f"{config:34} {gw:6.3f} {svc:6.3f} {both:6.3f}")


if __name__ == "__main__":
    main()
