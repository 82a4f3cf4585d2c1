"""NVML probe against FakeNvml: init failures, unsupported fields, lost GPUs, sampling."""

from __future__ import annotations

from typing import Any

import pytest

from gpuscout._types import NvmlState
from gpuscout.probe.fake_nvml import ERROR_CODES, FakeNvml, FakeNVMLError
from gpuscout.probe.nvml import (
    GPU_FIELD_ORDER,
    NOT_SUPPORTED,
    THROTTLE_MASK,
    decode_clock_events,
    nvml_query,
    nvml_session,
    probe_nvidia,
    sample_gpu,
    throttle_reasons,
)
from helpers import machines


def nvml_of(name: str) -> dict[str, Any]:
    data: dict[str, Any] = machines.nvml(name)
    return data


def test_healthy_h100_reads_every_field() -> None:
    fake = FakeNvml(nvml_of("h100"))
    info = probe_nvidia(fake)
    assert info.state is NvmlState.OK and info.error is None
    assert info.driver_version == "580.95.05"
    assert info.cuda_driver_version == 13000 and info.cuda_driver_version_str == "13.0"
    (gpu,) = info.gpus
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.uuid is not None and gpu.uuid.startswith("GPU-")
    assert gpu.bus_id == "00000000:18:00.0"
    assert gpu.memory_total_bytes == 81559 * 1024**2
    assert gpu.compute_capability == (9, 0)
    assert (gpu.pcie_gen_current, gpu.pcie_gen_max, gpu.pcie_gen_gpu_max) == (5, 5, 5)
    assert (gpu.pcie_width_current, gpu.pcie_width_max) == (16, 16)
    assert gpu.sm_clock_max_mhz == 1980 and gpu.mem_clock_max_mhz == 2619
    assert gpu.power_limit_w == pytest.approx(700.0)  # mW from NVML, W in the record
    assert gpu.power_draw_w == pytest.approx(71.6)
    assert gpu.temperature_slowdown_c == 87
    assert gpu.ecc_enabled is True and gpu.ecc_uncorrected_volatile == 0
    assert gpu.remapped_rows_pending is False and gpu.mig_enabled is False
    assert gpu.compute_mode == "default"
    # Hopper remaps rows; page retirement is the pre-Ampere mechanism.
    assert gpu.retired_pages_pending is None
    assert gpu.unavailable == {"retired_pages_pending": NOT_SUPPORTED}
    assert not gpu.lost and gpu.error is None
    assert fake.init_count == fake.shutdown_count == 1


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("LIBRARY_NOT_FOUND", NvmlState.LIBRARY_NOT_FOUND),
        ("DRIVER_NOT_LOADED", NvmlState.DRIVER_NOT_LOADED),
        ("LIB_RM_VERSION_MISMATCH", NvmlState.VERSION_MISMATCH),
        ("NO_PERMISSION", NvmlState.NO_PERMISSION),
        ("UNKNOWN", NvmlState.ERROR),
        ("CORRUPTED_INFOROM", NvmlState.ERROR),
    ],
)
def test_init_failures_map_to_states(code: str, state: NvmlState) -> None:
    fake = FakeNvml(nvml_of("h100")).fail_init(code)
    info = probe_nvidia(fake)
    assert info.state is state
    assert info.error == str(FakeNVMLError(ERROR_CODES[code]))
    assert info.gpus == () and info.driver_version is None
    assert fake.shutdown_count == 0  # never shut down what did not start


def test_init_failure_that_is_not_an_nvml_error() -> None:
    class Broken:
        def nvmlInit(self) -> None:
            raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    info = probe_nvidia(Broken())
    assert info.state is NvmlState.ERROR
    assert info.error is not None and "cannot open shared object" in info.error


def test_not_supported_and_other_errors_are_none_with_reason() -> None:
    fake = FakeNvml(nvml_of("h100"))
    fake.fail(0, "power_draw_w", "NOT_SUPPORTED")
    fake.fail(0, "temperature_c", "NO_PERMISSION")
    fake.fail(0, "memory_total_bytes", {"code": "UNKNOWN", "message": "driver went away"})
    (gpu,) = probe_nvidia(fake).gpus
    assert gpu.power_draw_w is None and gpu.unavailable["power_draw_w"] == NOT_SUPPORTED
    assert gpu.temperature_c is None
    assert gpu.unavailable["temperature_c"] == "Insufficient Permissions"
    # One call fills both memory fields, so both carry its reason.
    assert gpu.memory_total_bytes is None and gpu.memory_used_bytes is None
    assert gpu.unavailable["memory_used_bytes"] == "driver went away"
    assert gpu.power_limit_w == pytest.approx(700.0)  # the rest still read
    assert not gpu.lost


def test_consumer_gpu_without_ecc_or_mig() -> None:
    (gpu,) = probe_nvidia(FakeNvml(nvml_of("cpu_wheel"))).gpus
    for name in ("ecc_enabled", "remapped_rows_pending", "mig_enabled"):
        assert getattr(gpu, name) is None
        assert gpu.unavailable[name] == NOT_SUPPORTED
    assert gpu.name == "NVIDIA GeForce RTX 4090" and gpu.compute_capability == (8, 9)


def test_gpu_lost_mid_probe_keeps_what_was_read_and_goes_on() -> None:
    data = nvml_of("h100")
    data["devices"] = [data["devices"][0], dict(data["devices"][0], bus_id="00000000:2A:00.0")]
    data["devices"].append(dict(data["devices"][0], bus_id="00000000:3A:00.0"))
    fake = FakeNvml(data).lose(1, after_calls=3)
    info = probe_nvidia(fake)
    assert info.state is NvmlState.OK and len(info.gpus) == 3
    ok0, lost, ok2 = info.gpus
    assert not ok0.lost and not ok2.lost and ok2.bus_id == "00000000:3A:00.0"
    assert lost.lost and lost.error == "GPU is lost" and lost.index == 1
    # Three calls succeeded (name, uuid, pci info); memory was the fourth.
    assert lost.name == "NVIDIA H100 80GB HBM3" and lost.bus_id == "00000000:2A:00.0"
    assert lost.memory_total_bytes is None and lost.pcie_gen_current is None
    assert fake.shutdown_count == 1


def test_gpu_lost_at_a_named_field_and_at_handle_level() -> None:
    fake = FakeNvml(nvml_of("gpu_lost")).lose(0, at="ecc_enabled")
    first, second = probe_nvidia(fake).gpus
    assert first.lost and first.clock_event_reasons is not None and first.ecc_enabled is None
    assert second.lost and second.name is not None  # the recorded loss, after 6 calls
    data = nvml_of("h100")
    data["devices"][0]["handle_error"] = "UNKNOWN"
    (gpu,) = probe_nvidia(FakeNvml(data)).gpus
    assert gpu.lost and gpu.error == "Unknown Error" and gpu.name is None


def test_reset_required_counts_as_lost() -> None:
    data = nvml_of("h100")
    data["devices"][0]["errors"]["pcie_gen_max"] = "RESET_REQUIRED"
    (gpu,) = probe_nvidia(FakeNvml(data)).gpus
    assert gpu.lost and gpu.error == "GPU requires restart" and gpu.pcie_gen_current == 5


def test_processes_with_names_and_permission_errors() -> None:
    (gpu,) = probe_nvidia(FakeNvml(nvml_of("busy"))).gpus
    (proc,) = gpu.processes
    assert proc.pid == 48213 and proc.name == "python3"
    assert gpu.memory_total_bytes is not None and proc.used_memory_bytes is not None
    assert proc.used_memory_bytes / gpu.memory_total_bytes == pytest.approx(0.9)
    (mig,) = probe_nvidia(FakeNvml(nvml_of("mig"))).gpus
    assert mig.mig_enabled is True and mig.processes == ()
    assert mig.unavailable["processes"] == "Insufficient Permissions"


def test_clock_event_reasons_fall_back_to_the_old_name() -> None:
    class OldBindings(FakeNvml):
        def nvmlDeviceGetCurrentClocksEventReasons(self, h: Any) -> int:
            raise FakeNVMLError(ERROR_CODES["FUNCTION_NOT_FOUND"])

    (gpu,) = probe_nvidia(OldBindings(nvml_of("throttled"))).gpus
    assert gpu.clock_event_reasons == 0x28


def test_decode_clock_events() -> None:
    assert decode_clock_events(0x28) == ("HwSlowdown", "SwThermalSlowdown")
    assert decode_clock_events(0x1) == ("GpuIdle",)
    assert decode_clock_events(None) == () and decode_clock_events(0) == ()
    assert decode_clock_events(0x201) == ("GpuIdle", "Unknown(0x200)")
    assert THROTTLE_MASK == 0xEC
    assert throttle_reasons(0x1 | 0x2 | 0x10 | 0x100) == ()
    assert throttle_reasons(0x1 | 0x4 | 0x80) == ("SwPowerCap", "HwPowerBrakeSlowdown")


def test_nvml_query_never_raises_for_ordinary_errors() -> None:
    fake = FakeNvml(nvml_of("h100"))
    res = nvml_query(fake, "nvmlDeviceGetCount")  # before init
    assert not res.ok and res.code == ERROR_CODES["UNINITIALIZED"]
    missing = nvml_query(fake, "nvmlDeviceGetSomethingNew")
    assert not missing.ok and "not in these NVML bindings" in (missing.reason or "")


def test_sampling_session_reads_fast_fields_and_shuts_down_once() -> None:
    fake = FakeNvml(nvml_of("throttled"))
    with nvml_session(fake) as session:
        assert session.ok
        a, b = session.sample(0), session.sample(0)
    assert a.sm_clock_mhz == 1110 and a.power_w == pytest.approx(418.5)
    assert a.temperature_c == 89 and a.clock_event_reasons == 0x28
    assert b.t_s >= a.t_s
    assert fake.init_count == 1 and fake.shutdown_count == 1
    one = sample_gpu(0, FakeNvml(nvml_of("h100")))
    assert one.sm_clock_mhz == 345 and one.clock_event_reasons == 0x1


def test_sampling_without_nvml_gives_empty_samples() -> None:
    with nvml_session(FakeNvml({}).fail_init("DRIVER_NOT_LOADED")) as s:
        assert not s.ok and s.error == "Driver Not Loaded"
        sample = s.sample(0)
    assert sample.sm_clock_mhz is None and sample.power_w is None
    lost = FakeNvml(nvml_of("h100")).lose(0, after_calls=0)
    assert sample_gpu(0, lost).sm_clock_mhz is None
    assert sample_gpu(5, FakeNvml(nvml_of("h100"))).temperature_c is None  # no such GPU


def test_field_order_covers_every_gpu_reading() -> None:
    from dataclasses import fields

    from gpuscout._types import GpuInfo

    bookkeeping = {"index", "catalog_id", "lost", "error", "unavailable"}
    assert set(GPU_FIELD_ORDER) == {f.name for f in fields(GpuInfo)} - bookkeeping


def test_real_pynvml_fails_soft_without_a_driver() -> None:
    info = probe_nvidia()  # this machine: no NVIDIA driver in CI
    if info.state is NvmlState.OK:
        pytest.skip("an NVIDIA driver is present here")
    assert info.error and info.gpus == ()
