"""``predict_results`` / ``predict_run``: every measured workload, on every catalog GPU.

For each workload (one figure per workload and variant: the tuned implementation
measured on a GPU when there is one), the step is calibrated on the device it was
measured on (``model.calibrate``), then projected onto each GPU (``model.project``),
with the memory fit from ``gpuscout.fit`` and, when asked, onto multi-GPU boxes
(``multi``). A CPU-only run projects with the published defaults and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpuscout._types import Ceiling, Result
from gpuscout.catalog import GpuSpec, card_gpus, match_local_gpu
from gpuscout.errors import UsageError
from gpuscout.predict import defaults as d
from gpuscout.predict import facts, fitcheck, multi
from gpuscout.predict.basis import (
    Basis,
    bases,
    choose,
    local_ceilings,
    measured_gpu_host_op_s,
)
from gpuscout.predict.records import Calibration, Prediction, Projection
from gpuscout.predict.roofline import (
    Point,
    RooflineInput,
    calibrate,
    project,
    target_precision,
    uncalibrated,
)

MICRO_PREFIXES = ("matmul/", "memory/", "launch/")

MODEL_LINE = (
    "model: step = max(device, host) on a GPU, device = FLOPs/(peak x eff_c) + "
    "bytes/(bandwidth x eff_m) + kernels x floor; FLOPs and bytes counted from the model; "
    "host time (launches, dispatch) does not shrink on a faster GPU"
)


def precision_line() -> str:
    """The precision assumption, naming the workloads whose GPU program autocasts to
    bf16 (their records say so)."""
    return (
        "precision as the program runs there: a tuned fp32 CPU run of "
        f"{', '.join(facts.bf16_workloads())} computes in bf16 on GPUs with native bf16 "
        "(its GPU program autocasts); otherwise fp32 stays fp32 except convolutions, which "
        "cuDNN runs in TF32 on Ampere and newer; bf16 falls back to fp16 (then fp32) where "
        "a GPU lacks it"
    )


CEILING_LINE = (
    f"other GPUs at {d.ACHIEVABLE_COMPUTE:.0%} of their datasheet peak and "
    f"{d.ACHIEVABLE_BANDWIDTH:.0%} of their bandwidth (what PyTorch reaches on an H100); "
    "the measured GPU at its measured ceilings"
)
UNCALIBRATED_LINE = (
    "nothing was measured on a GPU: efficiencies are defaults calibrated on published "
    "GPU measurements (Lambda ResNet-50 and BERT-large on H100, torchao Llama-3.1-8B "
    "decode), not on this machine; ranges are x{:g}-{:g} of the efficiencies"
)


@dataclass(frozen=True)
class Calibrated:
    basis: Basis
    cal: Calibration
    local: RooflineInput | None  # the measured GPU's own rates
    measured: GpuSpec | None  # the catalog row of the measured GPU


def measured_spec(b: Basis) -> GpuSpec | None:
    """The catalog row of the GPU ``b`` was measured on; None for the CPU, or a GPU the
    catalog does not know or cannot tell apart."""
    return match_local_gpu(b.device_name, b.memory_total_bytes) if b.on_gpu else None


def cpu_input(b: Basis, lc: Ceiling | None) -> RooflineInput | None:
    """The CPU's measured rates for ``b``'s precision (fp32 where that was not
    measured); None without a measured matmul and bandwidth."""
    if lc is None or lc.bandwidth_gbs is None:
        return None
    peak = lc.tflops.get(b.precision) or lc.tflops.get("fp32")
    if not peak:
        return None
    return RooflineInput(peak * 1e12, lc.bandwidth_gbs * 1e9, False, lc.source)


def calibration_for(
    b: Basis, ceilings: Mapping[str, Ceiling], gpu_host_op_s: float | None
) -> tuple[Calibrated, Calibration | None]:
    """The calibration to project ``b`` with, and (for a CPU basis) the CPU's own
    calibration, which is reported but never projected."""
    lc = ceilings.get(b.device)
    if not b.on_gpu:
        cpu = cpu_input(b, lc)
        own = calibrate(b, cpu, lc.launch_s if lc else None, None) if cpu else None
        return Calibrated(b, uncalibrated(b, gpu_host_op_s), None, None), own
    spec = measured_spec(b)
    host = lc.launch_s if lc is not None else None
    local = _gpu_input(b, lc, spec)
    if local is None:
        return Calibrated(b, uncalibrated(b, host), None, None), None
    cal = calibrate(b, local, host, spec.id if spec else None)
    return Calibrated(b, cal, local, spec), None


def _gpu_input(b: Basis, lc: Ceiling | None, spec: GpuSpec | None) -> RooflineInput | None:
    """The measured GPU's rates for ``b``: measured where bench micro ran there, the
    catalog's achievable figures otherwise; None when neither has both."""
    # The precision the step really ran in there: a convolution workload records "tf32"
    # for an fp32 run on any CUDA GPU, and a V100 or a Turing card has no TF32 rate
    # (cuDNN runs fp32 there; bench micro skips matmul/tf32 below sm_80).
    q = target_precision(b, spec) if spec is not None else None
    flops, flops_source = _peak(b, lc, spec, q)
    bw, bw_source = _bandwidth(lc, spec)
    if flops is None or bw is None:
        return None
    return RooflineInput(flops, bw, True, ", ".join(x for x in (flops_source, bw_source) if x))


def _peak(
    b: Basis, lc: Ceiling | None, spec: GpuSpec | None, q: str | None
) -> tuple[float | None, str]:
    """FLOP/s at the precision ``b`` ran in there, and where the figure comes from."""
    rates = lc.tflops if lc is not None else {}
    ran = b.precision if rates.get(b.precision) else q
    peak = rates.get(ran) if ran else None
    if peak:
        return peak * 1e12, "measured matmul" + (f" ({ran})" if ran != b.precision else "")
    p = spec.peak_tflops(q) if spec is not None and q is not None else None
    if spec is None or q is None or not p:
        return None, ""
    note = f" ({q})" if q != b.precision else ""
    return p * 1e12 * d.ACHIEVABLE_COMPUTE, f"{spec.id} datasheet peak{note}"


def _bandwidth(lc: Ceiling | None, spec: GpuSpec | None) -> tuple[float | None, str]:
    if lc is not None and lc.bandwidth_gbs:
        return lc.bandwidth_gbs * 1e9, "measured bandwidth"
    if spec is not None:
        return spec.bandwidth_bytes_per_s * d.ACHIEVABLE_BANDWIDTH, f"{spec.id} datasheet bandwidth"
    return None, ""


def _basis_text(c: Calibrated) -> str:
    b = c.basis
    what = f"{b.impl} {b.workload}" + (f" {b.variant}" if b.variant else "")
    if c.cal.calibrated:
        return f"calibrated on {b.device_name} ({what}, {b.precision})"
    source = c.cal.ceiling_source.removeprefix("defaults: ")
    return f"defaults ({source}); measured {what} on {b.device_name}"


def project_one(c: Calibrated, spec: GpuSpec, *, gpus: int = 1, zero: int = 0) -> Projection | None:
    """``c``'s workload on ``gpus`` x ``spec``; None where the GPU has no usable rate."""
    b = c.basis
    point = project(b, c.cal, spec, local=c.local, measured=c.measured)
    if point is None:
        return None
    notes = list(b.notes)
    if point.precision != b.precision:
        notes.append(f"computes in {point.precision} here ({b.precision} measured)")
    if gpus == 1:
        fits, fit_note = fitcheck.fits(b, spec, point.precision)
        return _projection(c, spec, point, 1, 0, 0.0, fits, fit_note, notes)
    params = b.params or _params(b)
    if params is None:
        return None
    elem = 4 if point.precision in ("fp32", "tf32") else 2
    cm = multi.comm(params, gpus, spec, point.parts.device_s, zero=zero, elem_bytes=elem)
    notes.append(multi.assumption(spec, gpus))
    fits, fit_note = fitcheck.fits(b, spec, point.precision, gpus=gpus, zero=zero)
    return _projection(c, spec, point, gpus, zero, cm.exposed_s, fits, fit_note, notes)


def _params(b: Basis) -> int | None:
    try:
        return int(facts.model_spec(b.workload, b.model).params)
    except Exception:  # an unknown workload or model: no multi-GPU box for it
        return None


def _projection(
    c: Calibrated,
    spec: GpuSpec,
    point: Point,
    gpus: int,
    zero: int,
    comm_s: float,
    fits: bool | None,
    fit_note: str,
    notes: list[str],
) -> Projection:
    b = c.basis
    step, low, high = point.step_s + comm_s, point.low_s + comm_s, point.high_s + comm_s
    throughput = gpus * b.samples_per_step / step
    return Projection(
        workload=b.workload,
        result_name=b.result_name,
        gpu_id=spec.id,
        gpu_name=spec.name,
        segment=spec.segment,
        gpus=gpus,
        precision=point.precision,
        step_s=step,
        step_low_s=low,
        step_high_s=high,
        throughput=throughput,
        throughput_unit=b.unit,
        bound=point.parts.bound,
        fits=fits,
        fit_note=fit_note,
        speedup=throughput * b.step_s / b.samples_per_step if math.isfinite(b.step_s) else None,
        basis=_basis_text(c),
        assumptions=tuple(notes),
        comm_s=comm_s,
        zero=zero,
    )


def measured_on(chosen: Sequence[Basis], system: Mapping[str, Any] | None) -> str:
    names = []
    for b in chosen:
        if b.on_gpu:
            names.append(f"{b.device_name} ({b.device})")
        else:
            cpu = (system or {}).get("cpu_model")
            names.append(f"the CPU{f' ({cpu})' if cpu else ''}")
    return ", ".join(dict.fromkeys(names)) or "nothing"


def calibrate_all(
    results: Sequence[Result], impl: str | None = "tuned"
) -> tuple[list[Calibrated], list[Calibration]]:
    """The calibration of every workload chosen for projection, and the CPU's own."""
    ceilings = local_ceilings(results)
    gpu_host = measured_gpu_host_op_s(ceilings)
    chosen, extra = [], []
    for b in choose(bases(results), impl):
        c, own = calibration_for(b, ceilings, gpu_host)
        chosen.append(c)
        if own is not None:
            extra.append(own)
    return chosen, extra


def predict_results(
    results: Sequence[Result],
    system: Mapping[str, Any] | None = None,
    gpus: Sequence[GpuSpec] | None = None,
    *,
    impl: str | None = "tuned",
    boxes: Sequence[int] = (1,),
    run_id: int | None = None,
) -> Prediction:
    """Project every measured workload in ``results`` onto ``gpus`` (default: the whole
    catalog); ``boxes`` adds N-GPU data-parallel boxes for training workloads;
    ``system`` is the run's fingerprint (for the CPU's name)."""
    results = list(results)
    chosen, cpu_cals = calibrate_all(results, impl)
    if not chosen:
        raise UsageError(
            "no measured workload to project",
            "run `gpuscout run` or `gpuscout bench workload NAME` first",
        )
    targets = list(gpus) if gpus is not None else list(card_gpus())
    out: list[Projection] = []
    for c in chosen:
        for spec in targets:
            for n in boxes:
                if n > 1 and (not c.basis.training or n > multi.max_box(spec)):
                    continue
                p = project_one(c, spec, gpus=n)
                if p is not None:
                    out.append(p)
    calibrated = all(c.cal.calibrated for c in chosen)
    return Prediction(
        run_id=run_id,
        measured_on=measured_on([c.basis for c in chosen], system),
        calibrated=calibrated,
        projections=tuple(out),
        assumptions=tuple(_assumptions(calibrated, boxes)),
        calibrations=tuple(c.cal for c in chosen) + tuple(cpu_cals),
    )


def _assumptions(calibrated: bool, boxes: Sequence[int]) -> list[str]:
    lo, hi = d.BAND_SAME_ARCH if calibrated else d.BAND_DEFAULTS
    assumptions = [MODEL_LINE, precision_line(), CEILING_LINE]
    if not calibrated:
        assumptions.insert(0, UNCALIBRATED_LINE.format(*d.BAND_DEFAULTS))
    else:
        assumptions.append(
            f"ranges: efficiencies x{lo:g}-{hi:g} on the same architecture, "
            f"x{d.BAND_CROSS_ARCH[0]:g}-{d.BAND_CROSS_ARCH[1]:g} on others"
        )
    if any(n > 1 for n in boxes):
        assumptions.append(
            "multi-GPU boxes: data parallel, the measured batch per GPU; "
            f"communication at {d.LINK_EFFICIENCY:.0%} of NVLink or PCIe x16 bandwidth"
        )
    return assumptions


def has_workloads(results: Sequence[Result], workload: str | None = None) -> bool:
    """Whether ``results`` hold a measured workload (``workload``, or any)."""
    return any(
        r.status == "ok"
        and "workload" in r.extra
        and (workload is None or r.extra["workload"] == workload)
        for r in results
    )


def run_results(
    store: Any, run_id: int | None = None, workload: str | None = None
) -> tuple[int, list[Result], Any]:
    """(run id, its results plus the newest micro-benchmarks of the same host when the
    run has none, its fingerprint); by default the newest run with workload results
    (with ``workload`` among them when it is given)."""
    if run_id is None:
        run_id = _newest_with_workloads(store, workload)
    record = store.get_run(run_id)
    results = list(store.results(run_id))
    if not has_workloads(results):
        raise UsageError(
            f"run {run_id} has no workload results", "see `gpuscout history` for runs that do"
        )
    devices = {r.device for r in results if "workload" in r.extra}
    have = {r.device for r in results if r.name.startswith(MICRO_PREFIXES)}
    host = record.fingerprint.get("host")
    results += _micro_from_other_runs(store, run_id, host, devices - have)
    return run_id, results, record.fingerprint


def _newest_with_workloads(store: Any, workload: str | None) -> int:
    for run in store.list_runs(limit=200):
        if has_workloads(store.results(run.id), workload):
            return int(run.id)
    if workload:
        raise UsageError(
            f"{workload} was not measured in any run in {store.label}",
            f"run `gpuscout bench workload {workload}` first",
        )
    raise UsageError(
        f"no workload results in {store.label}",
        "run `gpuscout run` (or `gpuscout bench workload NAME`) first",
    )


def _micro_from_other_runs(store: Any, run_id: int, host: Any, missing: set[str]) -> list[Result]:
    """The newest micro-benchmarks of the devices in ``missing`` from other runs of the
    same host (or of no known host)."""
    found: list[Result] = []
    for run in store.list_runs(limit=200) if missing else []:
        if run.id == run_id or run.fingerprint.get("host") not in (None, host):
            continue
        micro = [
            r
            for r in store.results(run.id)
            if r.device in missing and r.name.startswith(MICRO_PREFIXES)
        ]
        found += micro
        missing = missing - {r.device for r in micro}
        if not missing:
            break
    return found


def predict_run(
    store: Any,
    run_id: int | None = None,
    gpus: Sequence[GpuSpec] | None = None,
    **kwargs: Any,
) -> Prediction:
    """``predict_results`` for one stored run (the newest with workload results)."""
    rid, results, fp = run_results(store, run_id)
    return predict_results(results, fp, gpus, run_id=rid, **kwargs)
