"""`--workers auto`: affinity and cgroup quotas, read from fake cgroup trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cpus import MAX_WORKERS, available_cpus, cgroup_cpu_quota, parse_workers


def _tree(tmp_path: Path, files: dict[str, str], self_cgroup: str = "0::/\n") -> Path:
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "self-cgroup").write_text(self_cgroup)
    return root


def _cpus(tmp_path: Path, root: Path, affinity: int) -> int:
    return available_cpus(
        cgroup_root=root, proc_self_cgroup=tmp_path / "self-cgroup", affinity=affinity
    )


def test_no_cgroup_files_means_the_affinity_mask(tmp_path: Path) -> None:
    root = _tree(tmp_path, {})
    assert _cpus(tmp_path, root, affinity=6) == 6


def test_v2_quota_limits_and_rounds_down(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"cpu.max": "250000 100000\n"})  # 2.5 CPUs
    assert cgroup_cpu_quota(root, tmp_path / "self-cgroup") == 2.5
    assert _cpus(tmp_path, root, affinity=16) == 2


def test_v2_max_is_no_limit(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"cpu.max": "max 100000\n"})
    assert _cpus(tmp_path, root, affinity=4) == 4


def test_v2_limit_on_an_ancestor_of_this_process_cgroup_applies(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"kubepods/cpu.max": "300000 100000\n", "kubepods/pod1/app/cpu.max": "max 100000\n"},
        self_cgroup="0::/kubepods/pod1/app\n",
    )
    assert _cpus(tmp_path, root, affinity=8) == 3


def test_affinity_below_the_quota_wins(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"cpu.max": "800000 100000\n"})
    assert _cpus(tmp_path, root, affinity=2) == 2


def test_a_quota_below_one_cpu_still_gives_one_worker(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"cpu.max": "50000 100000\n"})
    assert _cpus(tmp_path, root, affinity=8) == 1


def test_v1_cfs_quota(tmp_path: Path) -> None:
    root = _tree(
        tmp_path, {"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"}
    )
    assert _cpus(tmp_path, root, affinity=8) == 1


def test_v1_minus_one_is_no_quota(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
    )
    assert _cpus(tmp_path, root, affinity=8) == 8


def test_garbage_in_cgroup_files_is_ignored(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"cpu.max": "lots\n", "cpu/cpu.cfs_quota_us": "x\n"})
    assert _cpus(tmp_path, root, affinity=3) == 3


def test_parse_workers_numbers_and_auto() -> None:
    assert parse_workers("3") == 3
    assert parse_workers(" AUTO ") == available_cpus()
    assert parse_workers("auto") >= 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "", "1.5", str(MAX_WORKERS + 1)])
def test_parse_workers_refuses_what_is_not_a_worker_count(value: str) -> None:
    with pytest.raises(ValueError, match="auto"):
        parse_workers(value)
