"""``advise``: stay on the CPU, buy a consumer, workstation or datacenter GPU, or rent one.

The job is one measured workload (``--workload``, or the one whose run takes longest
where it was measured), or a model nobody measured (``--model M --train|--infer``,
``predict.derived``), run ``samples`` times (the workload's record says what one run
is, ``defaults.MODEL_RUN`` for a model, unless ``--samples`` does). Every GPU is
projected (``predict.project``) and sized (``predict.options``); then, in this order:

1. the CPU, if it was measured, meets the deadline, and either a run takes under
   ``CPU_IS_ENOUGH_S`` or no GPU is ``MIN_GPU_SPEEDUP`` times faster;
2. the purchase that pays for itself soonest against renting, if it does within
   ``HORIZON_WEEKS`` at ``hours_per_week`` of use;
3. the cheapest cloud option per run;
4. the fastest purchase that holds the work.

With nothing measured and no ``--model`` there is nothing of the user's to advise on:
advice from a made-up standard workload would answer a question they did not ask, so
that is a UsageError pointing at ``gpuscout run`` (or ``--model``) instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gpuscout._types import Result
from gpuscout.catalog import SEGMENTS, GpuSpec, card_gpus
from gpuscout.errors import UsageError
from gpuscout.predict import defaults as d
from gpuscout.predict import facts
from gpuscout.predict import options as opt
from gpuscout.predict.basis import Basis, bases, local_ceilings, measured_gpu_host_op_s
from gpuscout.predict.project import (
    MICRO_PREFIXES,
    Calibrated,
    calibrate_all,
    cpu_input,
    has_workloads,
    measured_on,
    run_results,
)
from gpuscout.predict.records import Advice, CostRow, Prediction
from gpuscout.predict.roofline import parts, uncalibrated
from gpuscout.predict.wording import assumptions, pro_vs_consumer, recommend, verdict_text
from gpuscout.timing.load import disturbance


@dataclass(frozen=True)
class Job:
    c: Calibrated
    cpu_run_s: float | None  # one run on this machine's CPU
    cpu_note: str
    samples: float
    sample_unit: str
    what: str
    run_words: str


def _unit(unit: str) -> str:
    return unit.removesuffix("/s") or "samples"


def _throughput(b: Basis) -> float:
    return b.samples_per_step / b.step_s


def _cpu_best(all_bases: Sequence[Basis], b: Basis) -> Basis | None:
    same = [
        x
        for x in all_bases
        if x.device == "cpu" and x.workload == b.workload and x.variant == b.variant
    ]
    return max(same, key=_throughput, default=None)


def _workload_job(results: Sequence[Result], workload: str | None, samples: float | None) -> Job:
    chosen, _ = calibrate_all(results, "tuned")
    c = _pick(chosen, workload)
    b = c.basis
    n, words = facts.run_size(b.workload)
    if samples is not None:
        n, words = samples, f"{samples:,.0f} {_unit(b.unit)}"
    cpu = _cpu_best(bases(results), b)
    cpu_run = None if cpu is None else n / _throughput(cpu)
    note = "" if cpu is None else f"measured ({cpu.impl} implementation)"
    what = facts.describe(b.workload, b)
    return Job(c, cpu_run, note or "not measured", n, _unit(b.unit), what, words)


def _pick(chosen: Sequence[Calibrated], workload: str | None) -> Calibrated:
    """``workload``'s primary figure (its first where it has none); without a workload,
    the figure whose run takes longest."""
    names = list(dict.fromkeys(c.basis.workload for c in chosen))
    if workload is None:
        return max(chosen, key=_run_s)
    if workload not in names:
        raise UsageError(
            f"workload {workload!r} was not measured in this run",
            f"measured: {', '.join(names)}" if names else "run `gpuscout run` first",
        )
    pool = [c for c in chosen if c.basis.workload == workload]
    want = facts.primary_variant(workload)
    return next((x for x in pool if want is not None and x.basis.variant == want), pool[0])


def _run_s(c: Calibrated) -> float:
    """One run of ``c``'s workload at its measured throughput, in seconds."""
    return facts.run_size(c.basis.workload)[0] / _throughput(c.basis)


def _model_job(results: Sequence[Result], request: Any, samples: float | None) -> Job:
    from gpuscout.predict.derived import model_basis

    b, spec = model_basis(request)
    mode = request.mode
    ceilings = local_ceilings(results)
    c = Calibrated(b, uncalibrated(b, measured_gpu_host_op_s(ceilings)), None, None)
    n, words = float(d.MODEL_RUN[mode][0]), d.MODEL_RUN[mode][1]
    if samples is not None:
        n, words = samples, f"{samples:,.0f} tokens"
    cpu_run, note = None, "no CPU ceilings measured (gpuscout bench micro)"
    lc = ceilings.get("cpu")
    cpu = cpu_input(b, lc)
    if lc is not None and cpu is not None:
        host = lc.launch_s or d.DEFAULT_CPU_HOST_OP_S
        step = parts(b, cpu, d.CPU.eff_compute, d.CPU.eff_memory, 0.0, host).step_s
        cpu_run, note = n / b.samples_per_step * step, "estimated from the CPU's measured ceilings"
    what = f"{spec.name} {'training' if mode == 'train' else 'inference'}"
    return Job(c, cpu_run, note, n, "tokens", what, words)


def _check(
    hours_per_week: float,
    price_kwh: float,
    budget_usd: float | None,
    deadline_hours: float | None,
    samples: float | None,
    mode: str,
) -> None:
    if not 0 < hours_per_week <= 168:
        raise UsageError(f"--hours-per-week must be in (0, 168], not {hours_per_week:g}")
    if price_kwh < 0 or not math.isfinite(price_kwh):
        raise UsageError(f"--price-kwh must be zero or more, not {price_kwh:g}")
    for name, value in (("--budget", budget_usd), ("--deadline-hours", deadline_hours),
                        ("--samples", samples)):  # fmt: skip
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise UsageError(f"{name} must be more than zero, not {value:g}")
    if mode not in ("train", "infer"):
        raise UsageError(f"unknown mode {mode!r}", "use --train or --infer")


def advise(
    *,
    store: Any = None,
    run_id: int | None = None,
    results: Sequence[Result] | None = None,
    system: Mapping[str, Any] | None = None,
    workload: str | None = None,
    model: str | None = None,
    mode: str = "train",
    budget_usd: float | None = None,
    hours_per_week: float = d.HOURS_PER_WEEK,
    price_kwh: float = d.PRICE_KWH_USD,
    deadline_hours: float | None = None,
    samples: float | None = None,
    gpus: Sequence[GpuSpec] | None = None,
    fit_request: Any = None,
) -> Advice:
    """The verdict for one job (see the module docstring); ``results`` (or a ``store``
    and ``run_id``, the newest run with workloads by default) are the measurements.
    ``fit_request`` (a gpuscout.fit.FitRequest) says how ``model`` is trained or run:
    its format, LoRA, checkpointing, sequence, engine; without one, the model's defaults."""
    _check(hours_per_week, price_kwh, budget_usd, deadline_hours, samples, mode)
    if workload is not None and model is not None:
        raise UsageError("give --workload or --model, not both")
    if results is None:
        results, system, run_id = _load(store, run_id, workload, need_workloads=model is None)
    results = list(results)
    job = _job(results, workload, model, mode, samples, fit_request)
    deadline_s = None if deadline_hours is None else deadline_hours * 3600.0
    specs = list(gpus) if gpus is not None else list(card_gpus())
    options = opt.candidates(job.c, specs, job.samples, deadline_s)
    rows = _rows(job, options, budget_usd, price_kwh, hours_per_week, deadline_s)
    pick = recommend(rows, deadline_s)
    specs_by_id = {s.id: s for s in specs}
    prediction = Prediction(
        run_id=run_id,
        measured_on=job.c.basis.device_name if model else measured_on([job.c.basis], system),
        calibrated=job.c.cal.calibrated,
        projections=tuple(o.proj for o in options),
        assumptions=(),
        calibrations=(job.c.cal,),
    )
    said = verdict_text(
        job.what,
        job.run_words,
        job.sample_unit,
        rows,
        pick,
        deadline_s,
        hours_per_week,
        job.c.cal.calibrated,
    )
    disturbed = disturbance(results)
    if disturbed is not None:  # the times come from figures that cannot be trusted
        said = disturbed.caveat() + said
    return Advice(
        verdict=said,
        recommended=pick,
        rows=tuple(rows),
        pro_vs_consumer=pro_vs_consumer(rows, specs_by_id, job.samples, job.sample_unit),
        assumptions=assumptions(job.c, price_kwh, hours_per_week, job.run_words, job.cpu_note),
        prediction=prediction,
        workload=job.what,
        samples_per_run=job.samples,
        sample_unit=job.sample_unit,
    )


def _job(
    results: Sequence[Result],
    workload: str | None,
    model: str | None,
    mode: str,
    samples: float | None,
    fit_request: Any = None,
) -> Job:
    if model is not None:
        from gpuscout.predict.derived import default_request

        return _model_job(results, fit_request or default_request(model, mode), samples)
    if not has_workloads(results):
        raise UsageError(
            "nothing was measured, so there is nothing of yours to advise on",
            "run `gpuscout run` first, or ask about a model: "
            "gpuscout advise --model llama-3-8b --infer",
        )
    return _workload_job(results, workload, samples)


def _rows(
    job: Job,
    options: Sequence[opt.Option],
    budget_usd: float | None,
    price_kwh: float,
    hours_per_week: float,
    deadline_s: float | None,
) -> list[CostRow]:
    """The CPU, the pick of each purchase segment, and the cloud, in that order."""
    cloud_pick = opt.pick_cloud(options)
    cloud = None if cloud_pick is None else opt.cloud_row(*cloud_pick)
    rows: list[CostRow] = [_cpu_row(job, deadline_s)]
    for segment in SEGMENTS:
        o = opt.pick_purchase(options, segment, budget_usd)
        if o is None:
            why = (
                f"no {segment} GPU holds this work"
                + (f" within ${budget_usd:,.0f}" if budget_usd is not None else "")
                + (" by the deadline" if deadline_s is not None else "")
            )
            rows.append(opt.empty_row(segment, why))
        else:
            rows.append(opt.purchase_row(segment, o, price_kwh, hours_per_week, cloud))
    rows.append(
        cloud
        if cloud is not None
        else opt.empty_row("cloud", "no priced cloud GPU holds this work")
    )
    return rows


def _load(
    store: Any, run_id: int | None, workload: str | None, *, need_workloads: bool
) -> tuple[list[Result], Mapping[str, Any] | None, int | None]:
    if store is None:
        raise UsageError("advise needs measurements: a store, a run or results")
    try:
        rid, results, fp = run_results(store, run_id, workload)
        return results, fp, rid
    except UsageError:
        if need_workloads or run_id is not None:
            raise
    # A model question needs no workload run; the CPU's newest ceilings still help.
    for run in store.list_runs(limit=50):
        micro = [r for r in store.results(run.id) if r.name.startswith(MICRO_PREFIXES)]
        if micro:
            return micro, run.fingerprint, None
    return [], None, None


def _cpu_row(job: Job, deadline_s: float | None) -> CostRow:
    t = job.cpu_run_s
    late = t is not None and deadline_s is not None and t > deadline_s
    note = job.cpu_note + ("; misses the deadline" if late else "")
    # Nothing to buy or rent: the CPU is already yours.
    return replace(opt.empty_row("cpu", note), gpu_name="this machine's CPU", time_per_run_s=t)
