"""Usable CPUs: affinity and cgroup v2/v1 CPU quotas (fake /proc and /sys trees; no Docker).

The real engine's ``docker run --cpus 1`` is checked in tests/image/test_image_e2e.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from catwalk.config import ServerSettings
from catwalk.cpus import cgroup_cpu_limit, usable_cpus

CONTAINER = "/kubepods/pod1/abc"


def _tree(tmp_path: Path, mountinfo: str, cgroup: str) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(mountinfo)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    return tmp_path


def _write(path: Path, text: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for name, value in (line.split("=", 1) for line in text.split(";")):
        (path / name).write_text(value + "\n")


def v2(tmp_path: Path, *limits: tuple[str, str]) -> Path:
    """A v2 hierarchy mounted at the host's root (no cgroup namespace): limits by folder."""
    root = _tree(
        tmp_path,
        "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        f"0::{CONTAINER}\n",
    )
    for folder, cpu_max in limits:
        _write(root / "sys/fs/cgroup" / folder.lstrip("/"), f"cpu.max={cpu_max}")
    return root


def test_v2_quota(tmp_path: Path) -> None:
    root = v2(tmp_path, (CONTAINER, "100000 100000"))
    assert cgroup_cpu_limit(root) == 1.0
    assert usable_cpus(root) == 1


def test_v2_no_limit(tmp_path: Path) -> None:
    root = v2(tmp_path, (CONTAINER, "max 100000"))
    assert cgroup_cpu_limit(root) is None
    assert usable_cpus(root) == (os.cpu_count() or 1)


def test_v2_the_tightest_of_the_nested_limits_counts(tmp_path: Path) -> None:
    root = v2(tmp_path, (CONTAINER, "400000 100000"), ("/kubepods/pod1", "150000 100000"))
    assert cgroup_cpu_limit(root) == 1.5
    assert usable_cpus(root) == min(2, os.cpu_count() or 1)  # 1.5 CPUs round up, as the JVM


def test_v2_half_a_cpu_is_one_worker(tmp_path: Path) -> None:
    root = v2(tmp_path, (CONTAINER, "50000 100000"))
    assert usable_cpus(root) == 1


def test_v2_in_a_cgroup_namespace(tmp_path: Path) -> None:
    # Inside a container with its own cgroup namespace the process sits at "/".
    root = _tree(tmp_path, "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/\n")
    _write(root / "sys/fs/cgroup", "cpu.max=200000 100000")
    assert cgroup_cpu_limit(root) == 2.0


def test_v1_quota_with_the_mount_root_of_a_container(tmp_path: Path) -> None:
    # As Docker 20.10 with cgroup v1 shows it: the mount's root is the container's own cgroup.
    docker = "/docker/9f4f3dc4"
    root = _tree(
        tmp_path,
        f"86 85 0:29 {docker} /sys/fs/cgroup/cpu ro,nosuid - cgroup cgroup rw,cpu\n"
        f"87 85 0:30 {docker} /sys/fs/cgroup/cpuacct ro,nosuid - cgroup cgroup rw,cpuacct\n",
        f"2:cpuacct:{docker}\n1:cpu:{docker}\n0::{docker}\n",
    )
    _write(root / "sys/fs/cgroup/cpu", "cpu.cfs_quota_us=100000;cpu.cfs_period_us=100000")
    assert cgroup_cpu_limit(root) == 1.0
    assert usable_cpus(root) == 1


def test_v1_unlimited(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        "86 85 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        "1:cpu,cpuacct:/user.slice\n",
    )
    _write(
        root / "sys/fs/cgroup/cpu,cpuacct/user.slice",
        "cpu.cfs_quota_us=-1;cpu.cfs_period_us=100000",
    )
    assert cgroup_cpu_limit(root) is None


def test_no_cgroups_at_all(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path) is None
    assert usable_cpus(tmp_path) == (os.cpu_count() or 1)


def test_this_process_uses_its_affinity() -> None:
    assert usable_cpus() <= len(os.sched_getaffinity(0))
    assert ServerSettings().workers == usable_cpus()
