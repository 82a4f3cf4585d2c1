"""The probe on a real NVIDIA machine: NVML readings, the torch subprocess, sampling."""

from __future__ import annotations

import importlib.util
import os

import pytest

from gpuscout._types import NvmlState
from gpuscout.probe import FakeNvml, nvml_session, probe_frameworks, probe_nvidia
from gpuscout.probe.recorded import nvidia_to_dict

# Decided through NVML, not torch: collecting this file must not create a CUDA context.
_INFO = probe_nvidia()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(_INFO.state is not NvmlState.OK or not _INFO.gpus, reason="needs NVML"),
]


def test_nvml_reads_the_basics_of_every_gpu() -> None:
    info = probe_nvidia()
    assert info.driver_version and info.cuda_driver_version
    for gpu in info.gpus:
        assert not gpu.lost, gpu.error
        assert gpu.name and gpu.uuid and gpu.uuid.startswith(("GPU-", "MIG-"))
        assert gpu.bus_id and gpu.memory_total_bytes and gpu.memory_total_bytes > 2**30
        assert gpu.compute_capability is not None and gpu.compute_capability >= (3, 0)
        assert gpu.sm_clock_max_mhz and gpu.sm_clock_max_mhz > 0


# What every NVIDIA GPU answers (consumer or datacenter, any driver of the last years).
ALWAYS_READABLE = (
    "sm_clock_mhz",
    "mem_clock_mhz",
    "sm_clock_max_mhz",
    "power_draw_w",
    "temperature_c",
    "clock_event_reasons",
    "compute_mode",
    "processes",
)
# Reasons that mean the probe called NVML wrongly rather than the GPU lacking a feature.
WRONG_CALL = ("Invalid Argument", "Function Not Found", "not in these NVML bindings",
              "unexpected value", "TypeError", "Error:")  # fmt: skip


def test_no_field_is_lost_to_a_wrong_call() -> None:
    for gpu in probe_nvidia().gpus:
        missing = {f: gpu.unavailable.get(f) for f in ALWAYS_READABLE if f in gpu.unavailable}
        assert not missing, missing
        wrong = {f: r for f, r in gpu.unavailable.items() if any(w in r for w in WRONG_CALL)}
        assert not wrong, wrong
        if gpu.compute_capability and gpu.compute_capability >= (8, 0) and gpu.ecc_enabled:
            # Ampere and later datacenter GPUs remap rows (and do not retire pages).
            assert gpu.remapped_rows_pending is not None, gpu.unavailable


def test_recording_replays_to_the_same_reading() -> None:
    info = probe_nvidia()
    assert probe_nvidia(FakeNvml(nvidia_to_dict(info))) == info


def test_sampling_session_reads_live_values() -> None:
    with nvml_session() as session:
        assert session.ok, session.error
        sample = session.sample(0)
    assert sample.sm_clock_mhz is not None and sample.temperature_c is not None
    assert sample.mem_clock_mhz is not None and sample.power_w is not None
    assert sample.clock_event_reasons is not None


def test_torch_subprocess_sees_the_gpus() -> None:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    (torch,) = probe_frameworks(("torch",), timeout_s=180.0)
    assert torch.installed and torch.error is None
    if torch.cuda_build is None:
        pytest.skip("this torch is a CPU build")
    assert torch.gpu_available and torch.kernel_ok, torch.kernel_error
    if "CUDA_VISIBLE_DEVICES" not in os.environ:
        assert torch.device_count == len(_INFO.gpus)
        nvml_caps = sorted(g.compute_capability for g in _INFO.gpus if g.compute_capability)
        assert sorted(torch.device_capabilities) == nvml_caps
