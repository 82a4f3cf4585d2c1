"""The environment fingerprint is a pure, JSON-ready function of a SystemInfo."""

from __future__ import annotations

import json
import platform

from gpuscout import (
    EnvVars,
    FrameworkInfo,
    GpuInfo,
    HostInfo,
    NvidiaInfo,
    NvmlState,
    SystemInfo,
)
from gpuscout.store import Store, fingerprint

HOST = HostInfo(
    cpu_model="AMD EPYC 7763",
    arch="x86_64",
    physical_cores=64,
    logical_cores=128,
    base_clock_mhz=2450.0,
    max_clock_mhz=3500.0,
    isa=("avx2", "fma"),
    ram_total_bytes=512 * 2**30,
    ram_available_bytes=500 * 2**30,
    os_name="Linux",
    os_release="6.8.0",
    os_pretty="Ubuntu 24.04 LTS",
    python_version="3.11.7",
    container="docker",
    wsl=False,
)


def _system(gpus: tuple[GpuInfo, ...], frameworks: tuple[FrameworkInfo, ...]) -> SystemInfo:
    nvidia = NvidiaInfo(
        state=NvmlState.OK,
        driver_version="570.86.15",
        cuda_driver_version=12080,
        gpus=gpus,
    )
    return SystemInfo(HOST, nvidia, frameworks, EnvVars(), "0.1.0")


H100 = GpuInfo(
    index=0,
    name="NVIDIA H100 80GB HBM3",
    uuid="GPU-1234",
    memory_total_bytes=80 * 2**30,
    compute_capability=(9, 0),
    catalog_id="h100-sxm",
    mig_enabled=False,
)
TORCH = FrameworkInfo("torch", True, version="2.6.0", cuda_build="12.4", cudnn_version="90100")
JAX_MISSING = FrameworkInfo("jax", False)
TF = FrameworkInfo("tensorflow", True, version="2.18.0")


def test_fingerprint_fields_for_a_gpu_machine() -> None:
    fp = fingerprint(_system((H100,), (TORCH, JAX_MISSING, TF)), node="node-7")
    assert fp["host"] == "node-7"
    assert fp["cpu_model"] == "AMD EPYC 7763"
    assert fp["os"] == "Ubuntu 24.04 LTS"
    assert fp["driver_version"] == "570.86.15"
    assert fp["driver_cuda_version"] == "12.8"
    assert fp["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": "GPU-1234",
            "catalog_id": "h100-sxm",
            "memory_total_bytes": 80 * 2**30,
            "compute_capability": [9, 0],
            "mig_enabled": False,
            "lost": False,
        }
    ]
    assert fp["torch_version"] == "2.6.0"
    assert fp["torch_cuda_build"] == "12.4"
    assert fp["tensorflow_version"] == "2.18.0"
    assert fp["jax_version"] is None  # not installed
    assert fp["gpuscout_version"] == "0.1.0"
    assert fp["nvml_state"] == "ok"
    # Plain JSON all the way down, so the store can keep it as it is.
    assert json.loads(json.dumps(fp)) == fp


def test_fingerprint_without_gpu_or_frameworks_uses_platform_node() -> None:
    system = SystemInfo(HOST, NvidiaInfo(NvmlState.LIBRARY_NOT_FOUND), (), EnvVars(), "0.1.0")
    fp = fingerprint(system)
    assert fp["host"] == platform.node()
    assert fp["gpus"] == []
    assert fp["driver_version"] is None
    assert fp["torch_version"] is None and fp["torch_cuda_build"] is None
    assert fp["nvml_state"] == "library_not_found"


def test_fingerprint_is_deterministic_and_stored_intact() -> None:
    system = _system((H100,), (TORCH,))
    assert fingerprint(system, node="a") == fingerprint(system, node="a")
    with Store(":memory:") as store:
        run_id = store.begin_run("doctor", fingerprint(system, node="a"))
        assert store.get_run(run_id).fingerprint == fingerprint(system, node="a")
        row = store.conn.execute("SELECT host, gpuscout_version FROM runs").fetchone()
        assert tuple(row) == ("a", "0.1.0")
