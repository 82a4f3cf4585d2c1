"""The whole machine in one record: host, NVIDIA driver and GPUs, frameworks, env vars.

Every seam is a keyword argument (``nvml``, ``framework_runner``, ``host``, ``environ``)
so the same function describes this machine or replays a recorded one.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from gpuscout._types import EnvVars, GpuInfo, HostInfo, NvidiaInfo, SystemInfo
from gpuscout.errors import UsageError
from gpuscout.probe.frameworks import (
    DEFAULT_FRAMEWORKS,
    DEFAULT_TIMEOUT_S,
    FrameworkRunner,
    probe_frameworks,
)
from gpuscout.probe.host import probe_host
from gpuscout.probe.nvml import probe_nvidia

ENV_VARS: dict[str, str] = {
    "cuda_visible_devices": "CUDA_VISIBLE_DEVICES",
    "cuda_device_order": "CUDA_DEVICE_ORDER",
    "ld_library_path": "LD_LIBRARY_PATH",
    "hsa_override_gfx_version": "HSA_OVERRIDE_GFX_VERSION",
}


def env_vars(environ: Mapping[str, str] | None = None) -> EnvVars:
    env = os.environ if environ is None else environ
    return EnvVars(**{field: env.get(var) for field, var in ENV_VARS.items()})


def _catalog_matcher() -> Any:
    # The catalog may not exist yet (or may be broken mid-edit); the probe works without it.
    try:
        catalog = importlib.import_module("gpuscout.catalog")
    except ImportError:
        return None
    return getattr(catalog, "match_local_gpu", None)


def with_catalog_ids(nvidia: NvidiaInfo) -> NvidiaInfo:
    """Fill ``GpuInfo.catalog_id`` from the GPU catalog where a row matches."""
    match = _catalog_matcher()
    if match is None or not nvidia.gpus:
        return nvidia
    gpus: list[GpuInfo] = []
    for gpu in nvidia.gpus:
        spec = match(gpu.name, gpu.memory_total_bytes) if gpu.name else None
        gpus.append(dataclasses.replace(gpu, catalog_id=spec.id) if spec is not None else gpu)
    return dataclasses.replace(nvidia, gpus=tuple(gpus))


def _with_memory(host: HostInfo, mem_mts: int | None, mem_channels: int | None) -> HostInfo:
    """A given host (e.g. a recorded one) with the user's memory figures applied."""
    if mem_mts is None and mem_channels is None:
        return host
    unavailable = dict(host.unavailable)
    changes: dict[str, Any] = {}
    for name, value in (("mem_mts", mem_mts), ("mem_channels", mem_channels)):
        if value is not None:
            if isinstance(value, bool) or value <= 0:
                raise UsageError(f"--{name.replace('_', '-')} must be a positive whole number")
            changes[name] = value
            unavailable.pop(name, None)
    return dataclasses.replace(host, **changes, unavailable=unavailable)


def probe_system(
    *,
    nvml: Any | None = None,
    framework_runner: FrameworkRunner | None = None,
    host: HostInfo | None = None,
    environ: Mapping[str, str] | None = None,
    mem_mts: int | None = None,
    mem_channels: int | None = None,
    frameworks: Sequence[str] = DEFAULT_FRAMEWORKS,
    framework_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SystemInfo:
    """Probe everything. Fail-soft: what cannot be read is None with a reason.

    ``environ`` feeds ``SystemInfo.env`` and the host's container/WSL detection; the
    framework subprocesses always inherit this process's real environment, since that is
    what the user's own programs will see.

    Raises only UsageError/UnknownNameError for bad arguments (memory figures, an
    unknown framework name).
    """
    from gpuscout import __version__

    if host is None:
        host = probe_host(mem_mts, mem_channels, environ=environ)
    else:
        host = _with_memory(host, mem_mts, mem_channels)
    infos = probe_frameworks(frameworks, framework_timeout_s, framework_runner)
    nvidia = with_catalog_ids(probe_nvidia(nvml))
    return SystemInfo(
        host=host,
        nvidia=nvidia,
        frameworks=infos,
        env=env_vars(environ),
        gpuscout_version=__version__,
    )
