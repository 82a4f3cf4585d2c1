"""Typed, frozen records shared by every layer.

Units live in field names (``_bytes``, ``_mhz``, ``_w``, ``_c``). A field that could not be
read is ``None`` and, where the reason matters to the user, the reason is kept in
``unavailable`` (field name -> why), so reports can say "n/a (not supported)" instead of
guessing. Rendering lives in ``report/`` and ``cli/``, never here.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


class Status(str, enum.Enum):
    """Outcome of one doctor check, ordered from best to worst by ``severity``."""

    PASS = "pass"
    SKIP = "skip"
    WARN = "warn"
    FAIL = "fail"

    @property
    def severity(self) -> int:
        return {"pass": 0, "skip": 0, "warn": 1, "fail": 2}[self.value]


@dataclass(frozen=True)
class Finding:
    """What one check concluded. ``fix`` is a command or step the user can paste."""

    id: str
    status: Status
    summary: str
    detail: str = ""
    fix: str = ""
    subject: str = ""  # e.g. "GPU 0" when the check is per device


@dataclass(frozen=True)
class HostInfo:
    cpu_model: str
    arch: str
    physical_cores: int | None
    logical_cores: int | None
    base_clock_mhz: float | None
    max_clock_mhz: float | None
    isa: tuple[str, ...]  # normalised feature names: avx2, fma, avx512f, avx512_bf16, amx ...
    ram_total_bytes: int | None
    ram_available_bytes: int | None
    os_name: str  # platform.system(): Linux, Windows, Darwin
    os_release: str
    os_pretty: str
    python_version: str
    container: str | None  # "docker", "podman", "kubernetes", "lxc" ... or None
    wsl: bool
    mem_mts: int | None = None  # memory transfer rate, MT/s (DDR4-2933 -> 2933)
    mem_channels: int | None = None
    unavailable: Mapping[str, str] = field(default_factory=dict)

    @property
    def mem_bandwidth_theoretical_gbs(self) -> float | None:
        """MT/s x 8 bytes per transfer x channels, in GB/s (1e9 bytes)."""
        if self.mem_mts is None or self.mem_channels is None:
            return None
        return self.mem_mts * 8 * self.mem_channels / 1000.0


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    used_memory_bytes: int | None
    name: str | None = None


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU as NVML reports it. ``lost`` marks a GPU that vanished mid-probe."""

    index: int
    name: str | None = None
    uuid: str | None = None
    bus_id: str | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None
    pcie_gen_current: int | None = None
    pcie_gen_max: int | None = None  # the lower of what the GPU and the slot allow
    pcie_gen_gpu_max: int | None = None  # what the GPU itself allows
    pcie_width_current: int | None = None
    pcie_width_max: int | None = None
    sm_clock_mhz: int | None = None
    sm_clock_max_mhz: int | None = None
    mem_clock_mhz: int | None = None
    mem_clock_max_mhz: int | None = None
    power_limit_w: float | None = None
    power_draw_w: float | None = None
    temperature_c: int | None = None
    temperature_slowdown_c: int | None = None
    clock_event_reasons: int | None = None  # NVML bitmask
    ecc_enabled: bool | None = None
    ecc_uncorrected_volatile: int | None = None
    ecc_uncorrected_aggregate: int | None = None
    retired_pages_pending: bool | None = None
    remapped_rows_pending: bool | None = None
    remapped_rows_failure: bool | None = None
    mig_enabled: bool | None = None
    compute_mode: str | None = None  # "default", "exclusive_process", "prohibited"
    processes: tuple[GpuProcess, ...] = ()
    catalog_id: str | None = None  # filled by the probe from the GPU catalog
    lost: bool = False
    error: str | None = None
    unavailable: Mapping[str, str] = field(default_factory=dict)


class NvmlState(str, enum.Enum):
    OK = "ok"
    LIBRARY_NOT_FOUND = "library_not_found"  # no libnvidia-ml: no driver installed
    DRIVER_NOT_LOADED = "driver_not_loaded"  # library present, kernel module not loaded
    VERSION_MISMATCH = "version_mismatch"  # user-space library and kernel module differ
    NO_PERMISSION = "no_permission"
    ERROR = "error"  # any other initialisation failure


@dataclass(frozen=True)
class NvidiaInfo:
    state: NvmlState
    error: str | None = None
    driver_version: str | None = None
    cuda_driver_version: int | None = None  # e.g. 13000 for CUDA 13.0 (NVML encoding)
    nvml_version: str | None = None
    gpus: tuple[GpuInfo, ...] = ()

    @property
    def cuda_driver_version_str(self) -> str | None:
        v = self.cuda_driver_version
        return None if v is None else f"{v // 1000}.{(v % 1000) // 10}"


@dataclass(frozen=True)
class FrameworkInfo:
    """What a framework reports about itself, probed in a subprocess.

    ``installed`` False means the import failed with ModuleNotFoundError; any other
    failure (crash, hang, broken install) is ``error`` with ``installed`` True.
    """

    name: str  # "torch", "tensorflow", "jax"
    installed: bool
    version: str | None = None
    error: str | None = None
    timed_out: bool = False
    cuda_build: str | None = None  # CUDA version the build targets, e.g. "13.0"
    hip_build: str | None = None
    cudnn_version: str | None = None
    arch_list: tuple[str, ...] = ()  # e.g. ("sm_75", "sm_80", "sm_90", "compute_90")
    gpu_available: bool | None = None
    device_count: int | None = None
    device_names: tuple[str, ...] = ()
    device_capabilities: tuple[tuple[int, int], ...] = ()
    mps_built: bool | None = None
    mps_available: bool | None = None
    kernel_ok: bool | None = None  # a tiny kernel ran and gave the right answer
    kernel_error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvVars:
    """The environment variables that change what a framework sees."""

    cuda_visible_devices: str | None = None
    cuda_device_order: str | None = None
    ld_library_path: str | None = None
    hsa_override_gfx_version: str | None = None


@dataclass(frozen=True)
class SystemInfo:
    host: HostInfo
    nvidia: NvidiaInfo
    frameworks: tuple[FrameworkInfo, ...]
    env: EnvVars
    gpuscout_version: str

    def framework(self, name: str) -> FrameworkInfo | None:
        return next((f for f in self.frameworks if f.name == name), None)


@dataclass(frozen=True)
class Stats:
    """Robust summary of repeated timings, in seconds."""

    n: int
    median_s: float
    mean_s: float
    min_s: float
    max_s: float
    p10_s: float
    p90_s: float
    iqr_s: float
    cv: float  # coefficient of variation (stdev / mean)
    noisy: bool


@dataclass(frozen=True)
class Measurement:
    """What ``timing.measure`` returns: raw samples kept next to their summary."""

    stats: Stats
    samples_s: tuple[float, ...]
    cold_s: float  # the first call, reported on its own
    warmup_iters: int
    clock: str  # "cuda_events", "perf_counter", "fake"


@dataclass(frozen=True)
class Result:
    """One figure of one benchmark on one device, as stored."""

    name: str  # e.g. "matmul/bf16/8192"
    device: str  # "cpu", "cuda:0"
    figure: float | None
    unit: str  # "TFLOPS", "GB/s", "launches/s", "s"
    status: str = "ok"  # "ok", "failed", "oom", "timeout", "skipped"
    stats: Stats | None = None
    peak_fraction: float | None = None  # figure / datasheet (or measured) ceiling
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


CeilingFigure = Literal["tflops", "bandwidth_gbs", "pcie_gbs", "launch_s"]


@dataclass(frozen=True, kw_only=True)
class Ceiling:
    """What one device can do: the denominators of "% of peak", and the rates the
    predictor and the profiler divide by. Measured (``bench micro``) or from a datasheet.

    ``tflops`` maps a precision ("fp32", "bf16", "int8" ...) to the dense peak in TFLOPS
    (TOPS for int8); a precision not in it is unknown. ``bandwidth_gbs`` is memory
    bandwidth and ``pcie_gbs`` the host link, both in GB/s (1e9 bytes per second);
    ``launch_s`` is the host's cost of one launched op (a kernel launch on a GPU, an
    op's dispatch on a CPU). ``None`` where unknown.

    ``source`` says where the figures come from, for the report. Where they come from
    different places (measured peaks, the datasheet's bandwidth), ``sources`` holds the
    source of each figure that differs, by field name; ``source_of`` reads either.
    Keyword-only: four optional figures in a row are too easy to pass in the wrong order.
    """

    tflops: Mapping[str, float] = field(default_factory=dict)
    bandwidth_gbs: float | None = None
    pcie_gbs: float | None = None
    launch_s: float | None = None
    source: str = ""
    sources: Mapping[CeilingFigure, str] = field(default_factory=dict)

    def known(self, figure: CeilingFigure) -> bool:
        """Whether ``figure`` has a value (``tflops``: at least one precision)."""
        return bool(self.tflops) if figure == "tflops" else getattr(self, figure) is not None

    def source_of(self, figure: CeilingFigure) -> str:
        """Where ``figure`` comes from; "" when it is unknown."""
        if not self.known(figure):
            return ""
        return self.sources.get(figure) or self.source

    def merged(self, fallback: Ceiling) -> Ceiling:
        """This ceiling, with ``fallback``'s figures where this one has none (per
        precision for ``tflops``). Each figure keeps its source; ``source`` says
        "<this>; others <fallback>" where both gave figures."""
        picked = {name: self if self.known(name) else fallback for name in _RATES}
        sources: dict[CeilingFigure, str] = {n: c.source_of(n) for n, c in picked.items()}
        sources["tflops"] = self._tflops_source(fallback)
        source = self._merged_source(fallback, picked)
        return Ceiling(
            tflops=dict(fallback.tflops) | dict(self.tflops),
            bandwidth_gbs=picked["bandwidth_gbs"].bandwidth_gbs,
            pcie_gbs=picked["pcie_gbs"].pcie_gbs,
            launch_s=picked["launch_s"].launch_s,
            source=source,
            sources={k: v for k, v in sources.items() if v and v != source},
        )

    def _tflops_source(self, fallback: Ceiling) -> str:
        if not self.tflops:
            return fallback.source_of("tflops")
        mine = self.source_of("tflops")
        if set(fallback.tflops) - set(self.tflops):
            return f"{mine}; others {fallback.source_of('tflops')}"
        return mine

    def _merged_source(self, fallback: Ceiling, picked: Mapping[CeilingFigure, Ceiling]) -> str:
        """The merged ceiling's one-line source: whose figures it holds."""
        gave = [c for name, c in picked.items() if c.known(name)]
        gave += [self] if self.tflops else []
        gave += [fallback] if set(fallback.tflops) - set(self.tflops) else []
        mine, theirs = any(c is self for c in gave), any(c is fallback for c in gave)
        if mine and theirs:
            return "; others ".join(x for x in (self.source, fallback.source) if x)
        return fallback.source if theirs else self.source or fallback.source


_RATES: tuple[CeilingFigure, ...] = ("bandwidth_gbs", "pcie_gbs", "launch_s")


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str  # "doctor", "bench-micro", "workload", "run" ...
    started_at: str  # ISO 8601 UTC
    finished_at: str | None
    status: str  # "running", "ok", "failed", "interrupted"
    fingerprint: Mapping[str, Any]
    summary: Mapping[str, Any] = field(default_factory=dict)


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, enums, tuples and mappings to plain JSON types (for --json and the store)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # strict JSON has no NaN or Infinity
    return obj
