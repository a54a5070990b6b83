"""What the run ran on: cores, CPU model, memory, Python, the servers' versions; and this
process's resident size. Linux's /proc is read where it is there."""

import os
import platform
import resource
from importlib import metadata
from pathlib import Path

__all__ = ["cpu_model", "machine_rows", "memory_total", "resident_bytes", "versions"]


def _proc(name: str) -> str:
    try:
        return Path("/proc", name).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _proc("cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def memory_total() -> int | None:
    """Bytes of RAM, or None if not known."""
    for line in _proc("meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def resident_bytes() -> int:
    """This process's resident set size now (the peak where /proc is not there)."""
    for line in _proc("self/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def versions(*distributions: str) -> str:
    found = []
    for name in distributions:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def machine_rows() -> list[tuple[str, str]]:
    total = memory_total()
    return [
        ("cores (nproc)", str(len(os.sched_getaffinity(0)))),
        ("CPU", cpu_model()),
        ("memory", f"{total / 2**30:.1f} GiB" if total else "unknown"),
        (
            "python",
            f"{platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.release()}",
        ),
    ]
