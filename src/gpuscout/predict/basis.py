"""What the predictor reads from stored Results: measured steps and local ceilings.

A workload Result (``extra["workload"]`` set; name ``workload/impl[/variant]``, see
workloads/suite.py) becomes a ``Basis``: its step time and what one step must do
(FLOPs, bytes, kernel launches), counted from the model by the workload itself. The
micro-benchmark Results of the same machine (``matmul/<precision>/<n>``,
``memory/<kind>``, ``launch/...``) become a ``Ceiling`` per device.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpuscout._types import Ceiling, Result
from gpuscout.predict import facts

IMPLS = ("reference", "tuned")  # what is projected: not a comparison program's figure


@dataclass(frozen=True)
class Basis:
    """One measured workload figure, reduced to what the model needs."""

    result_name: str
    workload: str
    impl: str
    variant: str | None
    device: str
    device_name: str
    step_s: float
    samples_per_step: float
    unit: str
    flops: float
    nbytes: float
    host_ops: float
    precision: str  # the precision its matmuls ran in on the measured device
    dtype: str
    family: str  # key of defaults.PRIORS
    batch_size: int | None = None
    seq_len: int | None = None
    model: str | None = None
    params: int | None = None
    memory_total_bytes: int | None = None
    graphs: bool = False  # replayed CUDA graphs on the measured device
    compiled: bool = False
    checkpointing: bool = False  # activation checkpointing (unmeasured models only)
    image_size: int | None = None  # the side of the images it was measured on
    spread: tuple[float, float] = (1.0, 1.0)  # p10 / median, p90 / median of the step
    notes: tuple[str, ...] = ()
    fit_request: Any = None  # unmeasured models: the gpuscout.fit.FitRequest asked about
    # What the same step moves in bf16 (recorded by fp32 runs of bf16-on-GPU workloads)
    nbytes_bf16: float | None = None

    @property
    def on_gpu(self) -> bool:
        return self.device != "cpu"

    @property
    def training(self) -> bool:
        return self.family.startswith("train")


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


def _positive(value: Any) -> float | None:
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _context(e: Mapping[str, Any]) -> int | None:
    """A generation's longest context: the prompt and the generated tokens."""
    prompt = _int(e.get("prompt_len"))
    return None if prompt is None else prompt + (_int(e.get("new_tokens")) or 0)


def _family(workload: str, variant: str | None) -> str:
    return facts.prior_kind(workload, variant)


def _step(r: Result) -> tuple[float, float] | None:
    """(step seconds, samples per step) of a workload figure."""
    e = r.extra
    batch = _positive(e.get("batch_size")) or 1.0
    if (t := _positive(e.get("step_time_s"))) is not None:
        return t, batch
    if (ms := _positive(e.get("ms_per_token"))) is not None:
        return ms / 1e3, batch
    if e.get("variant") == "prefill" and (t := _positive(e.get("ttft_s"))) is not None:
        return t, _positive(e.get("prompt_len")) or 1.0
    if r.figure and r.unit != "s" and r.figure > 0:
        return batch / r.figure, batch  # samples/s over a whole training run
    return None


def _spread(r: Result, median: float) -> tuple[float, float]:
    st = r.stats
    if st is None or st.median_s <= 0:
        return (1.0, 1.0)
    return (min(1.0, st.p10_s / st.median_s), max(1.0, st.p90_s / st.median_s))


def to_basis(r: Result) -> Basis | None:
    """The Basis of a workload figure; None for what cannot be projected (failed runs,
    the ttft duplicate of prefill, comparison programs, figures without FLOPs)."""
    e = r.extra
    wl = e.get("workload")
    variant = e.get("variant")
    variant = variant if isinstance(variant, str) else None
    if not _projectable(r) or not isinstance(wl, str):
        return None
    step = _step(r)
    flops = _positive(e.get("flops_per_step"))
    if step is None or flops is None:
        return None
    nbytes, ops, notes = _traffic(e)
    dtype = str(e.get("dtype") or "fp32")
    fam = _family(wl, variant)
    return Basis(
        result_name=r.name,
        workload=wl,
        impl=str(e.get("impl")),
        variant=variant,
        device=r.device,
        device_name=str(e.get("device_name") or r.device),
        step_s=step[0],
        samples_per_step=step[1],
        unit=r.unit if r.unit != "s" else "tokens/s",
        flops=flops,
        nbytes=nbytes,
        host_ops=ops,
        precision=str(e.get("ceiling_precision") or dtype),
        dtype=dtype,
        family=fam,
        batch_size=_int(e.get("batch_size")),
        seq_len=_int(e.get("seq_len")) or _context(e),
        model=str(e["model"]) if e.get("model") else None,
        params=_int(e.get("params")),
        image_size=_int(e.get("image_size")),
        memory_total_bytes=_int(e.get("memory_total_bytes")),
        graphs=_graphed(e, fam),
        compiled=bool(e.get("compile")),
        spread=_spread(r, step[0]),
        notes=notes,
        nbytes_bf16=_positive(e.get("bytes_per_step_bf16")),
    )


def _projectable(r: Result) -> bool:
    """An ok figure of one of the two implementations, not the ttft duplicate."""
    impl = str(r.extra.get("impl") or "")
    return r.status == "ok" and r.extra.get("variant") != "ttft" and impl in IMPLS


def _traffic(e: Mapping[str, Any]) -> tuple[float, float, tuple[str, ...]]:
    """(bytes, host ops) per step, 0 where not recorded, and notes saying so."""
    notes: list[str] = []
    nbytes = _positive(e.get("bytes_per_step"))
    if nbytes is None:
        nbytes = 0.0
        notes.append("bytes per step not recorded (older gpuscout): treated as compute only")
    ops = _positive(e.get("host_ops_per_step"))
    if ops is None:
        ops = 0.0
        notes.append("kernel launches per step not recorded: no host term")
    return nbytes, ops, tuple(notes)


def _graphed(e: Mapping[str, Any], family: str) -> bool:
    """Replayed CUDA graphs on the measured device (a graphed or compiled decode)."""
    decode = family == "decode" and e.get("decode_mode") in ("compile", "cuda_graph")
    return bool(e.get("cuda_graphs")) or decode


def bases(results: Iterable[Result]) -> list[Basis]:
    return [b for r in results if (b := to_basis(r)) is not None]


def choose(all_bases: Sequence[Basis], impl: str | None = "tuned") -> list[Basis]:
    """One basis per (workload, variant): measured on a GPU when there is one (its
    efficiencies transfer; a CPU's do not), the ``impl`` asked for when measured."""
    by_key: dict[tuple[str, str | None], list[Basis]] = {}
    for b in all_bases:
        by_key.setdefault((b.workload, b.variant), []).append(b)
    out = []
    for group in by_key.values():
        if impl is not None and any(b.impl == impl for b in group):
            group = [b for b in group if b.impl == impl]
        gpu = [b for b in group if b.on_gpu]
        out.append((gpu or group)[0])
    return out


def local_ceilings(results: Iterable[Result]) -> dict[str, Ceiling]:
    """Per device: best measured matmul TFLOPS per precision, memory GB/s, and the
    host cost per op as ``launch_s`` (GPU: 1 / launches per second; CPU: the dispatch
    microseconds)."""
    tflops: dict[str, dict[str, float]] = {}
    bw: dict[str, float] = {}
    host: dict[str, float] = {}
    for r in results:
        if r.status != "ok" or r.figure is None or not math.isfinite(r.figure) or r.figure <= 0:
            continue
        _read_ceiling(r, float(r.figure), tflops, bw, host)
    devices = set(tflops) | set(bw) | set(host)
    return {
        d: Ceiling(
            tflops=tflops.get(d, {}),
            bandwidth_gbs=bw.get(d),
            launch_s=host.get(d),
            source="measured (bench micro)",
        )
        for d in devices
    }


def _read_ceiling(
    r: Result,
    figure: float,
    tflops: dict[str, dict[str, float]],
    bw: dict[str, float],
    host: dict[str, float],
) -> None:
    """Fold one micro-benchmark figure into the per-device bests."""
    parts = r.name.split("/")
    dev = r.device
    if parts[0] == "matmul" and len(parts) >= 2 and r.unit == "TFLOPS":
        d = tflops.setdefault(dev, {})
        d[parts[1]] = max(d.get(parts[1], 0.0), figure)
    elif parts[0] == "memory" and r.unit == "GB/s":
        bw[dev] = max(bw.get(dev, 0.0), figure)
    elif r.name == "launch/launches" and r.unit == "launches/s":
        host[dev] = 1.0 / figure
    elif r.name == "launch/dispatch" and r.unit == "us":
        host[dev] = figure * 1e-6


def measured_gpu_host_op_s(ceilings: Mapping[str, Ceiling]) -> float | None:
    """The measured host cost per launched op of the first GPU that has one (sorted by
    device, so the answer does not depend on the order the results came in)."""
    return next(
        (c.launch_s for dev, c in sorted(ceilings.items()) if dev != "cpu" and c.launch_s),
        None,
    )
