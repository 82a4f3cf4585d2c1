"""The jobs that help choose a GPU: the catalog (one GPU with its cloud prices, or a
list), and the advice (stay on the CPU, buy one, or rent one) from what was measured."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gpuscout.catalog import CloudPrice, GpuSpec, cloud_prices, find_gpu, gpus_by_segment, load_gpus
from gpuscout.errors import UsageError
from gpuscout.fit import FitRequest
from gpuscout.jobs.memory_fit import FitOptions, request_for
from gpuscout.jobs.storing import StoreLike, db_label, existing
from gpuscout.predict import Advice, defaults
from gpuscout.predict import advise as advise_on


@dataclass(frozen=True)
class Catalog:
    gpus: tuple[GpuSpec, ...]  # the one GPU asked for, or the list
    cloud_prices: tuple[CloudPrice, ...]  # the one GPU's (cheapest first); () for a list


def catalog(name: str | None = None, segment: str | None = None) -> Catalog:
    """One GPU by id or name (with its cloud prices), one segment's GPUs, or them all."""
    if name is not None and segment is not None:
        raise UsageError("give a GPU NAME or --segment, not both", "drop one of them")
    if name is not None:
        spec = find_gpu(name)
        return Catalog((spec,), cloud_prices(spec.id))
    return Catalog(load_gpus() if segment is None else gpus_by_segment(segment), ())


@dataclass(frozen=True)
class AdviseOptions:
    """On what: a measured ``workload`` (of run ``run_id``, default the newest with
    workloads) or a ``model`` by name or config.json path, measured or not, to ``mode``
    "train" (the default) or "infer". Under which terms: a ``budget_usd`` for GPUs,
    ``hours_per_week`` of use, electricity at ``price_kwh``, a ``deadline_hours`` per run,
    ``samples`` in one run."""

    workload: str | None = None
    run_id: int | None = None
    model: str | None = None
    mode: str | None = None
    budget_usd: float | None = None
    hours_per_week: float = defaults.HOURS_PER_WEEK
    price_kwh: float = defaults.PRICE_KWH_USD
    deadline_hours: float | None = None
    samples: float | None = None
    regime: FitOptions | None = None  # with ``model``: how it is trained or run, as `fit`


def advise(where: StoreLike = None, options: AdviseOptions | None = None) -> Advice:
    """Which GPU (if any) to buy or rent, what a run costs, when buying beats renting:
    from this machine's stored runs, or published defaults where nothing was measured."""
    o = options or AdviseOptions()
    if o.mode is not None and o.model is None:
        raise UsageError("--train and --infer go with --model", "e.g. --model llama-3-8b --infer")
    terms: dict[str, Any] = {
        "workload": o.workload,
        "model": o.model,
        "mode": o.mode or "train",
        "budget_usd": o.budget_usd,
        "hours_per_week": o.hours_per_week,
        "price_kwh": o.price_kwh,
        "deadline_hours": o.deadline_hours,
        "samples": o.samples,
        "fit_request": _fit_request(o),
    }
    with existing(where) as store:
        if store is not None:
            return advise_on(store=store, run_id=o.run_id, **terms)
    if o.model is None:
        raise UsageError(
            f"no results database at {db_label(where)}: nothing was measured yet",
            "run `gpuscout run` first, or ask about a model: "
            "gpuscout advise --model llama-3-8b --infer",
        )
    return advise_on(results=[], **terms)


def _fit_request(o: AdviseOptions) -> FitRequest | None:
    """The same request `gpuscout fit` would make of ``o.model`` in this regime."""
    if o.regime is None or o.model is None:
        return None
    regime = dataclasses.replace(o.regime, model=o.model, mode=o.mode or "train")
    return request_for(regime)
