"""A pure-Python stand-in for the ``pynvml`` module, built from a recorded machine.

It answers the calls the probe makes, with the same names, error class and error codes,
so ``probe_nvidia(nvml=FakeNvml(...))`` exercises exactly the code a real GPU does. It
lives in the package, not only in tests, because ``gpuscout doctor --machine FILE``
replays recorded machines with it.

The recorded ``nvml`` section looks like::

    {"init_error": null, "driver_version": "580.95.05", "cuda_driver_version": 13000,
     "nvml_version": "13.580.95.05", "errors": {},
     "devices": [{"name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": ..., ...,
                  "errors": {"retired_pages_pending": "NOT_SUPPORTED"},
                  "lost_after_calls": null, "lost_at": null, "lost_error": null,
                  "handle_error": null}]}

Device keys are ``GpuInfo`` field names (units as there: watts, MHz, bytes). A key that
is absent answers "not supported", as a consumer GPU does for ECC. An error spec is a
code name ("NOT_SUPPORTED", "GPU_IS_LOST"), a number, or ``{"code": ..., "message": ...}``.
``lost_after_calls`` (K device calls succeed, then every call says the GPU is lost) and
``lost_at`` (a field key: lost from the call behind it on) make a GPU fall off the bus
mid-probe, with ``lost_error`` (default "GPU_IS_LOST"); ``handle_error`` fails the handle.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

# The same values as pynvml's NVML_ERROR_* constants.
ERROR_CODES: dict[str, int] = {
    "UNINITIALIZED": 1,
    "INVALID_ARGUMENT": 2,
    "NOT_SUPPORTED": 3,
    "NO_PERMISSION": 4,
    "ALREADY_INITIALIZED": 5,
    "NOT_FOUND": 6,
    "INSUFFICIENT_SIZE": 7,
    "INSUFFICIENT_POWER": 8,
    "DRIVER_NOT_LOADED": 9,
    "TIMEOUT": 10,
    "IRQ_ISSUE": 11,
    "LIBRARY_NOT_FOUND": 12,
    "FUNCTION_NOT_FOUND": 13,
    "CORRUPTED_INFOROM": 14,
    "GPU_IS_LOST": 15,
    "RESET_REQUIRED": 16,
    "OPERATING_SYSTEM": 17,
    "LIB_RM_VERSION_MISMATCH": 18,
    "IN_USE": 19,
    "MEMORY": 20,
    "NO_DATA": 21,
    "UNKNOWN": 999,
}
# What pynvml's NVMLError prints for each code.
ERROR_STRINGS: dict[int, str] = {
    1: "Uninitialized",
    2: "Invalid Argument",
    3: "Not Supported",
    4: "Insufficient Permissions",
    5: "Already Initialized",
    6: "Not Found",
    7: "Insufficient Size",
    8: "Insufficient External Power",
    9: "Driver Not Loaded",
    10: "Timeout",
    11: "Interrupt Request Issue",
    12: "NVML Shared Library Not Found",
    13: "Function Not Found",
    14: "Corrupted infoROM",
    15: "GPU is lost",
    16: "GPU requires restart",
    17: "The operating system has blocked the request.",
    18: "RM has detected an NVML/RM version mismatch.",
    20: "Insufficient Memory",
    999: "Unknown Error",
}
_COMPUTE_MODES = {"default": 0, "exclusive_thread": 1, "prohibited": 2, "exclusive_process": 3}


class FakeNVMLError(Exception):
    """Like ``pynvml.NVMLError``: ``value`` is the NVML error code."""

    def __init__(self, value: int, message: str | None = None) -> None:
        super().__init__(value)
        self.value = value
        self.message = message

    def __str__(self) -> str:
        return self.message or ERROR_STRINGS.get(self.value, f"NVML Error with code {self.value}")


def make_error(spec: Any) -> FakeNVMLError:
    """An error from a spec: a code name, a number, or {"code": ..., "message": ...}."""
    message = None
    if isinstance(spec, Mapping):
        message = spec.get("message")
        spec = spec.get("code", "UNKNOWN")
    if isinstance(spec, str):
        name = spec.upper().removeprefix("NVML_ERROR_")
        if name not in ERROR_CODES:
            raise ValueError(f"unknown NVML error name {spec!r}")
        return FakeNVMLError(ERROR_CODES[name], message)
    return FakeNVMLError(int(spec), message)


def error_spec(code: int | None, text: str | None) -> Any:
    """The inverse of :func:`make_error`: the tersest spec that reproduces ``str(error)``."""
    names = {v: k for k, v in ERROR_CODES.items()}
    if code is not None and code in names and (text is None or text == ERROR_STRINGS.get(code)):
        return names[code]
    for c, s in ERROR_STRINGS.items():
        if text == s:
            return names[c]
    if text == "not supported":  # the probe's own wording for NOT_SUPPORTED
        return "NOT_SUPPORTED"
    return {"code": names.get(code, "UNKNOWN") if code is not None else "UNKNOWN", "message": text}


class _Handle:
    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<FakeNvml handle {self.index}>"


class FakeNvml:
    """Stands in for the ``pynvml`` module. Counters reset at each ``nvmlInit``."""

    IS_FAKE = True  # tells the probe that pids are from another machine
    NVMLError = FakeNVMLError
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0
    NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_VOLATILE_ECC = 0
    NVML_AGGREGATE_ECC = 1

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        # A deep copy: injecting errors must never change a caller's (or a fixture's) dict.
        self.data: dict[str, Any] = copy.deepcopy(dict(data or {}))
        self.data.setdefault("devices", [])
        self.data.setdefault("errors", {})
        for dev in self.data["devices"]:
            if not isinstance(dev, dict):
                raise ValueError(f"a recorded device must be an object, got {dev!r}")
            dev.setdefault("errors", {})
        self._validate()
        self.init_count = 0
        self.shutdown_count = 0
        self._refcount = 0
        self._calls: list[int] = []
        self._lost: list[bool] = []

    def __getattr__(self, name: str) -> Any:
        # pynvml exposes every NVML_ERROR_* constant; so does the fake.
        if name.startswith("NVML_ERROR_") and name[11:] in ERROR_CODES:
            return ERROR_CODES[name[11:]]
        raise AttributeError(name)

    def _validate(self) -> None:
        """Reject bad error specs now, so a bad machine file fails when it is loaded."""
        specs = [self.data.get("init_error"), *self.data["errors"].values()]
        for dev in self.data["devices"]:
            specs += [dev.get("handle_error"), dev.get("lost_error"), *dev["errors"].values()]
        for spec in specs:
            if spec is not None:
                make_error(spec)

    # -- injecting failures ---------------------------------------------------------
    def fail_init(self, spec: Any) -> FakeNvml:
        self.data["init_error"] = spec
        return self

    def fail(self, device: int, field: str, spec: Any = "NOT_SUPPORTED") -> FakeNvml:
        """Device ``device`` raises ``spec`` whenever the call behind ``field`` is made."""
        self.data["devices"][device]["errors"][field] = spec
        return self

    def lose(self, device: int, after_calls: int | None = None, at: str | None = None) -> FakeNvml:
        """Device ``device`` falls off the bus after ``after_calls`` calls or at ``at``."""
        dev = self.data["devices"][device]
        dev["lost_after_calls"], dev["lost_at"] = after_calls, at
        return self

    # -- plumbing -------------------------------------------------------------------
    def _check_init(self) -> None:
        if self._refcount <= 0:
            raise FakeNVMLError(ERROR_CODES["UNINITIALIZED"])

    def _system(self, key: str) -> Any:
        self._check_init()
        if key in self.data["errors"]:
            raise make_error(self.data["errors"][key])
        if self.data.get(key) is None:
            raise FakeNVMLError(ERROR_CODES["NOT_SUPPORTED"])
        return self.data[key]

    def _device(self, handle: Any, *keys: str, required: bool = True) -> dict[str, Any]:
        self._check_init()
        if not isinstance(handle, _Handle) or not 0 <= handle.index < len(self._calls):
            raise FakeNVMLError(ERROR_CODES["INVALID_ARGUMENT"])
        i = handle.index
        dev: dict[str, Any] = self.data["devices"][i]
        self._calls[i] += 1
        after = dev.get("lost_after_calls")
        if (after is not None and self._calls[i] > after) or dev.get("lost_at") in keys:
            self._lost[i] = True
        if self._lost[i]:
            raise make_error(dev.get("lost_error") or "GPU_IS_LOST")
        for key in keys:
            if key in dev["errors"]:
                raise make_error(dev["errors"][key])
        if required and any(dev.get(k) is None for k in keys):
            raise FakeNVMLError(ERROR_CODES["NOT_SUPPORTED"])
        return dev

    # -- the pynvml API -------------------------------------------------------------
    def nvmlInit(self) -> None:
        if self.data.get("init_error") is not None:
            raise make_error(self.data["init_error"])
        if self._refcount == 0:
            n = len(self.data["devices"])
            self._calls, self._lost = [0] * n, [False] * n
        self._refcount += 1
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self._check_init()
        self._refcount -= 1
        self.shutdown_count += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return str(self._system("driver_version"))

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return int(self._system("cuda_driver_version"))

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return int(self._system("cuda_driver_version"))

    def nvmlSystemGetNVMLVersion(self) -> str:
        return str(self._system("nvml_version"))

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        self._check_init()
        for dev in self.data["devices"]:
            for proc in dev.get("processes") or ():
                if proc.get("pid") == pid and proc.get("name"):
                    return str(proc["name"])
        raise FakeNVMLError(ERROR_CODES["NOT_FOUND"])

    def nvmlDeviceGetCount(self) -> int:
        self._check_init()
        if "device_count" in self.data["errors"]:
            raise make_error(self.data["errors"]["device_count"])
        return len(self.data["devices"])

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._check_init()
        if not 0 <= index < len(self.data["devices"]):
            raise FakeNVMLError(ERROR_CODES["INVALID_ARGUMENT"])
        if self._lost[index]:
            raise make_error(self.data["devices"][index].get("lost_error") or "GPU_IS_LOST")
        spec = self.data["devices"][index].get("handle_error")
        if spec is not None:
            raise make_error(spec)
        return _Handle(index)

    def nvmlDeviceGetName(self, h: Any) -> str:
        return str(self._device(h, "name")["name"])

    def nvmlDeviceGetUUID(self, h: Any) -> str:
        return str(self._device(h, "uuid")["uuid"])

    def nvmlDeviceGetPciInfo(self, h: Any) -> SimpleNamespace:
        bus_id = self._device(h, "bus_id")["bus_id"]
        return SimpleNamespace(busId=bus_id.encode(), busIdLegacy=bus_id.encode())

    def nvmlDeviceGetMemoryInfo(self, h: Any) -> SimpleNamespace:
        d = self._device(h, "memory_total_bytes", "memory_used_bytes")
        total, used = d["memory_total_bytes"], d["memory_used_bytes"]
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetCudaComputeCapability(self, h: Any) -> tuple[int, int]:
        cc = self._device(h, "compute_capability")["compute_capability"]
        return int(cc[0]), int(cc[1])

    def _int(self, h: Any, key: str) -> int:
        return int(self._device(h, key)[key])

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: Any) -> int:
        return self._int(h, "pcie_gen_current")

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: Any) -> int:
        return self._int(h, "pcie_gen_max")

    def nvmlDeviceGetGpuMaxPcieLinkGeneration(self, h: Any) -> int:
        return self._int(h, "pcie_gen_gpu_max")

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: Any) -> int:
        return self._int(h, "pcie_width_current")

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: Any) -> int:
        return self._int(h, "pcie_width_max")

    def _clock_key(self, clock: int, suffix: str) -> str:
        names = {self.NVML_CLOCK_SM: "sm_clock", self.NVML_CLOCK_MEM: "mem_clock"}
        if clock not in names:
            raise FakeNVMLError(ERROR_CODES["INVALID_ARGUMENT"])
        return names[clock] + suffix

    def nvmlDeviceGetClockInfo(self, h: Any, clock: int) -> int:
        return self._int(h, self._clock_key(clock, "_mhz"))

    def nvmlDeviceGetMaxClockInfo(self, h: Any, clock: int) -> int:
        return self._int(h, self._clock_key(clock, "_max_mhz"))

    def nvmlDeviceGetUtilizationRates(self, h: Any) -> SimpleNamespace:
        dev = self._device(h, "utilization_gpu_pct")
        return SimpleNamespace(
            gpu=int(dev["utilization_gpu_pct"]), memory=int(dev.get("utilization_memory_pct") or 0)
        )

    def nvmlDeviceGetEnforcedPowerLimit(self, h: Any) -> int:
        return round(float(self._device(h, "power_limit_w")["power_limit_w"]) * 1000)

    def nvmlDeviceGetPowerUsage(self, h: Any) -> int:
        return round(float(self._device(h, "power_draw_w")["power_draw_w"]) * 1000)

    def nvmlDeviceGetTemperature(self, h: Any, sensor: int) -> int:
        if sensor != self.NVML_TEMPERATURE_GPU:
            raise FakeNVMLError(ERROR_CODES["NOT_SUPPORTED"])
        return self._int(h, "temperature_c")

    def nvmlDeviceGetTemperatureThreshold(self, h: Any, threshold: int) -> int:
        if threshold != self.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN:
            raise FakeNVMLError(ERROR_CODES["NOT_SUPPORTED"])
        return self._int(h, "temperature_slowdown_c")

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: Any) -> int:
        return self._int(h, "clock_event_reasons")

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: Any) -> int:
        return self._int(h, "clock_event_reasons")

    def nvmlDeviceGetEccMode(self, h: Any) -> list[int]:
        on = int(bool(self._device(h, "ecc_enabled")["ecc_enabled"]))
        return [on, on]

    def nvmlDeviceGetTotalEccErrors(self, h: Any, error_type: int, counter: int) -> int:
        if error_type != self.NVML_MEMORY_ERROR_TYPE_UNCORRECTED:
            return 0  # corrected errors are not recorded; they need no action
        key = {self.NVML_VOLATILE_ECC: "ecc_uncorrected_volatile"}.get(
            counter, "ecc_uncorrected_aggregate"
        )
        return self._int(h, key)

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h: Any) -> int:
        return int(bool(self._device(h, "retired_pages_pending")["retired_pages_pending"]))

    def nvmlDeviceGetRemappedRows(self, h: Any) -> tuple[int, int, int, int]:
        d = self._device(h, "remapped_rows_pending", "remapped_rows_failure")
        return (
            int(d.get("remapped_rows_correctable", 0)),
            int(d.get("remapped_rows_uncorrectable", 0)),
            int(bool(d["remapped_rows_pending"])),
            int(bool(d["remapped_rows_failure"])),
        )

    def nvmlDeviceGetMigMode(self, h: Any) -> list[int]:
        on = int(bool(self._device(h, "mig_enabled")["mig_enabled"]))
        return [on, on]

    def nvmlDeviceGetComputeMode(self, h: Any) -> int:
        mode = self._device(h, "compute_mode")["compute_mode"]
        return _COMPUTE_MODES[mode] if isinstance(mode, str) else int(mode)

    def nvmlDeviceGetComputeRunningProcesses(self, h: Any) -> list[SimpleNamespace]:
        # Every GPU can list its processes, so an absent key means "none", not "unsupported".
        procs = self._device(h, "processes", required=False).get("processes") or []
        return [
            SimpleNamespace(
                pid=int(p["pid"]),
                usedGpuMemory=p.get("used_memory_bytes"),
                gpuInstanceId=0xFFFFFFFF,
                computeInstanceId=0xFFFFFFFF,
            )
            for p in procs
        ]
