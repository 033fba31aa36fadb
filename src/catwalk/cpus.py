"""How many CPUs this process may really use: the default number of server workers.

``os.cpu_count()`` counts the machine's CPUs, not the ones a container may use: with
``docker run --cpus 1`` or a Kubernetes CPU limit of 1 on a 16-core node it says 16, and 16
workers fight over one CPU's time (throttled, each with the model in memory). The usable count
is the smallest of the CPU affinity (``sched_getaffinity``: cpusets, ``taskset``,
``docker --cpuset-cpus``) and the CFS quota of this process's cgroup and of every cgroup above
it (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), rounded up as the
JVM does (a limit of 1.5 CPUs gives 2), and at least 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def usable_cpus(root: Path = Path("/")) -> int:
    """CPUs this process may use (``root``: where /proc and /sys are; tests point it elsewhere)."""
    count = _affinity() if root == Path("/") else (os.cpu_count() or 1)
    quota = cgroup_cpu_limit(root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota - 1e-9)))
    return max(1, count)


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def cgroup_cpu_limit(root: Path = Path("/")) -> float | None:
    """The CPU quota (in CPUs) of this process's cgroups, the tightest one; None: no limit."""
    limits = [*_v2_limits(root), *_v1_limits(root)]
    return min(limits) if limits else None


def _mounts(root: Path) -> list[tuple[str, Path, str, set[str]]]:
    """cgroup mounts from mountinfo: (root inside the hierarchy, mount point, fs type, options)."""
    try:
        text = (root / "proc/self/mountinfo").read_text(encoding="utf-8")
    except OSError:
        return []
    mounts = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        options = set(tail[2].split(","))
        mounts.append((fields[3], root / fields[4].lstrip("/"), tail[0], options))
    return mounts


def _own_cgroups(root: Path) -> dict[str, str]:
    """Controller (``""`` for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    try:
        text = (root / "proc/self/cgroup").read_text(encoding="utf-8")
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                found[controller] = parts[2]
    return found


def _walk(mount_root: str, mount_point: Path, cgroup: str) -> list[Path]:
    """The cgroup's folder under the mount point and every parent up to the mount point."""
    relative = cgroup
    if mount_root != "/" and (cgroup == mount_root or cgroup.startswith(mount_root + "/")):
        relative = cgroup[len(mount_root) :]
    elif mount_root != "/":
        relative = "/"  # the process sits outside the mounted part: only the mount itself counts
    folder = mount_point / relative.lstrip("/")
    folders = [folder]
    while folder != mount_point and mount_point in folder.parents:
        folder = folder.parent
        folders.append(folder)
    return folders


def _v2_limits(root: Path) -> list[float]:
    cgroup = _own_cgroups(root).get("")
    if cgroup is None:
        return []
    limits = []
    for mount_root, point, fstype, _ in _mounts(root):
        if fstype != "cgroup2":
            continue
        for folder in _walk(mount_root, point, cgroup):
            try:
                quota, period = (folder / "cpu.max").read_text(encoding="utf-8").split()[:2]
            except (OSError, ValueError):
                continue
            if quota != "max" and int(period) > 0:
                limits.append(int(quota) / int(period))
    return limits


def _v1_limits(root: Path) -> list[float]:
    cgroups = _own_cgroups(root)
    limits = []
    for mount_root, point, fstype, options in _mounts(root):
        if fstype != "cgroup" or "cpu" not in options or "cpu" not in cgroups:
            continue
        for folder in _walk(mount_root, point, cgroups["cpu"]):
            try:
                quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="utf-8"))
                period = int((folder / "cpu.cfs_period_us").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if quota > 0 and period > 0:
                limits.append(quota / period)
    return limits
