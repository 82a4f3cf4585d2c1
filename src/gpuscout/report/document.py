"""What a report says, as plain frozen records: computed once, rendered three ways.

``gather.build_report`` fills a ``Report``; ``html``, ``markdown`` and the JSON output
only render it. A section whose computation failed holds an ``Unavailable`` with the
reason instead of its data, so one broken section never takes the report down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from gpuscout._types import Finding, RunRecord

if TYPE_CHECKING:  # predict is imported lazily at run time (it may be absent or broken)
    from gpuscout.predict import Advice, Prediction


@dataclass(frozen=True)
class Unavailable:
    """A section that could not be computed; ``reason`` is one line for the reader."""

    reason: str


T = TypeVar("T")


def safely(fn: Callable[[], T]) -> T | Unavailable:
    """Run one section's computation; any failure becomes the section's one-line reason."""
    try:
        return fn()
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return Unavailable(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


@dataclass(frozen=True)
class CeilingRow:
    """One measured ceiling beside the figure it is judged against."""

    device: str  # "cpu", "cuda:0"
    device_name: str
    what: str  # "matmul bf16", "memory triad", "transfer h2d pinned", "launch dispatch"
    measured: float
    unit: str
    peak: float | None
    peak_source: str  # "catalog:h100-sxm5-80gb", "CPU formula: ..."
    fraction: float | None
    noisy: bool = False


@dataclass(frozen=True)
class WorkloadRow:
    """One workload figure on one device with one implementation."""

    workload: str  # its name (gpuscout.workloads.registry.names())
    variant: str | None  # "decode-b1", "seq128" ...
    device: str
    device_name: str
    impl: str  # "reference", "tuned", or a third-party program ("keras" ...)
    figure: float | None
    unit: str
    status: str
    error: str | None
    step_time_s: float | None
    achieved_tflops: float | None
    fraction: float | None  # of the ceiling the workload was measured against
    dtype: str | None = None
    speedup_vs_cpu: float | None = None  # figure / the CPU's best figure, same variant
    above_ceiling: bool = False  # faster than its ceiling: that ceiling under-measured


@dataclass(frozen=True)
class Roof:
    """One device's roof: flat at ``peak_tflops``, sloped at ``bandwidth_gbs``."""

    device: str
    device_name: str
    precision: str
    peak_tflops: float
    bandwidth_gbs: float
    source: str  # "measured (bench micro)", "catalog datasheet"

    @property
    def ridge(self) -> float:
        """FLOP per byte where the slope meets the flat: left of it, memory bounds a workload."""
        return self.peak_tflops * 1000 / self.bandwidth_gbs


@dataclass(frozen=True)
class RooflinePoint:
    label: str  # the workload and implementation ("<workload> tuned")
    device: str
    precision: str
    intensity: float  # FLOP per byte moved (flops_per_step / bytes_per_step)
    achieved_tflops: float


@dataclass(frozen=True)
class Roofline:
    roofs: tuple[Roof, ...]
    points: tuple[RooflinePoint, ...]
    missing: tuple[str, ...] = ()  # workload results without bytes_per_step


@dataclass(frozen=True)
class FitCell:
    gpu_id: str
    fits: bool
    max_batch_size: int | None


@dataclass(frozen=True)
class FitRow:
    label: str  # "<workload> (measured)", "llama-3-8b inference"
    model_id: str
    mode: str  # "train", "infer"
    batch_size: int
    seq_len: int | None
    dtype: str
    need_bytes: int  # on one GPU
    low_bytes: int
    high_bytes: int
    dominant: str
    cells: tuple[FitCell, ...]


@dataclass(frozen=True)
class FitTable:
    gpus: tuple[tuple[str, str, int], ...]  # (id, name, memory bytes), the table's columns
    rows: tuple[FitRow, ...]


@dataclass(frozen=True)
class ProfileRow:
    """One profiled script (`gpuscout profile`): what bounds it and what would help."""

    script: str
    command: str
    run_id: int
    device: str
    device_name: str
    verdict: str  # "input-bound", "host-bound", "compute-bound", "memory-bound"
    words: str
    figure: float | None
    unit: str
    step_s: float
    achieved_tflops: float | None
    fraction: float | None  # of the device's ceiling in the precision it ran in
    parts: tuple[tuple[str, float], ...]  # where a step goes: (what, seconds)
    fixes: tuple[tuple[str, str, float], ...]  # (change, why, expected speed-up)
    warnings: tuple[str, ...]
    projections: tuple[tuple[str, float, float | None, str], ...]  # (GPU, step, x, bound)
    disturbed: bool = False


@dataclass(frozen=True)
class Report:
    title: str
    generated_at: str  # ISO 8601 UTC
    gpuscout_version: str
    runs: tuple[RunRecord, ...]
    summary: tuple[str, ...]  # the answer, a few sentences, shown first
    notes: tuple[str, ...]  # caveats about the data itself (mixed hosts, failed results)
    machine: tuple[tuple[str, str], ...]  # (label, value) from the newest fingerprint
    findings: tuple[Finding, ...]
    ceilings: tuple[CeilingRow, ...] | Unavailable
    workloads: tuple[WorkloadRow, ...] | Unavailable
    roofline: Roofline | Unavailable
    prediction: Prediction | Unavailable
    fit: FitTable | Unavailable
    advice: Advice | Unavailable
    profiles: tuple[ProfileRow, ...] | Unavailable = ()
