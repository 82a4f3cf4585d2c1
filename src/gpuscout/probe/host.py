"""The host: CPU, ISA features, RAM, OS, container and WSL. Read-only and fail-soft.

File-system reads go through ``root`` and environment reads through ``environ`` so tests
can fake a container, WSL or an ARM box without touching the real machine.
"""

from __future__ import annotations

import importlib
import os
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gpuscout._types import HostInfo
from gpuscout.errors import UsageError

# Canonical ISA names in the order they are reported. Keys are flag spellings with
# underscores removed and lower-cased: Linux writes "avx512_bf16", py-cpuinfo's CPUID
# path "avx512bf16", and ARM Linux calls NEON "asimd".
ISA_NAMES: tuple[str, ...] = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "neon",
    "sve",
)
_ISA_ALIASES: dict[str, str] = {
    **{name.replace("_", ""): name for name in ISA_NAMES},
    "fma3": "fma",
    "asimd": "neon",
}
_ARM_ARCHES = {"aarch64", "arm64", "armv8l", "arm_8"}
_MEM_REASON = (
    "memory speed and channels are not readable without root tools; "
    "give --mem-mts and --mem-channels"
)


def normalise_isa(flags: Iterable[str], arch: str = "") -> tuple[str, ...]:
    """Map raw CPU flags to ``ISA_NAMES`` (ordered, no duplicates)."""
    found = {_ISA_ALIASES.get(f.strip().lower().replace("_", "")) for f in flags}
    if arch.lower() in _ARM_ARCHES:
        found.add("neon")  # Advanced SIMD is mandatory in ARMv8-A, even when unlisted
    return tuple(name for name in ISA_NAMES if name in found)


def _psutil() -> Any:
    # Imported by name: psutil ships no type stubs, and the probe treats it as untyped.
    return importlib.import_module("psutil")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _proc_cpuinfo_value(text: str | None, *keys: str) -> str | None:
    """First ``key : value`` line in /proc/cpuinfo whose key is one of ``keys``."""
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in keys:
            return value.strip()
    return None


def _cpu_info(unavailable: dict[str, str]) -> dict[str, Any]:
    try:
        import cpuinfo

        # May spawn a helper process internally; fine at probe time, never at import.
        return dict(cpuinfo.get_cpu_info())
    except Exception as exc:
        unavailable["cpu_info"] = f"py-cpuinfo failed: {exc}"
        return {}


def _os_release_pretty(root: Path) -> str | None:
    for rel in ("etc/os-release", "usr/lib/os-release"):
        text = _read(root / rel)
        for line in (text or "").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip("\"'") or None
    return None


def _os_pretty(root: Path, system: str, release: str) -> str:
    pretty = _os_release_pretty(root)
    if pretty:
        return pretty
    if system == "Darwin":
        mac = platform.mac_ver()[0]
        return f"macOS {mac}" if mac else f"Darwin {release}"
    if system == "Windows":
        return platform.platform(terse=True)
    return f"{system} {release}".strip()


def detect_container(root: Path, environ: Mapping[str, str]) -> str | None:
    """Which container runtime, if any, this process runs in (best effort)."""
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if (root / "run/.containerenv").exists():
        return "podman"
    if (root / ".dockerenv").exists():
        return "docker"
    cgroup = (_read(root / "proc/1/cgroup") or "").lower()
    for marker, name in (
        ("kubepods", "kubernetes"),
        ("docker", "docker"),
        ("libpod", "podman"),
        ("lxc", "lxc"),
        ("containerd", "containerd"),
    ):
        if marker in cgroup:
            return name
    # systemd-nspawn, LXC and podman set $container for PID 1 and often its children.
    value = environ.get("container", "").strip()
    return value or None


def detect_wsl(root: Path, environ: Mapping[str, str]) -> bool:
    if environ.get("WSL_DISTRO_NAME"):
        return True
    return "microsoft" in (_read(root / "proc/version") or "").lower()


def _cgroup_memory_limit(root: Path) -> int | None:
    """The container's memory limit, when one is set (cgroup v2, then v1)."""
    for rel in ("sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"):
        text = (_read(root / rel) or "").strip()
        if text.isdigit():
            # v1 writes a huge page-aligned number for "no limit"; treat >= 2**60 as none.
            value = int(text)
            return value if value < 2**60 else None
    return None


def _clocks(
    info: Mapping[str, Any], unavailable: dict[str, str], psutil: Any = None
) -> tuple[float | None, ...]:
    base: float | None = None
    advertised = info.get("hz_advertised")
    if isinstance(advertised, (list, tuple)) and advertised and advertised[0]:
        base = float(advertised[0]) / 1e6
    else:
        unavailable["base_clock_mhz"] = "py-cpuinfo reports no advertised clock"
    top: float | None = None
    try:
        freq = (_psutil() if psutil is None else psutil).cpu_freq()
        if freq is not None and freq.max:
            top = float(freq.max)
    except Exception:  # absent on some VMs and platforms; the reason below covers it
        pass
    if top is None:
        unavailable["max_clock_mhz"] = "the OS does not report a maximum CPU frequency"
    return base, top


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or int(value) <= 0):
        raise UsageError(f"{name} must be a positive whole number, got {value!r}")


def probe_host(
    mem_mts: int | None = None,
    mem_channels: int | None = None,
    *,
    root: Path = Path("/"),
    environ: Mapping[str, str] | None = None,
    cpu_info: Mapping[str, Any] | None = None,
    psutil: Any = None,
) -> HostInfo:
    """Describe this host. ``mem_mts``/``mem_channels`` come from the user (e.g. 2933, 4).

    ``cpu_info`` is a ``cpuinfo.get_cpu_info()`` dict; when None it is read here (about a
    second, once). ``psutil``: the module that counts cores, RAM and the clock (None:
    psutil itself). Raises UsageError only for impossible memory figures.
    """
    _check_positive("--mem-mts", mem_mts)
    _check_positive("--mem-channels", mem_channels)
    env = os.environ if environ is None else environ
    unavailable: dict[str, str] = {}
    info = dict(cpu_info) if cpu_info is not None else _cpu_info(unavailable)
    proc_cpuinfo = _read(root / "proc/cpuinfo")
    arch = str(info.get("arch_string_raw") or platform.machine() or "unknown")
    base, top = _clocks(info, unavailable, psutil)
    physical, logical, ram_total, ram_available = _cores_and_ram(unavailable, psutil)
    ram_total, ram_available = _container_capped(ram_total, ram_available, root)
    for key, given in (("mem_mts", mem_mts), ("mem_channels", mem_channels)):
        if given is None:
            unavailable[key] = _MEM_REASON
    system, release = platform.system(), platform.release()
    return HostInfo(
        cpu_model=_cpu_model(info, proc_cpuinfo),
        arch=arch,
        physical_cores=physical,
        logical_cores=logical,
        base_clock_mhz=base,
        max_clock_mhz=top,
        isa=normalise_isa(_cpu_flags(info, proc_cpuinfo), arch),
        ram_total_bytes=ram_total,
        ram_available_bytes=ram_available,
        os_name=system,
        os_release=release,
        os_pretty=_os_pretty(root, system, release),
        python_version=platform.python_version(),
        container=detect_container(root, env),
        wsl=detect_wsl(root, env),
        mem_mts=mem_mts,
        mem_channels=mem_channels,
        unavailable=unavailable,
    )


def _cpu_model(info: Mapping[str, Any], proc_cpuinfo: str | None) -> str:
    model = (
        info.get("brand_raw")
        or _proc_cpuinfo_value(proc_cpuinfo, "model name", "hardware", "cpu model")
        or platform.processor()
        or "unknown"
    )
    return str(model).strip()


def _cpu_flags(info: Mapping[str, Any], proc_cpuinfo: str | None) -> list[str]:
    flags = [str(f) for f in info.get("flags") or ()]
    if not flags:  # py-cpuinfo failed or found none: read the kernel's own list
        flags = (_proc_cpuinfo_value(proc_cpuinfo, "flags", "features") or "").split()
    return flags


def _cores_and_ram(
    unavailable: dict[str, str], psutil: Any
) -> tuple[int | None, int | None, int | None, int | None]:
    """(physical cores, logical cores, total RAM, available RAM) as psutil counts them."""
    physical = logical = ram_total = ram_available = None
    try:
        ps = _psutil() if psutil is None else psutil
        physical, logical = ps.cpu_count(logical=False), ps.cpu_count(logical=True)
        vm = ps.virtual_memory()
        ram_total, ram_available = int(vm.total), int(vm.available)
    except Exception as exc:
        unavailable["ram_total_bytes"] = f"psutil failed: {exc}"
    return physical, logical, ram_total, ram_available


def _container_capped(
    ram_total: int | None, ram_available: int | None, root: Path
) -> tuple[int | None, int | None]:
    """Inside a memory-limited container the limit, not the host's RAM, is what we get."""
    limit = _cgroup_memory_limit(root)
    if limit is not None and ram_total is not None and limit < ram_total:
        return limit, min(ram_available or limit, limit)
    return ram_total, ram_available
