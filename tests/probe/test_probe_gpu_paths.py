"""The NVML probe against the *real* pynvml bindings, with no GPU and no driver.

FakeNvml stands in for the pynvml module, so it can only prove what it was written to
agree with. Here the real ``pynvml`` runs instead, over a stand-in for
``libnvidia-ml.so.1`` at the ctypes level: each C function receives the very ctypes
arguments pynvml builds (``byref`` outputs, string buffers, structs) and answers with an
``nvmlReturn_t``. So a wrong argument count, a wrong argument order, a return shape
pynvml does not produce, or an error class it does not raise fails here, not on the
first GPU run (where ``nvml_query`` would turn it into a quiet "n/a").
"""

from __future__ import annotations

import ctypes
import inspect
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gpuscout._types import NvmlState
from gpuscout.probe import fake_nvml
from gpuscout.probe import nvml as probe
from gpuscout.probe.fake_nvml import FakeNvml

pynvml = pytest.importorskip("pynvml")

_CArg = type(ctypes.byref(ctypes.c_int()))
SUCCESS, INVALID_ARGUMENT, NOT_SUPPORTED, INSUFFICIENT_SIZE, GPU_IS_LOST = 0, 2, 3, 7, 15


def _outs(args: tuple[Any, ...]) -> list[Any]:
    """The objects behind the ``byref(...)`` arguments: where a C function writes."""
    return [getattr(a, "_obj") for a in args if isinstance(a, _CArg)]  # noqa: B009


def _scalars(*values: int) -> Callable[..., int]:
    def fn(*args: Any) -> int:
        for out, v in zip(_outs(args), values, strict=True):
            out.value = v
        return SUCCESS

    return fn


def _string(text: str) -> Callable[..., int]:
    def fn(*args: Any) -> int:
        buf = next(a for a in args if isinstance(a, ctypes.Array))
        buf.value = text.encode()
        return SUCCESS

    return fn


def _by_arg(table: dict[int, int]) -> Callable[..., int]:
    """(handle, enum, out*): answers per enum value, INVALID_ARGUMENT for others."""

    def fn(_handle: Any, which: Any, out: Any) -> int:
        if which.value not in table:
            return INVALID_ARGUMENT
        out._obj.value = table[which.value]
        return SUCCESS

    return fn


def _fail(code: int) -> Callable[..., int]:
    return lambda *args: code


def _pci(_handle: Any, info: Any) -> int:
    info._obj.busId = b"00000000:19:00.0"
    return SUCCESS


def _memory(_handle: Any, mem: Any) -> int:
    m = mem._obj
    m.total, m.used, m.free = 80 * 2**30, 500 * 2**20, 80 * 2**30 - 500 * 2**20
    return SUCCESS


def _ecc_errors(_handle: Any, error_type: Any, counter: Any, out: Any) -> int:
    # Distinct numbers for each (type, counter), so swapped arguments cannot pass.
    table = {(1, 0): 0, (1, 1): 2, (0, 0): 97, (0, 1): 98}
    out._obj.value = table[(error_type.value, counter.value)]
    return SUCCESS


def _processes(count: Any, procs: Any) -> int:
    # NVML's two-call protocol: a size query first, then the filled array.
    if not procs:
        count._obj.value = 2
        return INSUFFICIENT_SIZE
    for i, (pid, used) in enumerate(((4242, 3 * 2**30), (4243, 2**30))):
        procs[i].pid, procs[i].usedGpuMemory = pid, used
        procs[i].gpuInstanceId = procs[i].computeInstanceId = 0xFFFFFFFF
    count._obj.value = 2
    return SUCCESS


def h100_functions() -> dict[str, Callable[..., int]]:
    """One healthy H100 as the C library answers for it (field values as in GpuInfo)."""
    return {
        "nvmlInitWithFlags": lambda flags: SUCCESS,
        "nvmlShutdown": lambda: SUCCESS,
        "nvmlSystemGetDriverVersion": _string("580.95.05"),
        "nvmlSystemGetNVMLVersion": _string("13.580.95.05"),
        "nvmlSystemGetCudaDriverVersion_v2": _scalars(13000),
        "nvmlSystemGetProcessName": _string("train.py"),
        "nvmlDeviceGetCount_v2": _scalars(1),
        "nvmlDeviceGetHandleByIndex_v2": lambda i, out: SUCCESS if i.value == 0 else 2,
        "nvmlDeviceGetName": _string("NVIDIA H100 80GB HBM3"),
        "nvmlDeviceGetUUID": _string("GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"),
        "nvmlDeviceGetPciInfo_v3": _pci,
        "nvmlDeviceGetMemoryInfo": _memory,
        "nvmlDeviceGetCudaComputeCapability": _scalars(9, 0),
        "nvmlDeviceGetCurrPcieLinkGeneration": _scalars(5),
        "nvmlDeviceGetMaxPcieLinkGeneration": _scalars(5),
        "nvmlDeviceGetGpuMaxPcieLinkGeneration": _scalars(5),
        "nvmlDeviceGetCurrPcieLinkWidth": _scalars(16),
        "nvmlDeviceGetMaxPcieLinkWidth": _scalars(16),
        "nvmlDeviceGetClockInfo": _by_arg({1: 1755, 2: 2619}),
        "nvmlDeviceGetMaxClockInfo": _by_arg({1: 1980, 2: 2619}),
        "nvmlDeviceGetEnforcedPowerLimit": _scalars(700_000),
        "nvmlDeviceGetPowerUsage": _scalars(71_234),
        "nvmlDeviceGetTemperature": _by_arg({0: 34}),
        "nvmlDeviceGetTemperatureThreshold": _by_arg({1: 87}),
        "nvmlDeviceGetCurrentClocksEventReasons": _scalars(0x1 | 0x4),
        "nvmlDeviceGetEccMode": _scalars(1, 1),
        "nvmlDeviceGetTotalEccErrors": _ecc_errors,
        "nvmlDeviceGetRetiredPagesPendingStatus": _fail(NOT_SUPPORTED),  # Hopper remaps rows
        "nvmlDeviceGetRemappedRows": _scalars(0, 0, 1, 0),
        "nvmlDeviceGetMigMode": _scalars(0, 0),
        "nvmlDeviceGetComputeMode": _scalars(3),
        "nvmlDeviceGetComputeRunningProcesses_v3": lambda _h, c, p: _processes(c, p),
    }


class FakeLibrary:
    """``libnvidia-ml.so.1`` as pynvml's ctypes calls see it; a missing symbol is an
    AttributeError, which pynvml turns into NVML_ERROR_FUNCTION_NOT_FOUND."""

    def __init__(self, functions: dict[str, Callable[..., int]]) -> None:
        self._functions = functions
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., int]:
        if name.startswith("__") or name not in self._functions:
            raise AttributeError(name)
        fn = self._functions[name]

        def call(*args: Any) -> int:
            self.calls.append(name)
            return fn(*args)

        return call


@pytest.fixture
def real_nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeLibrary]]:
    """Install a FakeLibrary under the real pynvml; returns a function that does it."""

    def install(functions: dict[str, Callable[..., int]] | None = None) -> FakeLibrary:
        lib = FakeLibrary(h100_functions() if functions is None else functions)
        monkeypatch.setattr(pynvml, "nvmlLib", lib)
        monkeypatch.setattr(pynvml, "_nvmlGetFunctionPointer_cache", {})
        monkeypatch.setattr(pynvml, "_nvmlLib_refcount", 0)
        return lib

    # psutil would name *this machine's* pids; the probe must fall back to NVML's names.
    monkeypatch.setitem(sys.modules, "psutil", None)
    yield install


def test_real_bindings_read_every_field_of_an_h100(real_nvml: Callable[..., FakeLibrary]) -> None:
    lib = real_nvml()
    info = probe.probe_nvidia(pynvml)
    assert info.state is NvmlState.OK, info.error
    assert info.driver_version == "580.95.05" and info.nvml_version == "13.580.95.05"
    assert info.cuda_driver_version == 13000
    (gpu,) = info.gpus
    assert gpu.unavailable == {"retired_pages_pending": probe.NOT_SUPPORTED}
    assert (gpu.name, gpu.uuid) == (
        "NVIDIA H100 80GB HBM3",
        "GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
    )
    assert gpu.bus_id == "00000000:19:00.0"
    assert (gpu.memory_total_bytes, gpu.memory_used_bytes) == (80 * 2**30, 500 * 2**20)
    assert gpu.compute_capability == (9, 0)
    assert (gpu.pcie_gen_current, gpu.pcie_gen_max, gpu.pcie_gen_gpu_max) == (5, 5, 5)
    assert (gpu.pcie_width_current, gpu.pcie_width_max) == (16, 16)
    assert (gpu.sm_clock_mhz, gpu.sm_clock_max_mhz) == (1755, 1980)
    assert (gpu.mem_clock_mhz, gpu.mem_clock_max_mhz) == (2619, 2619)
    assert gpu.power_limit_w == pytest.approx(700.0)  # NVML's milliwatts, in watts
    assert gpu.power_draw_w == pytest.approx(71.234)
    assert (gpu.temperature_c, gpu.temperature_slowdown_c) == (34, 87)
    assert gpu.clock_event_reasons == 0x5
    assert probe.throttle_reasons(gpu.clock_event_reasons) == ("SwPowerCap",)
    assert gpu.ecc_enabled is True
    assert (gpu.ecc_uncorrected_volatile, gpu.ecc_uncorrected_aggregate) == (0, 2)
    assert (gpu.remapped_rows_pending, gpu.remapped_rows_failure) == (True, False)
    assert gpu.mig_enabled is False and gpu.compute_mode == "exclusive_process"
    assert gpu.processes is not None
    assert [(p.pid, p.used_memory_bytes, p.name) for p in gpu.processes] == [
        (4242, 3 * 2**30, "train.py"),
        (4243, 2**30, "train.py"),
    ]
    assert not gpu.lost and gpu.error is None
    # The deprecated clock-event name was never needed, and NVML was shut down again.
    assert "nvmlDeviceGetCurrentClocksThrottleReasons" not in lib.calls
    assert lib.calls.count("nvmlInitWithFlags") == lib.calls.count("nvmlShutdown") == 1


def test_a_driver_without_v3_process_listing_falls_back_to_v2(
    real_nvml: Callable[..., FakeLibrary],
) -> None:
    fns = h100_functions()
    fns["nvmlDeviceGetComputeRunningProcesses_v2"] = fns.pop(
        "nvmlDeviceGetComputeRunningProcesses_v3"
    )
    real_nvml(fns)
    # Why the versioned names come first: the unversioned one raises an error with no
    # NVML code on such a driver, which nvml_query cannot tell from any other failure.
    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        with pytest.raises(pynvml.NVMLLibraryMismatchError):
            pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    finally:
        pynvml.nvmlShutdown()
    (gpu,) = probe.probe_nvidia(pynvml).gpus
    assert "processes" not in gpu.unavailable
    assert gpu.processes is not None and [p.pid for p in gpu.processes] == [4242, 4243]


def test_an_old_driver_uses_the_old_clock_event_name(
    real_nvml: Callable[..., FakeLibrary],
) -> None:
    fns = h100_functions()
    fns["nvmlDeviceGetCurrentClocksThrottleReasons"] = fns.pop(
        "nvmlDeviceGetCurrentClocksEventReasons"
    )
    lib = real_nvml(fns)
    (gpu,) = probe.probe_nvidia(pynvml).gpus
    assert gpu.clock_event_reasons == 0x5 and "clock_event_reasons" not in gpu.unavailable
    assert "nvmlDeviceGetCurrentClocksThrottleReasons" in lib.calls


def _temperature_v(_handle: Any, temp: Any) -> int:
    # nvmlDeviceGetTemperatureV(device, nvmlTemperature_t*): the sensor goes in the struct.
    t = temp._obj
    if t.version != pynvml.nvmlTemperature_v1 or t.sensorType != 0:
        return INVALID_ARGUMENT
    t.temperature = 41
    return SUCCESS


def test_a_driver_without_the_deprecated_temperature_call_reads_it_through_v(
    real_nvml: Callable[..., FakeLibrary],
) -> None:
    fns = h100_functions()
    del fns["nvmlDeviceGetTemperature"]  # "removed in CUDA 14.0"
    fns["nvmlDeviceGetTemperatureV"] = _temperature_v
    lib = real_nvml(fns)
    (gpu,) = probe.probe_nvidia(pynvml).gpus
    assert gpu.temperature_c == 41 and "temperature_c" not in gpu.unavailable
    with probe.nvml_session(pynvml) as session:
        assert session.sample(0).temperature_c == 41
    assert lib.calls.count("nvmlDeviceGetTemperatureV") == 2


def test_not_supported_is_the_real_error_subclass_and_reads_as_not_supported(
    real_nvml: Callable[..., FakeLibrary],
) -> None:
    fns = h100_functions()
    fns["nvmlDeviceGetMigMode"] = _fail(NOT_SUPPORTED)
    real_nvml(fns)
    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        with pytest.raises(pynvml.NVMLError_NotSupported) as caught:
            pynvml.nvmlDeviceGetMigMode(handle)
        assert caught.value.value == pynvml.NVML_ERROR_NOT_SUPPORTED
        res = probe.nvml_query(pynvml, "nvmlDeviceGetMigMode", handle)
        assert (res.reason, res.code) == (probe.NOT_SUPPORTED, NOT_SUPPORTED)
    finally:
        pynvml.nvmlShutdown()
    (gpu,) = probe.probe_nvidia(pynvml).gpus
    assert gpu.mig_enabled is None and gpu.unavailable["mig_enabled"] == probe.NOT_SUPPORTED


def test_a_gpu_lost_mid_probe_is_a_record(real_nvml: Callable[..., FakeLibrary]) -> None:
    fns = h100_functions()
    fns["nvmlDeviceGetPowerUsage"] = _fail(GPU_IS_LOST)
    real_nvml(fns)
    (gpu,) = probe.probe_nvidia(pynvml).gpus
    assert gpu.lost and gpu.error == "GPU is lost"
    assert gpu.power_limit_w == pytest.approx(700.0)  # read before the loss: kept
    assert gpu.power_draw_w is None


def test_no_library_is_library_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(name: str, *args: Any, **kwargs: Any) -> Any:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(pynvml, "nvmlLib", None)
    monkeypatch.setattr(pynvml, "CDLL", no_library)
    info = probe.probe_nvidia(pynvml)
    assert info.state is NvmlState.LIBRARY_NOT_FOUND and info.gpus == ()


def test_sampling_session_over_the_real_bindings(real_nvml: Callable[..., FakeLibrary]) -> None:
    lib = real_nvml()
    with probe.nvml_session(pynvml) as session:
        assert session.ok, session.error
        s1, s2 = session.sample(0), session.sample(0)
    assert (s1.sm_clock_mhz, s1.mem_clock_mhz, s1.temperature_c) == (1755, 2619, 34)
    assert s1.power_w == pytest.approx(71.234) and s1.clock_event_reasons == 0x5
    assert s2.t_s >= s1.t_s
    # One handle lookup for both samples, one init and one shutdown.
    assert lib.calls.count("nvmlDeviceGetHandleByIndex_v2") == 1
    assert lib.calls.count("nvmlInitWithFlags") == lib.calls.count("nvmlShutdown") == 1


# -- what the probe calls, checked against the installed bindings ----------------------


def _called_functions() -> list[tuple[str | tuple[str, ...], int]]:
    """(function name(s), number of arguments after the handle) for each device call."""
    calls: list[tuple[str | tuple[str, ...], int]] = [
        (names, len(consts)) for _fields, names, consts, _conv in probe.GPU_FIELD_SPECS
    ]
    return [*calls, (probe._PROCESS_FNS, 0)]


def test_every_device_call_exists_and_binds_its_arguments() -> None:
    for names, extra in _called_functions():
        names = (names,) if isinstance(names, str) else names
        present = [n for n in names if hasattr(pynvml, n)]
        # The first name is the one a current driver answers; it must exist now.
        assert present and present[0] == names[0], f"{names[0]} is not in pynvml"
        for name in present:
            sig = inspect.signature(getattr(pynvml, name))
            sig.bind(object(), *range(extra))  # TypeError on a wrong argument count


def test_constants_the_probe_passes_are_pynvml_s() -> None:
    for _fields, _names, consts, _conv in probe.GPU_FIELD_SPECS:
        for const, default in consts:
            assert getattr(pynvml, const) == default, const
    for name, code in probe._DEFAULT_CODES.items():
        assert probe.error_code(pynvml, name) == code == getattr(pynvml, f"NVML_ERROR_{name}")


def test_fake_nvml_has_the_names_and_signatures_of_the_real_module() -> None:
    fake_fns = [n for n in dir(FakeNvml) if n.startswith("nvml")]
    assert len(fake_fns) > 20
    for name in fake_fns:
        assert hasattr(pynvml, name), f"FakeNvml.{name} is not a pynvml function"
        real = inspect.signature(getattr(pynvml, name))
        fake = inspect.signature(getattr(FakeNvml, name))
        n_fake = len(fake.parameters) - 1  # without self
        real.bind(*range(n_fake))  # the fake's arity is a valid call of the real one
        required = [p for p in real.parameters.values() if p.default is p.empty]
        assert len(required) == n_fake, name
    for name in ("NVML_CLOCK_SM", "NVML_CLOCK_MEM", "NVML_TEMPERATURE_GPU", "NVML_VOLATILE_ECC"):
        assert getattr(FakeNvml, name) == getattr(pynvml, name)


def test_fake_error_codes_and_texts_are_the_real_ones() -> None:
    for name, code in fake_nvml.ERROR_CODES.items():
        assert getattr(pynvml, f"NVML_ERROR_{name}") == code, name
    for code, text in fake_nvml.ERROR_STRINGS.items():
        assert pynvml.NVMLError._errcode_to_string[code] == text, code
