"""NVIDIA GPUs as NVML reports them: read-only, lazy and fail-soft.

Every NVML call goes through :func:`nvml_query` (the idea of nvitop's ``nvmlQuery``): a
missing function, an unsupported field or any driver error becomes ``None`` plus a
reason, never an exception, except a GPU that has fallen off the bus, which stops the
probe of that one GPU. ``pynvml`` is imported only when a probe runs, so importing this
module is free; tests and ``doctor --machine`` pass a :class:`FakeNvml` instead.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gpuscout._types import GpuInfo, GpuProcess, NvidiaInfo, NvmlState

# Re-exported (``as`` marks it for mypy): callers know the clock-event names from here.
from gpuscout.probe.clock_events import CLOCK_EVENT_NAMES as CLOCK_EVENT_NAMES
from gpuscout.probe.clock_events import THROTTLE_MASK as THROTTLE_MASK
from gpuscout.probe.clock_events import decode_clock_events as decode_clock_events
from gpuscout.probe.clock_events import throttle_reasons as throttle_reasons

NOT_SUPPORTED = "not supported"

# pynvml's error codes, used when a stand-in module lacks the constant.
_DEFAULT_CODES = {
    "NOT_SUPPORTED": 3,
    "NO_PERMISSION": 4,
    "DRIVER_NOT_LOADED": 9,
    "LIBRARY_NOT_FOUND": 12,
    "FUNCTION_NOT_FOUND": 13,
    "GPU_IS_LOST": 15,
    "RESET_REQUIRED": 16,
    "LIB_RM_VERSION_MISMATCH": 18,
    "UNKNOWN": 999,
}
# Renamed in recent drivers; the old name is deprecated but all that older ones have.
_CLOCK_EVENT_FNS = (
    "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
)
# Deprecated ("removed in CUDA 14.0"); the V form takes the same (handle, sensor).
_TEMPERATURE_FNS = ("nvmlDeviceGetTemperature", "nvmlDeviceGetTemperatureV")
_COMPUTE_MODES = {0: "default", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}
# Versioned first: pynvml's unversioned one raises NVMLLibraryMismatchError (no NVML code,
# so no fallback after it) on a driver without the _v3 symbol.
_PROCESS_FNS = tuple(f"nvmlDeviceGetComputeRunningProcesses{v}" for v in ("_v3", "_v2", ""))


def error_code(nvml: Any, name: str) -> int:
    """The numeric value of ``NVML_ERROR_<name>`` in this nvml module (or pynvml's)."""
    return int(getattr(nvml, f"NVML_ERROR_{name}", _DEFAULT_CODES[name]))


class GpuLostError(Exception):
    """A device call said the GPU is gone (fallen off the bus, or needs a reset)."""


@dataclass(frozen=True)
class QueryResult:
    value: Any = None
    reason: str | None = None  # None when the call succeeded
    code: int | None = None  # the NVML error code when it failed with one

    @property
    def ok(self) -> bool:
        return self.reason is None


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    if hasattr(exc, "value"):  # an NVMLError: its text is already the whole story
        return text or f"NVML error {exc.value}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def nvml_query(nvml: Any, fn_names: str | tuple[str, ...], *args: Any) -> QueryResult:
    """Call the first of ``fn_names`` that this NVML has; never raise, except GpuLostError.

    Alternatives are tried in order when a name is missing from the bindings or the
    driver lacks the symbol, so a renamed call (``...ClocksEventReasons``, formerly
    ``...ClocksThrottleReasons``) works on old and new drivers alike.
    """
    names = (fn_names,) if isinstance(fn_names, str) else fn_names
    result = QueryResult(reason=f"{names[0]} is not in these NVML bindings")
    for fn_name in names:
        fn = getattr(nvml, fn_name, None)
        if fn is None:
            continue
        try:
            return QueryResult(value=fn(*args))
        except Exception as exc:
            code = getattr(exc, "value", None)
            code = code if isinstance(code, int) else None
            if code in (error_code(nvml, "GPU_IS_LOST"), error_code(nvml, "RESET_REQUIRED")):
                raise GpuLostError(_error_text(exc)) from exc
            if code == error_code(nvml, "NOT_SUPPORTED"):
                result = QueryResult(reason=NOT_SUPPORTED, code=code)
            else:
                result = QueryResult(reason=_error_text(exc), code=code)
            if code != error_code(nvml, "FUNCTION_NOT_FOUND"):
                return result
    return result


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _one(convert: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    return lambda v: (convert(v),)


def _watts(milliwatts: Any) -> float:
    return int(milliwatts) / 1000.0


def _enabled(mode: Any) -> bool:
    # ECC and MIG calls return [current, pending]; what is active now is what counts.
    current = mode[0] if isinstance(mode, (list, tuple)) else mode
    return int(current) == 1


# One row per NVML call: (GpuInfo fields it fills, function name(s), extra args, convert).
# Args are constant names resolved on the nvml module at probe time, with pynvml's value.
_Spec = tuple[tuple[str, ...], str | tuple[str, ...], tuple[tuple[str, int], ...], Any]
GPU_FIELD_SPECS: tuple[_Spec, ...] = (
    (("name",), "nvmlDeviceGetName", (), _one(_text)),
    (("uuid",), "nvmlDeviceGetUUID", (), _one(_text)),
    (("bus_id",), "nvmlDeviceGetPciInfo", (), lambda p: (_text(p.busId),)),
    (
        ("memory_total_bytes", "memory_used_bytes"),
        "nvmlDeviceGetMemoryInfo",
        (),
        lambda m: (int(m.total), int(m.used)),
    ),
    (
        ("compute_capability",),
        "nvmlDeviceGetCudaComputeCapability",
        (),
        lambda cc: ((int(cc[0]), int(cc[1])),),
    ),
    (("pcie_gen_current",), "nvmlDeviceGetCurrPcieLinkGeneration", (), _one(int)),
    (("pcie_gen_max",), "nvmlDeviceGetMaxPcieLinkGeneration", (), _one(int)),
    (("pcie_gen_gpu_max",), "nvmlDeviceGetGpuMaxPcieLinkGeneration", (), _one(int)),
    (("pcie_width_current",), "nvmlDeviceGetCurrPcieLinkWidth", (), _one(int)),
    (("pcie_width_max",), "nvmlDeviceGetMaxPcieLinkWidth", (), _one(int)),
    (("sm_clock_mhz",), "nvmlDeviceGetClockInfo", (("NVML_CLOCK_SM", 1),), _one(int)),
    (("sm_clock_max_mhz",), "nvmlDeviceGetMaxClockInfo", (("NVML_CLOCK_SM", 1),), _one(int)),
    (("mem_clock_mhz",), "nvmlDeviceGetClockInfo", (("NVML_CLOCK_MEM", 2),), _one(int)),
    (("mem_clock_max_mhz",), "nvmlDeviceGetMaxClockInfo", (("NVML_CLOCK_MEM", 2),), _one(int)),
    (("power_limit_w",), "nvmlDeviceGetEnforcedPowerLimit", (), _one(_watts)),
    (("power_draw_w",), "nvmlDeviceGetPowerUsage", (), _one(_watts)),
    (
        ("temperature_c",),
        _TEMPERATURE_FNS,
        (("NVML_TEMPERATURE_GPU", 0),),
        _one(int),
    ),
    (
        ("temperature_slowdown_c",),
        "nvmlDeviceGetTemperatureThreshold",
        (("NVML_TEMPERATURE_THRESHOLD_SLOWDOWN", 1),),
        _one(int),
    ),
    (
        ("clock_event_reasons",),
        _CLOCK_EVENT_FNS,
        (),
        _one(int),
    ),
    (("ecc_enabled",), "nvmlDeviceGetEccMode", (), _one(_enabled)),
    (
        ("ecc_uncorrected_volatile",),
        "nvmlDeviceGetTotalEccErrors",
        (("NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1), ("NVML_VOLATILE_ECC", 0)),
        _one(int),
    ),
    (
        ("ecc_uncorrected_aggregate",),
        "nvmlDeviceGetTotalEccErrors",
        (("NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1), ("NVML_AGGREGATE_ECC", 1)),
        _one(int),
    ),
    # Pre-Ampere GPUs retire pages; Ampere and later remap rows instead, and each
    # generation answers "not supported" for the other one.
    (("retired_pages_pending",), "nvmlDeviceGetRetiredPagesPendingStatus", (), _one(bool)),
    (
        ("remapped_rows_pending", "remapped_rows_failure"),
        "nvmlDeviceGetRemappedRows",
        (),
        lambda r: (bool(r[2]), bool(r[3])),
    ),
    (("mig_enabled",), "nvmlDeviceGetMigMode", (), _one(_enabled)),
    (
        ("compute_mode",),
        "nvmlDeviceGetComputeMode",
        (),
        _one(lambda m: _COMPUTE_MODES.get(int(m), f"unknown({m})")),
    ),
)
# The order in which the probe reads GpuInfo fields ("processes" comes last).
GPU_FIELD_ORDER: tuple[str, ...] = (
    *(f for spec in GPU_FIELD_SPECS for f in spec[0]),
    "processes",
)


def _process_name(nvml: Any, pid: int) -> str | None:
    # A recorded machine's pids mean nothing here, so a fake answers from its recording.
    if not getattr(nvml, "IS_FAKE", False):
        try:
            psutil = importlib.import_module("psutil")  # untyped; keep mypy out of it
            return str(psutil.Process(pid).name())
        except Exception:  # not visible from this pid namespace, or gone already
            pass
    res = nvml_query(nvml, "nvmlSystemGetProcessName", pid)
    return _text(res.value) if res.ok and res.value else None


def _processes(nvml: Any, handle: Any) -> QueryResult:
    res = nvml_query(nvml, _PROCESS_FNS, handle)
    if not res.ok:
        return res
    procs = []
    for p in res.value or ():
        used = getattr(p, "usedGpuMemory", None)
        pid = int(p.pid)
        procs.append(GpuProcess(pid, None if used is None else int(used), _process_name(nvml, pid)))
    return QueryResult(value=tuple(procs))


def _probe_gpu(nvml: Any, index: int) -> GpuInfo:
    values: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    try:
        handle_res = nvml_query(nvml, "nvmlDeviceGetHandleByIndex", index)
        if not handle_res.ok:
            # An unknown error at handle level is how a GPU that fell off the bus often looks.
            lost = handle_res.code == error_code(nvml, "UNKNOWN")
            return GpuInfo(index, lost=lost, error=handle_res.reason)
        handle = handle_res.value
        for fields, fn_names, const_args, convert in GPU_FIELD_SPECS:
            args = [getattr(nvml, name, default) for name, default in const_args]
            res = nvml_query(nvml, fn_names, handle, *args)
            converted: tuple[Any, ...] | None = None
            if res.ok:
                try:
                    converted = convert(res.value)
                except Exception as exc:  # a driver answer in a shape we did not expect
                    res = QueryResult(reason=f"unexpected value {res.value!r}: {exc}")
            if converted is None:
                unavailable.update(dict.fromkeys(fields, res.reason or "no value"))
            else:
                values.update(zip(fields, converted, strict=True))
        procs = _processes(nvml, handle)
        if procs.ok:
            values["processes"] = procs.value
        else:
            unavailable["processes"] = procs.reason or "no value"
    except GpuLostError as exc:
        return GpuInfo(index, **values, lost=True, error=str(exc), unavailable=unavailable)
    return GpuInfo(index, **values, unavailable=unavailable)


def _init_state(nvml: Any, code: int | None) -> NvmlState:
    by_code = {
        error_code(nvml, "LIBRARY_NOT_FOUND"): NvmlState.LIBRARY_NOT_FOUND,
        error_code(nvml, "DRIVER_NOT_LOADED"): NvmlState.DRIVER_NOT_LOADED,
        error_code(nvml, "LIB_RM_VERSION_MISMATCH"): NvmlState.VERSION_MISMATCH,
        error_code(nvml, "NO_PERMISSION"): NvmlState.NO_PERMISSION,
    }
    return by_code.get(code, NvmlState.ERROR) if code is not None else NvmlState.ERROR


def _import_pynvml() -> Any:
    import pynvml

    return pynvml


def probe_nvidia(nvml: Any | None = None) -> NvidiaInfo:
    """Everything NVML says about the driver and each GPU; never raises.

    ``nvml`` is the ``pynvml`` module (imported here when None) or a stand-in with the
    same API, such as :class:`gpuscout.probe.fake_nvml.FakeNvml`.
    """
    if nvml is None:
        try:
            nvml = _import_pynvml()
        except ImportError as exc:
            return NvidiaInfo(NvmlState.ERROR, error=f"nvidia-ml-py is not installed: {exc}")
    init = nvml_query(nvml, "nvmlInit")
    if not init.ok:
        return NvidiaInfo(_init_state(nvml, init.code), error=init.reason)
    try:
        driver = nvml_query(nvml, "nvmlSystemGetDriverVersion")
        cuda = nvml_query(
            nvml, ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion")
        )
        nvml_version = nvml_query(nvml, "nvmlSystemGetNVMLVersion")
        common: dict[str, Any] = {
            "driver_version": _text(driver.value) if driver.ok else None,
            "cuda_driver_version": int(cuda.value) if cuda.ok else None,
            "nvml_version": _text(nvml_version.value) if nvml_version.ok else None,
        }
        count = nvml_query(nvml, "nvmlDeviceGetCount")
        if not count.ok:
            return NvidiaInfo(NvmlState.ERROR, error=f"cannot count GPUs: {count.reason}", **common)
        gpus = tuple(_probe_gpu(nvml, i) for i in range(int(count.value)))
        return NvidiaInfo(NvmlState.OK, gpus=gpus, **common)
    finally:
        nvml_query(nvml, "nvmlShutdown")


@dataclass(frozen=True)
class GpuSample:
    """One reading of the fast-changing GPU state; ``t_s`` is ``time.perf_counter()``."""

    t_s: float
    sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    power_w: float | None = None
    temperature_c: int | None = None
    clock_event_reasons: int | None = None
    gpu_util_pct: int | None = None  # share of the last interval a kernel was running


class NvmlSession:
    """An initialised NVML with cached handles, for sampling many times cheaply.

    Made by :func:`nvml_session`. When NVML is unusable ``ok`` is False, ``error`` says
    why and :meth:`sample` returns readings that are all None, so a sampling thread
    never has to special-case a machine without NVIDIA GPUs.
    """

    def __init__(self, nvml: Any, ok: bool, error: str | None) -> None:
        self.nvml = nvml
        self.ok = ok
        self.error = error
        self._handles: dict[int, Any] = {}

    def _handle(self, index: int) -> Any:
        if index not in self._handles:
            res = nvml_query(self.nvml, "nvmlDeviceGetHandleByIndex", index)
            self._handles[index] = res.value if res.ok else None
        return self._handles[index]

    def sample(self, index: int) -> GpuSample:
        t = time.perf_counter()
        if not self.ok:
            return GpuSample(t)
        try:
            handle = self._handle(index)
            if handle is None:
                return GpuSample(t)
            nvml = self.nvml

            def read(fn: str | tuple[str, ...], *args: Any) -> Any:
                return nvml_query(nvml, fn, handle, *args).value

            power = read("nvmlDeviceGetPowerUsage")
            util = read("nvmlDeviceGetUtilizationRates")
            return GpuSample(
                t_s=t,
                sm_clock_mhz=read("nvmlDeviceGetClockInfo", getattr(nvml, "NVML_CLOCK_SM", 1)),
                mem_clock_mhz=read("nvmlDeviceGetClockInfo", getattr(nvml, "NVML_CLOCK_MEM", 2)),
                power_w=None if power is None else _watts(power),
                temperature_c=read(_TEMPERATURE_FNS, getattr(nvml, "NVML_TEMPERATURE_GPU", 0)),
                clock_event_reasons=read(_CLOCK_EVENT_FNS),
                gpu_util_pct=getattr(util, "gpu", None),
            )
        except GpuLostError:
            return GpuSample(t)


@contextlib.contextmanager
def nvml_session(nvml: Any | None = None) -> Iterator[NvmlSession]:
    """Keep NVML initialised for the duration of a ``with`` block (one init, one shutdown)."""
    if nvml is None:
        try:
            nvml = _import_pynvml()
        except ImportError as exc:
            yield NvmlSession(None, False, f"nvidia-ml-py is not installed: {exc}")
            return
    init = nvml_query(nvml, "nvmlInit")
    if not init.ok:
        yield NvmlSession(nvml, False, init.reason)
        return
    try:
        yield NvmlSession(nvml, True, None)
    finally:
        nvml_query(nvml, "nvmlShutdown")


def sample_gpu(index: int, nvml: Any | None = None) -> GpuSample:
    """One reading of GPU ``index`` (opens and closes NVML; use a session to repeat)."""
    with nvml_session(nvml) as session:
        return session.sample(index)
