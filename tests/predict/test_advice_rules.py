"""Every rule of the advice behind the verdict, one table per rule, a row on each side of
each boundary, with the words and numbers a person reads.

The rules, where they live:

- A1 ``advice.py:_check``: hours per week in (0, 168]; a price per kWh of zero or more
  and finite; a budget, a deadline and a sample count above zero and finite; mode train
  or infer. Anything else is a UsageError that says which value and why.
- A2 ``advice.py:advise``: ``--workload`` and ``--model`` together are refused.
- A3 ``advice.py:advise``: figures from a disturbed machine (a busy host, a throttled
  GPU) put "From disturbed measurements, not to be trusted until a quiet rerun: " in
  front of the verdict; quiet figures do not.
- A4 ``advice.py:_rows``: the rows are the CPU, one per purchase segment, the cloud; a
  segment with no GPU says "no <segment> GPU holds this work" (plus "within $<budget>",
  "by the deadline"); no cloud: "no priced cloud GPU holds this work".
- A5 ``advice.py:_cpu_row``: the CPU row says "misses the deadline" when its run takes
  longer than the deadline.
- A6 ``options.py:_option``: a run is samples / throughput; it meets the deadline when
  it takes at most the deadline; its spread scales with the step's.
- A7 ``options.py:_smallest_box`` / ``_fitting``: inference stays on one GPU; training
  tries 1, 2, 4 (8 for datacenter GPUs) and, per size, plain data parallel before fully
  sharded; the smallest box that fits and meets the deadline, else the fastest that
  fits, else the single GPU that does not fit.
- A8 ``options.py:pick_purchase``: only options of the segment that fit and meet the
  deadline; with a budget, the fastest whose box costs at most the budget; without,
  the least price x time among priced options, the fastest unpriced one only when none
  is priced.
- A9 ``options.py:pick_cloud``: the cheapest per run among options with an on-demand
  price that fit and meet the deadline; on a tie, the faster.
- A10 ``options.py:_fit_note`` / ``cloud_row``: "N GPUs: <fit>" for a box, ", fully
  sharded (FSDP/ZeRO-3)" when sharded, "misses the deadline" when it does; the cloud
  row's hourly price is per box.
- A11 ``options.py:purchase_row``: no list price: no break-even; else the break-even
  against renting the same GPU when it has a price and a TDP, else against the cloud
  option; its weeks are its hours over the hours per week.
- A12 ``cost.py:break_even_hours_same_gpu`` / ``break_even_hours``: buying pays back
  only when renting saves more than the electricity (a saving above zero).
- A13 ``fitcheck.py:check`` / ``fits`` / ``_dtype``: "needs X of Y GiB usable" when it
  fits, "does not fit: needs X GiB, Y GiB usable per GPU" when not, "memory fit
  unavailable (<error>)" when fit fails; tf32 and fp64 are asked of fit as fp32. (Where
  need meets usable is fit's rule, ``fit/on_gpu.py``, not this module's.)
- A14 ``multi.py:max_box`` / ``link`` / ``comm``: an SoC is one chip, a datacenter GPU
  boxes 8, others 4; NVLink for modules at any size and for a PCIe bridge only in pairs,
  else PCIe of the card's generation (gen4 when unknown); one GPU has no communication;
  ZeRO-3 all-gathers the weights, anything less all-reduces fp32 gradients.

Each expected value is worked out by hand in the comment beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gpuscout._types import Result
from gpuscout.catalog import CloudPrice, GpuSpec
from gpuscout.errors import UsageError
from gpuscout.predict import advice, cost, fitcheck, multi
from gpuscout.predict import options as opt
from gpuscout.predict.basis import Basis
from gpuscout.predict.project import Calibrated
from gpuscout.predict.records import Projection

GiB = 2**30


def spec(gid: str, segment: str = "consumer", price: float | None = 1000.0, **kw: Any) -> GpuSpec:
    base = GpuSpec(
        id=gid, name=gid.upper(), vendor="NVIDIA", segment=segment, architecture="ada",
        release_year=2022, memory_gb=24.0, memory_type="GDDR6X", memory_bandwidth_gbs=1008.0,
        fp32_tflops=82.6, nvlink=False, ecc=False, form_factor="pcie", source=("test",),
        tdp_w=400.0, pcie_gen=4, launch_price_usd=price,
    )  # fmt: skip
    return replace(base, **kw)


def proj(s: GpuSpec, throughput: float, gpus: int = 1, fits: bool | None = True, zero: int = 0,
         note: str = "needs 10.0 of 22 GiB usable") -> Projection:  # fmt: skip
    return Projection(
        workload="cnn", result_name="cnn/tuned", gpu_id=s.id, gpu_name=s.name,
        segment=s.segment, gpus=gpus, precision="bf16", step_s=1.0, step_low_s=0.5,
        step_high_s=1.5, throughput=throughput, throughput_unit="images/s", bound="compute",
        fits=fits, fit_note=note, speedup=None, basis="test", assumptions=(), zero=zero,
    )  # fmt: skip


def option(s: GpuSpec, run_s: float, gpus: int = 1, fits: bool | None = True,
           meets: bool = True, zero: int = 0) -> opt.Option:  # fmt: skip
    """An option running ``run_s`` per run (its spread 0.5x-1.5x)."""
    p = proj(s, 1.0, gpus, fits, zero)
    return opt.Option(s, p, run_s, run_s / 2, run_s * 1.5, meets)


def price(gid: str, per_hour: float) -> CloudPrice:
    return CloudPrice(gid, "lambda", "gpu_1x", 1, per_hour, "2025-01-15", "test")


@pytest.fixture
def prices(monkeypatch: pytest.MonkeyPatch) -> Callable[[Mapping[str, float]], None]:
    """Set the on-demand prices the options see, GPU id -> $/GPU-hour (none for others),
    so the arithmetic does not move with the catalog's prices."""

    def use(table: Mapping[str, float]) -> None:
        def cheapest(gid: str) -> CloudPrice | None:
            return price(gid, table[gid]) if gid in table else None

        monkeypatch.setattr(cost, "cheapest_price", cheapest)

    return use


def calibrated(training: bool) -> Calibrated:
    return cast(Calibrated, SimpleNamespace(basis=SimpleNamespace(training=training)))


def job(cpu_run_s: float | None) -> advice.Job:
    return advice.Job(
        calibrated(True), cpu_run_s, "measured (tuned implementation)", 1e6, "images",
        "ResNet-50 training", "one epoch",
    )  # fmt: skip


# -- A1: the inputs' ranges --------------------------------------------------------------
def mlp_cpu(flags: tuple[str, ...] = ()) -> Result:
    """The Keras MLP measured on the CPU at 5,000 images/s (one run: 60 s)."""
    extra = {
        "workload": "mlp", "impl": "tuned", "variant": None, "batch_size": 32,
        "step_time_s": 32 / 5000.0, "dtype": "fp32", "flops_per_step": 1.95e7,
        "bytes_per_step": 4.1e6, "host_ops_per_step": 50, "params": 101_770,
        "flags": list(flags),
    }  # fmt: skip
    return Result("mlp/tuned", "cpu", 5000.0, "images/s", extra=extra)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"hours_per_week": 0.0}, "--hours-per-week must be in (0, 168], not 0",
                     id="A1-hours-at-0-refused"),
        pytest.param({"hours_per_week": 0.5}, None, id="A1-hours-above-0-taken"),
        pytest.param({"hours_per_week": 168.0}, None, id="A1-hours-at-168-taken"),
        pytest.param({"hours_per_week": 168.5}, "--hours-per-week must be in (0, 168], not 168.5",
                     id="A1-hours-above-168-refused"),
        pytest.param({"price_kwh": 0.0}, None, id="A1-kwh-at-0-taken"),
        pytest.param({"price_kwh": -0.01}, "--price-kwh must be zero or more, not -0.01",
                     id="A1-kwh-below-0-refused"),
        pytest.param({"price_kwh": math.inf}, "--price-kwh must be zero or more, not inf",
                     id="A1-kwh-infinite-refused"),
        pytest.param({"budget_usd": 0.0}, "--budget must be more than zero, not 0",
                     id="A1-budget-at-0-refused"),
        pytest.param({"budget_usd": 0.01}, None, id="A1-budget-above-0-taken"),
        pytest.param({"deadline_hours": 0.0}, "--deadline-hours must be more than zero, not 0",
                     id="A1-deadline-at-0-refused"),
        pytest.param({"deadline_hours": math.inf},
                     "--deadline-hours must be more than zero, not inf",
                     id="A1-deadline-infinite-refused"),
        pytest.param({"samples": 0.0}, "--samples must be more than zero, not 0",
                     id="A1-samples-at-0-refused"),
        pytest.param({"samples": 1.0}, None, id="A1-samples-above-0-taken"),
        pytest.param({"mode": "serve"}, "unknown mode 'serve'", id="A1-mode-unknown-refused"),
        pytest.param({"workload": "mlp", "model": "llama-3-8b"},
                     "give --workload or --model, not both", id="A2-workload-and-model-refused"),
    ],
)  # fmt: skip
def test_a1_a2_inputs_out_of_range_are_refused_with_the_value(
    kwargs: dict[str, Any], error: str | None
) -> None:
    if error is None:
        assert advice.advise(results=[mlp_cpu()], gpus=[], **kwargs).verdict
        return
    with pytest.raises(UsageError) as err:
        advice.advise(results=[mlp_cpu()], gpus=[], **kwargs)
    assert err.value.message == error


# -- A3: the disturbed-measurement lead --------------------------------------------------
# One run of the MLP is 5 epochs of 60,000 images at 5,000/s = 60 s ("60 s"), under 10 min:
# the CPU, and with no GPU to consider, "no GPU option holds it".
QUIET = "Stay on the CPU: a run is short enough here, and no GPU option holds it."
LEAD = "From disturbed measurements, not to be trusted until a quiet rerun: "


@pytest.mark.parametrize(
    ("flags", "lead"),
    [
        pytest.param((), "", id="A3-quiet-no-lead"),
        pytest.param(("host-busy",), LEAD, id="A3-busy-host-lead"),
        pytest.param(("throttled",), LEAD, id="A3-throttled-gpu-lead"),
    ],
)
def test_a3_disturbed_figures_lead_the_verdict_with_a_warning(
    flags: tuple[str, ...], lead: str
) -> None:
    quiet = advice.advise(results=[mlp_cpu()], gpus=[]).verdict
    assert quiet.endswith("60 s on this machine's CPU. " + QUIET)
    assert not quiet.startswith(LEAD)
    assert advice.advise(results=[mlp_cpu(flags)], gpus=[]).verdict == lead + quiet


# -- A4: the rows and the words of an empty one ------------------------------------------
@pytest.mark.parametrize(
    ("budget", "deadline_s", "why"),
    [
        pytest.param(None, None, "no {} GPU holds this work", id="A4-empty-plain"),
        pytest.param(1500.0, None, "no {} GPU holds this work within $1,500",
                     id="A4-empty-within-budget"),
        pytest.param(None, 3600.0, "no {} GPU holds this work by the deadline",
                     id="A4-empty-by-deadline"),
        pytest.param(1500.0, 3600.0, "no {} GPU holds this work within $1,500 by the deadline",
                     id="A4-empty-budget-and-deadline"),
    ],
)  # fmt: skip
def test_a4_an_empty_segment_says_why(
    budget: float | None, deadline_s: float | None, why: str,
    prices: Callable[[Mapping[str, float]], None],
) -> None:  # fmt: skip
    prices({})
    rows = advice._rows(job(600.0), [], budget, 0.15, 10.0, deadline_s)
    assert [r.option for r in rows] == ["cpu", "consumer", "workstation", "datacenter", "cloud"]
    segments = ("consumer", "workstation", "datacenter")
    assert [r.note for r in rows[1:4]] == [why.format(s) for s in segments]
    assert rows[4].note == "no priced cloud GPU holds this work"
    assert all(r.gpu_name == "none" and r.time_per_run_s is None for r in rows[1:])


def test_a4_a_filled_segment_and_the_cloud(prices: Callable[[Mapping[str, float]], None]) -> None:
    # A consumer card bought at $1,000 and rented at $1.10/h; it is also the cloud pick:
    # 3,600 s x $1.10/h = $1.10 per run.
    prices({"card": 1.10})
    rows = advice._rows(job(7200.0), [option(spec("card"), 3600.0)], None, 0.25, 10.0, None)
    assert [(r.option, r.gpu_name) for r in rows] == [
        ("cpu", "this machine's CPU"), ("consumer", "CARD"), ("workstation", "none"),
        ("datacenter", "none"), ("cloud", "CARD"),
    ]  # fmt: skip
    assert rows[4].cloud_usd_per_run == pytest.approx(1.10)


# -- A5: the CPU row and the deadline ----------------------------------------------------
@pytest.mark.parametrize(
    ("deadline_s", "note"),
    [
        pytest.param(None, "measured (tuned implementation)", id="A5-no-deadline"),
        pytest.param(901.0, "measured (tuned implementation)", id="A5-cpu-below-deadline"),
        pytest.param(900.0, "measured (tuned implementation)", id="A5-cpu-at-deadline"),
        pytest.param(899.0, "measured (tuned implementation); misses the deadline",
                     id="A5-cpu-above-deadline-misses"),
    ],
)  # fmt: skip
def test_a5_the_cpu_row_says_when_it_misses_the_deadline(
    deadline_s: float | None, note: str
) -> None:
    r = advice._cpu_row(job(900.0), deadline_s)
    assert (r.option, r.gpu_name, r.time_per_run_s, r.note) == (
        "cpu",
        "this machine's CPU",
        900.0,
        note,
    )


# -- A6, A7: the box per GPU kind ----------------------------------------------------
Table = Mapping[tuple[int, int], tuple[float, bool | None]]


def boxes(monkeypatch: pytest.MonkeyPatch, table: Table) -> None:
    """Projections by (GPUs, ZeRO stage) -> (throughput per box, fits); none elsewhere."""

    def project_one(c: Calibrated, s: GpuSpec, *, gpus: int, zero: int) -> Projection | None:
        if (gpus, zero) not in table:
            return None
        tp, fits = table[(gpus, zero)]
        return proj(s, tp, gpus, fits, zero)

    monkeypatch.setattr(opt, "project_one", project_one)


# 3,600 samples per run. Deadline 1,800 s: throughput 2/s gives 3,600 / 2 = 1,800 s (at,
# met); 1.8/s gives 2,000 s (above, missed); 2.4/s gives 1,500 s (below, met). Its spread
# is the step's, 0.5-1.5: 900-2,700 s at 2/s.
@pytest.mark.parametrize(
    ("tp", "run_s", "meets"),
    [
        pytest.param(2.4, 1500.0, True, id="A6-run-below-deadline-meets"),
        pytest.param(2.0, 1800.0, True, id="A6-run-at-deadline-meets"),
        pytest.param(1.8, 2000.0, False, id="A6-run-above-deadline-misses"),
    ],
)
def test_a6_a_run_meets_the_deadline_when_it_takes_at_most_the_deadline(
    tp: float, run_s: float, meets: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    boxes(monkeypatch, {(1, 0): (tp, True)})
    (o,) = opt.candidates(calibrated(False), [spec("card")], 3600.0, 1800.0)
    assert (o.run_s, o.low_s, o.high_s, o.meets_deadline) == pytest.approx(
        (run_s, run_s / 2, run_s * 1.5, meets)
    )


# 3,600 samples, deadline 1,000 s. Each row: the box table, whether it is training, the
# segment, and the (GPUs, ZeRO stage, fits) of the option chosen.
BOXES = [
    # Inference: one GPU, even when it does not fit and two would.
    pytest.param({(1, 0): (10.0, False), (2, 0): (20.0, True)}, False, "consumer", (1, 0, False),
                 id="A7-inference-one-gpu-only"),
    # Training: the same table gives two GPUs.
    pytest.param({(1, 0): (10.0, False), (2, 0): (20.0, True)}, True, "consumer", (2, 0, True),
                 id="A7-training-tries-two"),
    # One GPU at 3.6/s: 1,000 s, at the deadline: kept.
    pytest.param({(1, 0): (3.6, True), (2, 0): (7.2, True)}, True, "consumer", (1, 0, True),
                 id="A7-one-gpu-at-deadline-kept"),
    # One GPU at 3.5/s: 1,028.6 s, above it: two GPUs at 7.2/s (500 s).
    pytest.param({(1, 0): (3.5, True), (2, 0): (7.2, True)}, True, "consumer", (2, 0, True),
                 id="A7-one-gpu-above-deadline-two"),
    # Two GPUs: plain data parallel does not fit, sharded does: ZeRO-3.
    pytest.param({(1, 0): (10.0, False), (2, 0): (20.0, False), (2, 3): (15.0, True)}, True,
                 "consumer", (2, 3, True), id="A7-ddp-first-then-sharded"),
    # Both fit: plain data parallel first.
    pytest.param({(1, 0): (10.0, False), (2, 0): (20.0, True), (2, 3): (25.0, True)}, True,
                 "consumer", (2, 0, True), id="A7-ddp-before-sharded"),
    # None meets 1,000 s: the fastest that fits, 4 GPUs at 3.4/s (1,059 s) against 2 at
    # 3.0/s (1,200 s) and 1 at 2.0/s (1,800 s).
    pytest.param({(1, 0): (2.0, True), (2, 0): (3.0, True), (4, 0): (3.4, True)}, True,
                 "consumer", (4, 0, True), id="A7-deadline-missed-fastest-fitting"),
    # Nothing fits: the single GPU that does not.
    pytest.param({(1, 0): (2.0, False), (2, 0): (3.0, False), (2, 3): (3.0, False),
                  (4, 0): (6.0, False), (4, 3): (6.0, False)}, True, "consumer", (1, 0, False),
                 id="A7-nothing-fits-single-gpu"),
    # Only 8 fit: a consumer card boxes at most 4 ...
    pytest.param({(1, 0): (1.0, False), (8, 0): (80.0, True)}, True, "consumer", (1, 0, False),
                 id="A7-consumer-box-at-most-4"),
    # ... a datacenter card 8 (2 and 4 absent: no projection, tried and passed over).
    pytest.param({(1, 0): (1.0, False), (2, 0): (2.0, False), (2, 3): (2.0, False),
                  (4, 0): (4.0, False), (4, 3): (4.0, False), (8, 0): (80.0, True)}, True,
                 "datacenter", (8, 0, True), id="A7-datacenter-box-up-to-8"),
]  # fmt: skip


@pytest.mark.parametrize(("table", "training", "segment", "chosen"), BOXES)
def test_a7_the_smallest_box_that_fits_and_meets_the_deadline(
    table: Table, training: bool, segment: str, chosen: tuple[int, int, bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    boxes(monkeypatch, table)
    (o,) = opt.candidates(calibrated(training), [spec("card", segment)], 3600.0, 1000.0)
    assert (o.gpus, o.proj.zero, o.proj.fits) == chosen


def test_a7_no_projection_no_option(monkeypatch: pytest.MonkeyPatch) -> None:
    boxes(monkeypatch, {})
    assert opt.candidates(calibrated(True), [spec("card")], 3600.0, None) == []


# -- A8: the purchase per segment ----------------------------------------------------
A = spec("a", price=1000.0)  # 100 s: price x time = 100,000
B = spec("b", price=1600.0)  # 60 s: 96,000
FREE = spec("u", price=None)  # no list price, 50 s: fastest of all


@pytest.mark.parametrize(
    ("options", "budget", "picked"),
    [
        # Budget against a $1,600 card: just below refuses it; at and above take it.
        pytest.param([option(B, 60.0)], 1599.0, None, id="A8-budget-below-price-none"),
        pytest.param([option(B, 60.0)], 1600.0, "b", id="A8-budget-at-price-taken"),
        pytest.param([option(B, 60.0)], 1601.0, "b", id="A8-budget-above-price-taken"),
        # A box of two $1,000 cards costs $2,000.
        pytest.param([option(A, 50.0, gpus=2)], 1999.0, None, id="A8-budget-box-below-none"),
        pytest.param([option(A, 50.0, gpus=2)], 2000.0, "a", id="A8-budget-box-at-taken"),
        # Within the budget, the fastest (B, 70 s), not the best per dollar (A: 100,000
        # against B's 1,600 x 70 = 112,000).
        pytest.param([option(A, 100.0), option(B, 70.0)], 2000.0, "b",
                     id="A8-budget-fastest-within"),
        pytest.param([option(A, 100.0), option(B, 70.0)], 1500.0, "a",
                     id="A8-budget-excludes-dearer"),
        pytest.param([option(FREE, 50.0)], 5000.0, None, id="A8-budget-excludes-unpriced"),
        # No budget: the least price x time: B (96,000 < 100,000); B at 63 s (100,800) loses.
        pytest.param([option(A, 100.0), option(B, 60.0)], None, "b",
                     id="A8-per-dollar-b-below-a"),
        pytest.param([option(A, 100.0), option(B, 63.0)], None, "a",
                     id="A8-per-dollar-b-above-a"),
        # An unpriced card is only taken when no card has a price.
        pytest.param([option(A, 100.0), option(FREE, 50.0)], None, "a",
                     id="A8-priced-before-unpriced"),
        pytest.param([option(FREE, 50.0), option(replace(FREE, id="v"), 40.0)], None, "v",
                     id="A8-only-unpriced-fastest"),
        # Not fitting, missing the deadline, or another segment: never.
        pytest.param([option(A, 100.0, fits=False)], None, None, id="A8-unfit-excluded"),
        pytest.param([option(A, 100.0, meets=False)], None, None, id="A8-late-excluded"),
        pytest.param([option(replace(A, segment="workstation"), 100.0)], None, None,
                     id="A8-other-segment-excluded"),
        pytest.param([option(A, 100.0, fits=None)], None, "a", id="A8-fit-unknown-taken"),
    ],
)  # fmt: skip
def test_a8_the_purchase_of_a_segment(
    options: list[opt.Option], budget: float | None, picked: str | None
) -> None:
    got = opt.pick_purchase(options, "consumer", budget)
    assert (got.spec.id if got is not None else None) == picked


# -- A9: the cloud pick --------------------------------------------------------------
@pytest.mark.parametrize(
    ("table", "options", "picked", "per_run"),
    [
        # A: $2/h x 3,600 s = $2.00; B: $3/h x 1,800 s = $1.50: B.
        pytest.param({"a": 2.0, "b": 3.0}, [option(A, 3600.0), option(B, 1800.0)], "b", 1.5,
                     id="A9-cheaper-per-run"),
        # A: $2/h x 1,800 s = $1.00; B: $1/h x 3,600 s = $1.00: a tie, A is faster.
        pytest.param({"a": 2.0, "b": 1.0}, [option(B, 3600.0), option(A, 1800.0)], "a", 1.0,
                     id="A9-tie-faster"),
        pytest.param({"a": 2.0, "b": 1.0}, [option(A, 1800.0), option(B, 3600.0)], "a", 1.0,
                     id="A9-tie-faster-listed-first"),
        # B at $1/h x 3,599 s = $0.9997: just cheaper than A's $1.00.
        pytest.param({"a": 2.0, "b": 1.0}, [option(A, 1800.0), option(B, 3599.0)], "b",
                     3599 / 3600, id="A9-just-cheaper-wins"),
        # Two GPUs: 2 x $2/h x 1,800 s = $2.00 against one B at $2.50.
        pytest.param({"a": 2.0, "b": 2.5}, [option(A, 1800.0, gpus=2), option(B, 3600.0)], "a",
                     2.0, id="A9-box-priced-per-gpu"),
        pytest.param({"a": 2.0}, [option(A, 3600.0), option(B, 60.0)], "a", 2.0,
                     id="A9-unpriced-skipped"),
        pytest.param({"a": 2.0, "b": 0.1}, [option(A, 3600.0), option(B, 60.0, fits=False)], "a",
                     2.0, id="A9-unfit-skipped"),
        pytest.param({"a": 2.0, "b": 0.1}, [option(A, 3600.0), option(B, 60.0, meets=False)],
                     "a", 2.0, id="A9-late-skipped"),
        pytest.param({}, [option(A, 3600.0)], None, None, id="A9-no-price-no-cloud"),
    ],
)  # fmt: skip
def test_a9_the_cheapest_cloud_option_per_run(
    table: Mapping[str, float], options: list[opt.Option], picked: str | None,
    per_run: float | None, prices: Callable[[Mapping[str, float]], None],
) -> None:  # fmt: skip
    prices(table)
    got = opt.pick_cloud(options)
    if picked is None:
        assert got is None
        return
    assert got is not None
    assert (got[0].spec.id, got[1].usd_per_gpu_hour) == (picked, table[picked])
    assert got[2] == pytest.approx(per_run)


# -- A10: the note of a configuration, and the cloud row --------------------------------
@pytest.mark.parametrize(
    ("o", "note", "per_hour"),
    [
        pytest.param(option(A, 3600.0), "lambda gpu_1x, seen 2025-01-15; needs 10.0 of 22 GiB "
                     "usable", 2.0, id="A10-one-gpu"),
        pytest.param(option(A, 3600.0, gpus=2), "lambda gpu_1x, seen 2025-01-15; 2 GPUs: needs "
                     "10.0 of 22 GiB usable", 4.0, id="A10-box-of-two"),
        pytest.param(option(A, 3600.0, gpus=4, zero=3), "lambda gpu_1x, seen 2025-01-15; 4 GPUs, "
                     "fully sharded (FSDP/ZeRO-3): needs 10.0 of 22 GiB usable", 8.0,
                     id="A10-sharded-box"),
        pytest.param(option(A, 3600.0, meets=False), "lambda gpu_1x, seen 2025-01-15; needs "
                     "10.0 of 22 GiB usable; misses the deadline", 2.0, id="A10-late"),
    ],
)  # fmt: skip
def test_a10_the_cloud_row_says_the_box_and_prices_it(
    o: opt.Option, note: str, per_hour: float
) -> None:
    # $2 per GPU-hour, 3,600 s: the box's hourly price, and per run the same number.
    r = opt.cloud_row(o, price("a", 2.0), per_hour)
    assert (r.option, r.gpu_name, r.gpus, r.note) == ("cloud", "A", o.gpus, note)
    assert r.cloud_usd_per_hour == pytest.approx(per_hour)
    assert (r.cloud_provider, r.cloud_price_date) == ("lambda", "2025-01-15")


# -- A11: a purchase row and its break-even -------------------------------------------
# A 400 W card at $0.25/kWh costs 0.4 kW x $0.25 = $0.10 per hour to run; bought at
# $1,000 and rented at $1.10/h it saves $1.00 an hour: 1,000 hours, 100 weeks at 10 h/week.
CLOUD = opt.cloud_row(option(spec("h100"), 3600.0), price("h100", 1.10), 1.10)


@pytest.mark.parametrize(
    ("s", "gpus", "table", "hours", "note"),
    [
        pytest.param(spec("a"), 1, {"a": 1.10}, 1000.0,
                     "needs 10.0 of 22 GiB usable; break-even against renting the same GPU",
                     id="A11-same-gpu-rented"),
        # Two cards: $2,000 against 2 x $1.10 - 2 x $0.10 = $2.00 an hour: 1,000 hours.
        pytest.param(spec("a"), 2, {"a": 1.10}, 1000.0,
                     "2 GPUs: needs 10.0 of 22 GiB usable; break-even against renting the "
                     "same GPU", id="A11-box-same-gpu-rented"),
        # Not rented itself: against the cloud row's $1.10 per 3,600 s run, saving $1.00 a
        # run of one hour on the card bought: 1,000 hours.
        pytest.param(spec("a"), 1, {}, 1000.0,
                     "needs 10.0 of 22 GiB usable; break-even against the cloud option (H100)",
                     id="A11-against-cloud-option"),
        # Renting at $0.10/h saves nothing over the electricity: never (the note still
        # names the basis).
        pytest.param(spec("a"), 1, {"a": 0.10}, None,
                     "needs 10.0 of 22 GiB usable; break-even against renting the same GPU",
                     id="A11-saving-at-zero-never"),
        pytest.param(spec("a", price=None), 1, {"a": 1.10}, None,
                     "needs 10.0 of 22 GiB usable; no list price published",
                     id="A11-no-list-price"),
        # No TDP: no electricity, so no break-even at all.
        pytest.param(spec("a", tdp_w=None), 1, {"a": 1.10}, None,
                     "needs 10.0 of 22 GiB usable", id="A11-no-tdp"),
    ],
)  # fmt: skip
def test_a11_a_purchase_breaks_even_against_renting(
    s: GpuSpec, gpus: int, table: Mapping[str, float], hours: float | None, note: str,
    prices: Callable[[Mapping[str, float]], None],
) -> None:  # fmt: skip
    prices(table)
    r = opt.purchase_row("consumer", option(s, 3600.0, gpus=gpus), 0.25, 10.0, CLOUD)
    assert r.note == note
    if hours is None:
        assert (r.break_even_hours, r.break_even_weeks) == (None, None)
    else:
        assert (r.break_even_hours, r.break_even_weeks) == pytest.approx((hours, hours / 10))
    if s.tdp_w is not None:  # 400 W x GPUs x 1 h x $0.25/kWh
        assert r.electricity_usd_per_run == pytest.approx(0.1 * gpus)


# -- A12: break-even needs a saving above zero ----------------------------------------
@pytest.mark.parametrize(
    ("cloud_h", "hours"),
    [
        pytest.param(0.09, None, id="A12-renting-below-electricity-never"),
        pytest.param(0.10, None, id="A12-renting-at-electricity-never"),
        pytest.param(0.35, 4000.0, id="A12-renting-above-electricity"),  # 1000 / 0.25
    ],
)
def test_a12_buying_pays_back_only_when_renting_costs_more_than_power(
    cloud_h: float, hours: float | None
) -> None:
    # $1,000 bought, $0.10 an hour of electricity.
    got = cost.break_even_hours_same_gpu(1000.0, cloud_h, 0.10)
    assert got == (None if hours is None else pytest.approx(hours))
    # Per run, one hour a run: the same rule and the same number.
    per_run = cost.break_even_hours(1000.0, 3600.0, 0.10, cloud_h)
    assert per_run == (None if hours is None else pytest.approx(hours))


# -- A13: the memory fit in words ---------------------------------------------------------
@pytest.mark.parametrize(
    ("got", "answer"),
    [
        pytest.param(SimpleNamespace(fits=True, need_bytes=10.5 * GiB, usable_bytes=22 * GiB),
                     (True, "needs 10.5 of 22 GiB usable"), id="A13-fits"),
        pytest.param(SimpleNamespace(fits=False, need_bytes=30 * GiB, usable_bytes=22 * GiB),
                     (False, "does not fit: needs 30.0 GiB, 22 GiB usable per GPU"),
                     id="A13-does-not-fit"),
        pytest.param(ValueError("no such model"),
                     (None, "memory fit unavailable (ValueError)"), id="A13-fit-fails"),
    ],
)  # fmt: skip
def test_a13_the_fit_in_words(
    got: object, answer: tuple[bool | None, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gpuscout.fit

    def fit_on(req: object, s: GpuSpec) -> object:
        if isinstance(got, Exception):
            raise got
        return got

    monkeypatch.setattr(gpuscout.fit, "fit_on", fit_on)
    assert fitcheck.check(object(), spec("a")) == answer


def test_a13_a_request_that_cannot_be_made_costs_only_the_answer() -> None:
    broken = cast(Basis, SimpleNamespace())  # no workload: the request cannot be built
    assert fitcheck.fits(broken, spec("a"), "bf16") == (
        None, "memory fit unavailable (AttributeError)"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("precision", "dtype"),
    [
        pytest.param("tf32", "fp32", id="A13-tf32-as-fp32"),
        pytest.param("fp64", "fp32", id="A13-fp64-as-fp32"),
        pytest.param("int8", "int8", id="A13-int8-kept"),
        pytest.param("bf16", "bf16", id="A13-bf16-kept"),
    ],
)
def test_a13_the_precision_fit_is_asked_in(precision: str, dtype: str) -> None:
    assert fitcheck._dtype(precision) == dtype


# -- A14: multi-GPU boxes ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("s", "most"),
    [
        pytest.param(spec("m", form_factor="soc"), 1, id="A14-soc-one-chip"),
        pytest.param(spec("c"), 4, id="A14-consumer-four"),
        pytest.param(spec("w", "workstation"), 4, id="A14-workstation-four"),
        pytest.param(spec("d", "datacenter"), 8, id="A14-datacenter-eight"),
    ],
)
def test_a14_how_many_gpus_one_machine_takes(s: GpuSpec, most: int) -> None:
    assert (multi.max_box(s), multi.supports_boxes(s)) == (most, most > 1)


SXM = spec("s", "datacenter", form_factor="sxm", nvlink=True, nvlink_bandwidth_gbs=900.0)
BRIDGE = spec("r", nvlink=True, nvlink_bandwidth_gbs=112.5)


@pytest.mark.parametrize(
    ("s", "n", "gbs", "name"),
    [
        # NVLink's figure is both ways: half of it per direction.
        pytest.param(SXM, 8, 450.0, "NVLink (900 GB/s)", id="A14-module-nvlink-any-size"),
        pytest.param(BRIDGE, 2, 56.25, "NVLink (112.5 GB/s)", id="A14-bridge-pair-nvlink"),
        pytest.param(BRIDGE, 4, 31.5, "PCIe gen4 x16", id="A14-bridge-four-pcie"),
        pytest.param(replace(BRIDGE, nvlink_bandwidth_gbs=None), 2, 31.5, "PCIe gen4 x16",
                     id="A14-nvlink-without-bandwidth-pcie"),
        pytest.param(spec("g5", pcie_gen=5), 2, 63.0, "PCIe gen5 x16", id="A14-pcie-gen5"),
        pytest.param(spec("g0", pcie_gen=None), 2, 31.5, "PCIe gen4 x16",
                     id="A14-pcie-unknown-gen4"),
        pytest.param(spec("g7", pcie_gen=7), 2, 31.5, "PCIe gen7 x16",
                     id="A14-pcie-unlisted-gen-gen4-rate"),
    ],
)  # fmt: skip
def test_a14_the_link_between_the_gpus(s: GpuSpec, n: int, gbs: float, name: str) -> None:
    ln = multi.link(s, n)
    assert ln.gbs == pytest.approx(gbs)
    assert ln.name == name


# 6,553,600 parameters: 25 MiB of fp32 gradients (one bucket), 12.5 MiB in bf16. Two
# GPUs on PCIe gen4 (31.5 GB/s x 0.8 = 25.2 GB/s):
#   DDP:    2 x 1/2 x 26,214,400 B / 25.2e9 + 1 bucket x 1 x 2 x 1 x 5 us = 1.0502e-3 s
#   ZeRO-3: 3 x 1/2 x 13,107,200 B / 25.2e9 + 1 bucket x 3 x 2 x 1 x 5 us = 0.8102e-3 s
P = 6_553_600
DDP_S = 26_214_400 / 25.2e9 + 1e-5
FSDP_S = 1.5 * 13_107_200 / 25.2e9 + 3e-5


@pytest.mark.parametrize(
    ("n", "zero", "total"),
    [
        # (At one GPU the formulas give 0 too: 2 x 0/1 of the bytes, 0 ring steps.)
        pytest.param(1, 0, 0.0, id="A14-one-gpu-no-comm"),
        pytest.param(2, 0, DDP_S, id="A14-two-gpus-ddp"),
        pytest.param(2, 2, DDP_S, id="A14-zero-2-below-3-all-reduce"),
        pytest.param(2, 3, FSDP_S, id="A14-zero-3-all-gather"),
    ],
)
def test_a14_the_communication_of_one_step(n: int, zero: int, total: float) -> None:
    got = multi.comm(P, n, spec("c"), 0.01, zero=zero, elem_bytes=2)
    assert got.total_s == pytest.approx(total)
