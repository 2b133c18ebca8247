"""Turn the measurements into the one table, the ratios, the targets check, and JSON."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.measure import Measurement

TARGET_ORDER = ("ceiling", "execgate", "peer", "direct gRPC")
EXECGATE, PEER, CEILING, DIRECT = "execgate", "peer", "ceiling", "direct gRPC"


@dataclass(frozen=True, slots=True)
class Row:
    """One (case, connections, target) cell of the table, over all rounds.

    Throughput and latencies are the median of the rounds (with their spread, to
    show how steady the machine was); CPU per request is total CPU over total
    requests of all rounds.
    """

    case: str
    connections: int
    target: str
    rounds: int
    requests: int
    throughput: float
    throughput_spread: float  # (max - min) / median over rounds; 0 with one round
    p50_ms: float
    p99_ms: float
    unexpected: int
    front_cpu_us: float | None
    service_cpu_us: float | None
    client_cpu_us: float


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of the execgate gateway (KiB) after so many requests it served.

    `after_*_kib` is read as soon as the load has stopped (the target compares
    these), `after_*_rest_kib` `rest_s` later, at rest: the gateway gives free heap
    back after 2-4 s without requests (runtime/memory_release.py).
    """

    start_kib: int
    after_first_kib: int
    after_first_requests: int
    after_last_kib: int | None
    after_last_requests: int | None
    after_first_rest_kib: int = 0
    after_last_rest_kib: int | None = None
    rest_s: float = 0.0

    @property
    def growth(self) -> float | None:
        if self.after_last_kib is None:
            return None
        return self.after_last_kib / self.after_first_kib - 1


def summarize(measurements: Sequence[Measurement]) -> list[Row]:
    groups: dict[tuple[str, int, str], list[Measurement]] = defaultdict(list)
    for m in measurements:
        groups[(m.case, m.connections, m.target)].append(m)
    rows = [_row(key, runs) for key, runs in groups.items()]
    case_order = list(dict.fromkeys(m.case for m in measurements))
    return sorted(
        rows,
        key=lambda r: (case_order.index(r.case), r.connections, TARGET_ORDER.index(r.target)),
    )


def _row(key: tuple[str, int, str], runs: list[Measurement]) -> Row:
    case, connections, target = key
    requests = sum(m.result.requests for m in runs)
    rates = [m.result.throughput for m in runs]
    median = statistics.median(rates)

    def per_request_us(values: list[float | None]) -> float | None:
        if any(v is None for v in values) or requests == 0:
            return None
        return sum(v for v in values if v is not None) / requests * 1e6

    return Row(
        case=case,
        connections=connections,
        target=target,
        rounds=len(runs),
        requests=requests,
        throughput=median,
        throughput_spread=(max(rates) - min(rates)) / median if median > 0 else 0.0,
        p50_ms=statistics.median(m.result.p50_us for m in runs) / 1000,
        p99_ms=statistics.median(m.result.p99_us for m in runs) / 1000,
        unexpected=sum(m.result.unexpected for m in runs),
        front_cpu_us=per_request_us([m.front_cpu_s for m in runs]),
        service_cpu_us=per_request_us([m.service_cpu_s for m in runs]),
        client_cpu_us=per_request_us([m.result.client_cpu_s for m in runs]) or 0.0,
    )


def ratios(rows: Sequence[Row], measurements: Sequence[Measurement] = ()) -> list[dict[str, Any]]:
    """Per case and connection count: execgate/peer, execgate/ceiling, added p50 over gRPC.

    With the measurements, the added p50 of each round too (execgate and direct gRPC
    of the same round): a busy machine shows up as their spread.
    """
    by_key = {(r.case, r.connections, r.target): r for r in rows}
    by_round = _added_p50_by_round(measurements)
    found: list[dict[str, Any]] = []
    for case, connections in dict.fromkeys((r.case, r.connections) for r in rows):
        ours = by_key.get((case, connections, EXECGATE))
        if ours is None:
            continue
        entry: dict[str, Any] = {"case": case, "connections": connections}
        for other, label in ((PEER, "execgate_over_peer"), (CEILING, "execgate_over_ceiling")):
            theirs = by_key.get((case, connections, other))
            if theirs is not None and theirs.throughput > 0:
                entry[label] = ours.throughput / theirs.throughput
        peer = by_key.get((case, connections, PEER))
        if peer is not None:
            # Server CPU per request is far steadier than throughput on a busy machine.
            ours_cpu, peer_cpu = _server_cpu_us(ours), _server_cpu_us(peer)
            if ours_cpu and peer_cpu:
                entry["peer_cpu_over_execgate_cpu"] = peer_cpu / ours_cpu
        direct = by_key.get((case, connections, DIRECT))
        if direct is not None:
            entry["added_p50_ms_over_direct_grpc"] = ours.p50_ms - direct.p50_ms
            if len(by_round.get((case, connections), ())) > 1:
                entry["added_p50_ms_by_round"] = by_round[(case, connections)]
        found.append(entry)
    return found


def _added_p50_by_round(measurements: Sequence[Measurement]) -> dict[tuple[str, int], list[float]]:
    p50_us = {(m.case, m.connections, m.round, m.target): m.result.p50_us for m in measurements}
    added: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (case, connections, round_index, target), ours in sorted(p50_us.items()):
        direct = p50_us.get((case, connections, round_index, DIRECT))
        if target == EXECGATE and direct is not None:
            added[(case, connections)].append((ours - direct) / 1000)
    return added


def _server_cpu_us(row: Row) -> float | None:
    """CPU per request of the front process plus the service, if both were measured."""
    if row.front_cpu_us is None or row.service_cpu_us is None:
        return None
    return row.front_cpu_us + row.service_cpu_us


def target_checks(entries: Sequence[dict[str, Any]], memory: Memory) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figure and whether it was met."""

    def entry(case: str, connections: int) -> dict[str, Any]:
        return next(
            (e for e in entries if e["case"] == case and e["connections"] == connections), {}
        )

    checks: list[dict[str, Any]] = []

    def check(name: str, value: float | None, goal: str, met: bool | None) -> None:
        checks.append({"target": name, "value": value, "goal": goal, "met": met})

    for case, goal in (("10 docs", 2.0), ("1000 docs", 10.0)):
        value = entry(case, 64).get("execgate_over_peer")
        check(
            f"{case} @64: execgate/peer throughput",
            value,
            f">= {goal}",
            None if value is None else value >= goal,
        )
    for case in ("10 docs", "1000 docs", "404 miss"):
        value = entry(case, 1).get("added_p50_ms_over_direct_grpc")
        check(
            f"{case} @1: added p50 over direct gRPC (ms)",
            value,
            "<= 0.25",
            None if value is None else value <= 0.25,
        )
    growth = memory.growth
    check(
        "gateway RSS growth, first 10k → 100k requests",
        growth,
        "<= 10%",
        None if growth is None else growth <= 0.10,
    )
    return checks


def format_report(
    rows: Sequence[Row],
    entries: Sequence[dict[str, Any]],
    checks: Sequence[dict[str, Any]],
    memory: Memory,
    notes: Sequence[str],
) -> str:
    lines = [
        f"{'case':<10} {'conns':>5}  {'target':<12} {'req/s':>8} {'spread':>6} "
        f"{'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} | {'CPU µs/request:':>15} {'front':>7} {'service':>7} {'client':>7}",
    ]
    previous: tuple[str, int] | None = None
    for r in rows:
        if previous is not None and previous != (r.case, r.connections):
            lines.append("")
        previous = (r.case, r.connections)
        lines.append(
            f"{r.case:<10} {r.connections:>5}  {r.target:<12} {r.throughput:>8.0f} "
            f"{(f'{r.throughput_spread:.0%}' if r.rounds > 1 else '-'):>6} "
            f"{r.p50_ms:>8.3f} {r.p99_ms:>8.3f} {r.unexpected:>6} | {'':>15} "
            f"{_us(r.front_cpu_us):>7} {_us(r.service_cpu_us):>7} {_us(r.client_cpu_us):>7}"
        )
    lines += ["", "Ratios (throughput) and execgate's added p50 over direct gRPC:"]
    for e in entries:
        parts = [f"  {e['case']:<10} @{e['connections']:<3}"]
        if "execgate_over_peer" in e:
            parts.append(f"execgate/peer {e['execgate_over_peer']:6.2f}x")
        if "execgate_over_ceiling" in e:
            parts.append(f"execgate/ceiling {e['execgate_over_ceiling']:5.2f}x")
        if "peer_cpu_over_execgate_cpu" in e:
            parts.append(f"server CPU/req peer/execgate {e['peer_cpu_over_execgate_cpu']:5.2f}x")
        if "added_p50_ms_over_direct_grpc" in e:
            parts.append(f"added p50 {e['added_p50_ms_over_direct_grpc']:+.3f} ms")
        if "added_p50_ms_by_round" in e:
            parts.append(
                "(rounds: " + " ".join(f"{v:+.3f}" for v in e["added_p50_ms_by_round"]) + ")"
            )
        lines.append("  ".join(parts))
    lines += ["", "Gateway memory (VmRSS of the execgate gateway):"]
    lines.append(
        f"  at start {memory.start_kib / 1024:.1f} MiB; after the first "
        f"{memory.after_first_requests} requests {memory.after_first_kib / 1024:.1f} MiB "
        f"({memory.after_first_rest_kib / 1024:.1f} MiB at rest)"
    )
    if memory.after_last_kib is not None:
        rest = memory.after_last_rest_kib or 0
        lines.append(
            f"  after {memory.after_last_requests} requests "
            f"{memory.after_last_kib / 1024:.1f} MiB ({memory.growth:+.1%}; at rest "
            f"{rest / 1024:.1f} MiB, {rest / max(memory.after_first_rest_kib, 1) - 1:+.1%})"
        )
    lines.append(f"  (as the load stopped; at rest: {memory.rest_s:.0f} s later)")
    lines += ["", "Targets (informational; the benchmark never fails on a timing):"]
    for c in checks:
        value = (
            "n/a"
            if c["value"] is None
            else (f"{c['value']:+.1%}" if "RSS" in c["target"] else f"{c['value']:.3f}")
        )
        verdict = {True: "met", False: "NOT met", None: "not measured"}[c["met"]]
        lines.append(f"  {c['target']:<48} {value:>9}  (goal {c['goal']}): {verdict}")
    if notes:
        lines += ["", "Notes:", *(f"  {note}" for note in notes)]
    return "\n".join(lines)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def as_json(
    meta: dict[str, Any],
    measurements: Sequence[Measurement],
    rows: Sequence[Row],
    entries: Sequence[dict[str, Any]],
    checks: Sequence[dict[str, Any]],
    memory: Memory,
    notes: Sequence[str],
) -> dict[str, Any]:
    return {
        "meta": meta,
        "summary": [asdict(r) for r in rows],
        "ratios": list(entries),
        "targets": list(checks),
        "gateway_memory": {**asdict(memory), "growth": memory.growth},
        "notes": list(notes),
        "measurements": [
            {**asdict(m), "result": {**asdict(m.result), "throughput": m.result.throughput}}
            for m in measurements
        ],
    }
