"""The candidates behind a verdict: one configuration per GPU (the fewest GPUs of that
kind that hold the work and meet the deadline), and the cost rows chosen from them.

Per GPU kind, sizes 1, 2, 4 and 8 are tried in turn for training (plain data parallel
first, then fully sharded, ZeRO-3/FSDP, when the replicas do not fit); inference stays
on one GPU (tensor parallelism is not modelled). A purchase row per segment is the
fastest configuration within the budget when one is given, else the best performance
per dollar of list price (the fastest where no price is published). The cloud row is the
cheapest per run among GPUs with an on-demand price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpuscout.catalog import CloudPrice, GpuSpec
from gpuscout.predict import cost, multi
from gpuscout.predict import defaults as d
from gpuscout.predict.project import Calibrated, project_one
from gpuscout.predict.records import CostRow, Projection


@dataclass(frozen=True)
class Option:
    spec: GpuSpec
    proj: Projection
    run_s: float
    low_s: float
    high_s: float
    meets_deadline: bool

    @property
    def gpus(self) -> int:
        return self.proj.gpus

    @property
    def buy_usd(self) -> float | None:
        p = self.spec.launch_price_usd
        return None if p is None else p * self.gpus


def _option(
    c: Calibrated, spec: GpuSpec, n: int, zero: int, samples: float, deadline_s: float | None
) -> Option | None:
    p = project_one(c, spec, gpus=n, zero=zero)
    if p is None:
        return None
    run = samples / p.throughput
    meets = deadline_s is None or run <= deadline_s
    return Option(
        spec, p, run, run * p.step_low_s / p.step_s, run * p.step_high_s / p.step_s, meets
    )


def candidates(
    c: Calibrated, specs: Sequence[GpuSpec], samples: float, deadline_s: float | None
) -> list[Option]:
    """One option per GPU kind: the smallest box that fits and meets the deadline; else
    the fastest that fits (deadline missed); else the single GPU that does not fit."""
    out = []
    for spec in specs:
        pick = _smallest_box(c, spec, samples, deadline_s)
        if pick is not None:
            out.append(pick)
    return out


def _smallest_box(
    c: Calibrated, spec: GpuSpec, samples: float, deadline_s: float | None
) -> Option | None:
    """Boxes of 1, 2, 4 and 8 ``spec`` GPUs in turn (training only; per size, plain data
    parallel first, then fully sharded when the replicas do not fit)."""
    boxes = tuple(n for n in d.BOX_SIZES if n <= multi.max_box(spec))
    if not c.basis.training:
        boxes = ()
    first: Option | None = None
    fallback: Option | None = None
    for n in (1, *boxes):
        first_n, fit = _fitting(c, spec, n, samples, deadline_s)
        first = first or first_n
        if fit is not None and fit.meets_deadline:
            return fit
        if fit is not None and (fallback is None or fit.run_s < fallback.run_s):
            fallback = fit  # fits but is too slow: more GPUs, not sharding, is what helps
        if first is None:
            break
    return fallback or first


def _fitting(
    c: Calibrated, spec: GpuSpec, n: int, samples: float, deadline_s: float | None
) -> tuple[Option | None, Option | None]:
    """(the first option of an ``n``-GPU box, the first of its ways that fits); None for
    either where there is none (no usable rate, or nothing fits)."""
    first: Option | None = None
    for zero in (0,) if n == 1 else (0, 3):
        o = _option(c, spec, n, zero, samples, deadline_s)
        if o is None:
            break
        first = first or o
        if o.proj.fits is not False:
            return first, o
    return first, None


def _ok(o: Option) -> bool:
    return o.proj.fits is not False and o.meets_deadline


def pick_purchase(options: Sequence[Option], segment: str, budget: float | None) -> Option | None:
    cands = [o for o in options if o.spec.segment == segment and _ok(o)]
    if budget is not None:
        cands = [o for o in cands if o.buy_usd is not None and o.buy_usd <= budget]
        return min(cands, key=lambda o: o.run_s, default=None)
    priced = [o for o in cands if o.buy_usd is not None]
    if priced:  # the most performance per dollar: the least price x time per run
        return min(priced, key=lambda o: o.run_s * (o.buy_usd or 0.0))
    return min(cands, key=lambda o: o.run_s, default=None)


def pick_cloud(options: Sequence[Option]) -> tuple[Option, CloudPrice, float] | None:
    """The cheapest option per run among GPUs with an on-demand price:
    (option, its cheapest offer, $/run)."""
    best: tuple[Option, CloudPrice, float] | None = None
    for o in options:
        if not _ok(o):
            continue
        price = cost.cheapest_price(o.spec.id)
        if price is None:
            continue
        per_run = cost.cloud_usd(price.usd_per_gpu_hour, o.gpus, o.run_s)
        if best is None or (per_run, o.run_s) < (best[2], best[0].run_s):
            best = (o, price, per_run)
    return best


def _fit_note(o: Option) -> str:
    box = f"{o.gpus} GPUs" + (", fully sharded (FSDP/ZeRO-3)" if o.proj.zero == 3 else "")
    parts = [o.proj.fit_note] if o.gpus == 1 else [f"{box}: {o.proj.fit_note}"]
    if not o.meets_deadline:
        parts.append("misses the deadline")
    return "; ".join(p for p in parts if p)


def cloud_row(o: Option, price: CloudPrice, per_run: float) -> CostRow:
    return CostRow(
        option="cloud",
        gpu_id=o.spec.id,
        gpu_name=o.spec.name,
        gpus=o.gpus,
        time_per_run_s=o.run_s,
        fits=o.proj.fits,
        buy_usd=None,
        electricity_usd_per_run=None,
        cloud_usd_per_hour=price.usd_per_gpu_hour * o.gpus,
        cloud_price_date=price.date_seen,
        cloud_provider=price.provider,
        cloud_usd_per_run=per_run,
        break_even_hours=None,
        note=f"{price.provider} {price.sku}, seen {price.date_seen}; " + _fit_note(o),
        time_low_s=o.low_s,
        time_high_s=o.high_s,
    )


def purchase_row(
    segment: str,
    o: Option,
    price_kwh: float,
    hours_per_week: float,
    cloud: CostRow | None,
) -> CostRow:
    """A GPU bought: electricity per run, the same GPU rented, and the break-even."""
    spec, n = o.spec, o.gpus
    elec = None if spec.tdp_w is None else cost.electricity_usd(spec.tdp_w, n, o.run_s, price_kwh)
    same = cost.cheapest_price(spec.id)
    cloud_h = None if same is None else same.usd_per_gpu_hour * n
    buy = o.buy_usd
    hours: float | None = None
    notes = [_fit_note(o)]
    if buy is None:
        notes.append("no list price published")
    elif cloud_h is not None and spec.tdp_w is not None:
        elec_h = cost.electricity_usd(spec.tdp_w, n, cost.SECONDS_PER_HOUR, price_kwh)
        hours = cost.break_even_hours_same_gpu(buy, cloud_h, elec_h)
        notes.append("break-even against renting the same GPU")
    elif cloud is not None and elec is not None and cloud.cloud_usd_per_run is not None:
        hours = cost.break_even_hours(buy, o.run_s, elec, cloud.cloud_usd_per_run)
        notes.append(f"break-even against the cloud option ({cloud.gpu_name})")
    return CostRow(
        option=segment,
        gpu_id=spec.id,
        gpu_name=spec.name,
        gpus=n,
        time_per_run_s=o.run_s,
        fits=o.proj.fits,
        buy_usd=buy,
        electricity_usd_per_run=elec,
        cloud_usd_per_hour=cloud_h,
        cloud_price_date=None if same is None else same.date_seen,
        cloud_provider=None if same is None else same.provider,
        cloud_usd_per_run=None if cloud_h is None else cloud_h * o.run_s / cost.SECONDS_PER_HOUR,
        break_even_hours=hours,
        note="; ".join(p for p in notes if p),
        break_even_weeks=cost.weeks(hours, hours_per_week),
        time_low_s=o.low_s,
        time_high_s=o.high_s,
    )


def empty_row(segment: str, why: str) -> CostRow:
    return CostRow(
        option=segment,
        gpu_id=None,
        gpu_name="none",
        gpus=0,
        time_per_run_s=None,
        fits=None,
        buy_usd=None,
        electricity_usd_per_run=None,
        cloud_usd_per_hour=None,
        cloud_price_date=None,
        cloud_provider=None,
        cloud_usd_per_run=None,
        break_even_hours=None,
        note=why,
    )
