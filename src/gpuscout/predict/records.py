"""The predictor's records: frozen, typed, units in the names. Rendering is in report/ and cli/.

``Projection`` and ``Prediction`` say how fast measured work would run on other GPUs;
``CostRow`` and ``Advice`` say what each way of getting that speed costs. ``Calibration``
keeps what was learnt from one measurement, so a reader (and the validation script) can
see the split behind every projection.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Calibration:
    """One measured step, split into the parts the model projects separately.

    Efficiencies are fractions of the *achievable* ceilings (see ``defaults``):
    ``compute_s = flops / (peak * eff_compute)``, ``memory_s = bytes / (bw * eff_memory)``.
    """

    workload: str
    result_name: str
    device: str  # "cpu", "cuda:0"
    device_name: str
    gpu_id: str | None  # catalog id of the measured GPU; None for the CPU or an unknown GPU
    calibrated: bool  # False: the defaults, not this measurement, set the efficiencies
    step_s: float  # measured
    eff_compute: float
    eff_memory: float
    other_tflops: float  # rate of the part no ceiling shortens (0: none)
    kernel_s: float  # per-kernel device time that no ceiling shortens
    host_op_s: float  # host time per launched op
    compute_s: float  # the measured step's parts (their max/sum is step_s)
    memory_s: float
    other_s: float
    kernels_s: float
    host_s: float
    precision: str
    ceiling_source: str


@dataclass(frozen=True)
class Projection:
    workload: str  # its name (gpuscout.workloads.registry.names())
    result_name: str  # the measured Result's name it projects
    gpu_id: str
    gpu_name: str
    segment: str  # catalog GPU ("cpu" segment never appears here)
    gpus: int  # 1, or N for a multi-GPU box
    precision: str
    step_s: float
    step_low_s: float
    step_high_s: float
    throughput: float  # per box: gpus x samples per step / step_s
    throughput_unit: str  # samples/s, images/s, tokens/s ...
    bound: str  # "compute" | "memory" | "mixed" (neither peak nor bandwidth) | "host"
    fits: bool | None
    fit_note: str
    speedup: float | None  # vs the measured device
    basis: str  # what the efficiencies come from
    assumptions: tuple[str, ...]
    comm_s: float = 0.0  # exposed gradient communication per step (multi-GPU boxes)
    zero: int = 0  # 0: plain data parallel (DDP); 3: fully sharded (FSDP / ZeRO-3)


@dataclass(frozen=True)
class Prediction:
    run_id: int | None
    measured_on: str  # device name the profiles were measured on
    calibrated: bool  # False: efficiencies are defaults (CPU-only run), and it says so
    projections: tuple[Projection, ...]
    assumptions: tuple[str, ...]
    calibrations: tuple[Calibration, ...] = ()


@dataclass(frozen=True)
class CostRow:
    """One option in the verdict."""

    option: str  # "cpu", "consumer", "workstation", "datacenter", "cloud"
    gpu_id: str | None
    gpu_name: str
    gpus: int
    time_per_run_s: float | None
    fits: bool | None
    buy_usd: float | None
    electricity_usd_per_run: float | None
    cloud_usd_per_hour: float | None
    cloud_price_date: str | None
    cloud_provider: str | None
    cloud_usd_per_run: float | None
    break_even_hours: float | None  # hours of use after which buying beats renting
    note: str
    break_even_weeks: float | None = None  # the same, at the stated hours per week
    time_low_s: float | None = None
    time_high_s: float | None = None


@dataclass(frozen=True)
class Advice:
    verdict: str  # one paragraph, the answer
    recommended: CostRow | None
    rows: tuple[CostRow, ...]
    pro_vs_consumer: tuple[tuple[str, str, str], ...]  # (aspect, consumer pick, pro pick)
    assumptions: tuple[str, ...]
    prediction: Prediction | None
    workload: str = ""  # what was advised on, in words
    samples_per_run: float | None = None
    sample_unit: str = ""
