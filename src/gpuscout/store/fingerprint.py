"""The environment fingerprint stored with every run.

Two results can only be compared when the machines and software behind them are
known, so each run row carries what decides performance: host, CPU, OS, GPUs (by
UUID, so the same card is recognised across runs), driver, CUDA and framework
versions. It is a pure function of a ``SystemInfo`` (plus the host name), so it is
cheap, probes nothing and is testable with recorded machines.
"""

from __future__ import annotations

import platform
from typing import Any

from gpuscout._types import GpuInfo, SystemInfo


def _gpu(gpu: GpuInfo) -> dict[str, Any]:
    return {
        "index": gpu.index,
        "name": gpu.name,
        "uuid": gpu.uuid,
        "catalog_id": gpu.catalog_id,
        "memory_total_bytes": gpu.memory_total_bytes,
        "compute_capability": (
            None if gpu.compute_capability is None else list(gpu.compute_capability)
        ),
        "mig_enabled": gpu.mig_enabled,
        "lost": gpu.lost,
    }


def fingerprint(system: SystemInfo, node: str | None = None) -> dict[str, Any]:
    """A plain-JSON description of the machine; ``node`` defaults to platform.node()."""
    host = system.host
    nvidia = system.nvidia
    torch = system.framework("torch")
    tensorflow = system.framework("tensorflow")
    jax = system.framework("jax")

    def version(fw: Any) -> str | None:
        return fw.version if fw is not None and fw.installed else None

    return {
        "host": platform.node() if node is None else node,
        "cpu_model": host.cpu_model,
        "arch": host.arch,
        "physical_cores": host.physical_cores,
        "logical_cores": host.logical_cores,
        "ram_total_bytes": host.ram_total_bytes,
        "os": host.os_pretty or f"{host.os_name} {host.os_release}".strip(),
        "os_name": host.os_name,
        "os_release": host.os_release,
        "python_version": host.python_version,
        "container": host.container,
        "wsl": host.wsl,
        "nvml_state": nvidia.state.value,
        "driver_version": nvidia.driver_version,
        "driver_cuda_version": nvidia.cuda_driver_version_str,
        "gpus": [_gpu(g) for g in nvidia.gpus],
        "torch_version": version(torch),
        "torch_cuda_build": torch.cuda_build if torch is not None else None,
        "torch_hip_build": torch.hip_build if torch is not None else None,
        "cudnn_version": torch.cudnn_version if torch is not None else None,
        "tensorflow_version": version(tensorflow),
        "jax_version": version(jax),
        "gpuscout_version": system.gpuscout_version,
    }
