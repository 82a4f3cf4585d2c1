"""Every rule of the verdict (``predict/wording.py``), one table per rule, a row on each
side of each boundary, with the words and numbers a person reads.

The rules, where they live:

- V1 ``wording.py:_cpu_is_enough``: a CPU run of at most ``CPU_IS_ENOUGH_S`` (600 s)
  stays on the CPU ("Stay on the CPU: a run is short enough here ...").
- V2 ``wording.py:_cpu_is_enough``: a CPU run less than ``MIN_GPU_SPEEDUP`` (2x) times
  the fastest GPU's stays on the CPU; at exactly 2x or more a GPU is recommended.
- V3 ``wording.py:_feasible``: an option is recommended only if it has a time, is not
  known not to fit, is a real GPU (not an empty "none" row) and, with a deadline, takes
  at most the deadline (the CPU too: a CPU that misses the deadline is not kept).
- V4 ``wording.py:_pays_back`` / ``recommend``: a purchase is recommended only if it
  pays back within ``HORIZON_WEEKS`` (104 weeks) of use; beyond, the cloud is.
- V5 ``wording.py:recommend`` / ``_payback_order``: of the purchases that pay back, the
  soonest; on a tie, the faster.
- V6 ``wording.py:recommend``: no purchase pays back: the cloud row; no cloud row
  either: the fastest GPU that holds the work.
- V7 ``wording.py:verdict_text``: the head says the CPU's time per run, or that the CPU
  was not measured; a deadline is stated when there is one.
- V8 ``wording.py:verdict_text``: nothing feasible: "No option in the catalog holds this
  work" (plus "by the deadline" when there is one).
- V9 ``wording.py:_stay_on_cpu``: staying on the CPU names the fastest feasible GPU and
  its time, or says no GPU option holds the work.
- V10 ``wording.py:verdict_text`` / ``_gpu_words`` / ``_range``: several GPUs read
  "N x name (one GPU is not enough)"; a time with a spread reads "t (low-high)".
- V11 ``wording.py:_cloud_words``: renting names its price, provider, date and cost per
  run, then the purchase that would pay back soonest (by hours), when there is one.
- V12 ``wording.py:_purchase_words``: buying names the price or "no list price
  published (ask a vendor)", then the break-even when there is one.
- V13 ``wording.py:verdict_text``: uncalibrated times say that nothing was measured on
  a GPU.
- V14 ``wording.py:duration``: seconds under 10 to 2 significant digits, under 120 in
  seconds, under 2 h in minutes, under 3 days in hours, under 100 days in days to a
  tenth, under 3 years in whole days, else years.
- V15 ``wording.py:usd``: whole dollars from $100, cents from $0.01 (and $0), hundredths
  of a cent from $0.0001, "<$0.0001" below, a sign in front.
- V16 ``wording.py:pro_vs_consumer``: the consumer pick against the workstation pick,
  else the datacenter pick, else nothing; price per performance "n/a (no list price)"
  without a price; FP64 tensor before vector before "n/a"; ECC yes/no.
- V17 ``wording.py:_cooling`` and ``_link``: SXM/OAM/superchip modules, else by segment;
  a single chip, NVLink (a PCIe bridge joins pairs), else no NVLink and the PCIe link.
- V18 ``wording.py:assumptions``: the stated rule carries the constants (104 weeks,
  10 min, 2x) and what the GPU times are calibrated on.

Every expected string is worked out by hand from the rule in the comment beside it.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gpuscout.catalog import GpuSpec
from gpuscout.predict import wording as w
from gpuscout.predict.project import Calibrated
from gpuscout.predict.records import CostRow

WHAT = "ResNet-50 training, one run = one epoch: "
DATE = "2025-01-15"


def row(option: str, name: str, t: float | None, **kw: Any) -> CostRow:
    """One option as ``advise`` would have made it; what a rule reads is set by ``kw``."""
    base = CostRow(
        option=option,
        gpu_id=name.lower().replace(" ", "-"),
        gpu_name=name,
        gpus=1,
        time_per_run_s=t,
        fits=True,
        buy_usd=None,
        electricity_usd_per_run=None,
        cloud_usd_per_hour=None,
        cloud_price_date=None,
        cloud_provider=None,
        cloud_usd_per_run=None,
        break_even_hours=None,
        note="",
    )
    return replace(base, **kw)


def cpu(t: float | None) -> CostRow:
    return row("cpu", "this machine's CPU", t, gpu_id=None, gpus=0, fits=None)


def cloud(t: float, per_run: float, per_hour: float = 2.0, **kw: Any) -> CostRow:
    """The H100 SXM rented from lambda at ``per_hour`` (the rows here carry $2/h)."""
    return row(
        "cloud", "H100 SXM", t, cloud_usd_per_hour=per_hour, cloud_provider="lambda",
        cloud_price_date=DATE, cloud_usd_per_run=per_run, **kw,
    )  # fmt: skip


def buy(option: str, name: str, t: float, price: float | None, weeks: float | None) -> CostRow:
    """A purchase breaking even after ``weeks`` at 10 h/week, i.e. ``10 x weeks`` hours."""
    hours = None if weeks is None else 10 * weeks
    return row(option, name, t, buy_usd=price, break_even_hours=hours, break_even_weeks=weeks)


def empty(option: str) -> CostRow:
    return row(option, "none", None, gpu_id=None, gpus=0, fits=None)


def say(rows: list[CostRow], deadline_s: float | None = None, calibrated: bool = True) -> str:
    pick = w.recommend(rows, deadline_s)
    return w.verdict_text(
        "ResNet-50 training", "one epoch", "images", rows, pick, deadline_s, 10.0, calibrated
    )


# -- V1: a CPU run of at most 600 s stays on the CPU -----------------------------------
# The GPU (cloud, 10 s) is 60x faster, so only V1 can keep the CPU. duration(599..601)
# is 599/60 = 9.98 -> "10 min" on every row; duration(10) = "10 s"; $2/h x 10 s = $0.0056.
CLOUD_10S = cloud(10.0, 2.0 * 10 / 3600)
STAY_10S = (
    "Stay on the CPU: a run is short enough here, and the fastest GPU option (H100 SXM) "
    "would take 10 s."
)
RENT_10S = (
    "Recommended: cloud - H100 SXM, 10 s per run at $2.00/h on lambda (price seen "
    "2025-01-15), $0.0056 per run."
)


@pytest.mark.parametrize(
    ("cpu_s", "said"),
    [
        pytest.param(599.0, STAY_10S, id="V1-cpu-enough-below-600s"),
        pytest.param(600.0, STAY_10S, id="V1-cpu-enough-at-600s"),
        pytest.param(601.0, RENT_10S, id="V1-cpu-enough-above-600s"),
    ],
)
def test_v1_a_cpu_run_of_at_most_ten_minutes_stays_on_the_cpu(cpu_s: float, said: str) -> None:
    rows = [cpu(cpu_s), CLOUD_10S]
    assert say(rows) == WHAT + "10 min on this machine's CPU. " + said
    assert w.recommend(rows, None) is rows[0 if said == STAY_10S else 1]


# -- V2: a GPU less than 2x faster: stay on the CPU ------------------------------------
# CPU 2,000 s ("33 min": 2000/60 = 33.3). GPU 1,001 s: 2000/1001 = 1.998x < 2 -> CPU;
# 1,000 s: exactly 2.0x, not less -> GPU; 999 s: 2.002x -> GPU. Each GPU time reads
# "17 min" (999..1001 / 60 = 16.65..16.68); the rows carry $0.56 per run.
@pytest.mark.parametrize(
    ("gpu_s", "said"),
    [
        pytest.param(
            1001.0,
            "Stay on the CPU: a run is short enough here, and the fastest GPU option "
            "(H100 SXM) would take 17 min.",
            id="V2-speedup-1.998x-below-2x-stays",
        ),
        pytest.param(
            1000.0,
            "Recommended: cloud - H100 SXM, 17 min per run at $2.00/h on lambda "
            "(price seen 2025-01-15), $0.56 per run.",
            id="V2-speedup-at-2x-gets-gpu",
        ),
        pytest.param(
            999.0,
            "Recommended: cloud - H100 SXM, 17 min per run at $2.00/h on lambda "
            "(price seen 2025-01-15), $0.56 per run.",
            id="V2-speedup-2.002x-above-2x-gets-gpu",
        ),
    ],
)
def test_v2_a_gpu_less_than_twice_as_fast_keeps_the_cpu(gpu_s: float, said: str) -> None:
    rows = [cpu(2000.0), cloud(gpu_s, 0.56)]
    assert say(rows) == WHAT + "33 min on this machine's CPU. " + said


# -- V3: what can be recommended at all ------------------------------------------------
# CPU 36,000 s = "10.0 h" (under 3 days: hours to a tenth). Deadline 3,600 s reads
# "60 min" (under 2 h: minutes). A cloud run of 3,599 or 3,600 s meets it ("60 min");
# 3,601 s misses it, and the CPU misses it too, so nothing is left.
RENT_1H = (
    "Recommended: cloud - H100 SXM, 60 min per run at $2.00/h on lambda "
    "(price seen 2025-01-15), $2.00 per run."
)
NOTHING_BY_DEADLINE = (
    "No option in the catalog holds this work by the deadline: reduce the batch or "
    "sequence length (gpuscout fit shows what fits)."
)


@pytest.mark.parametrize(
    ("gpu_s", "said"),
    [
        pytest.param(3599.0, RENT_1H, id="V3-deadline-below-met"),
        pytest.param(3600.0, RENT_1H, id="V3-deadline-at-met"),
        pytest.param(3601.0, NOTHING_BY_DEADLINE, id="V3-deadline-above-missed"),
    ],
)
def test_v3_an_option_past_the_deadline_is_never_recommended(gpu_s: float, said: str) -> None:
    rows = [cpu(36_000.0), cloud(gpu_s, 2.0)]
    head = WHAT + "10.0 h on this machine's CPU. Deadline: 60 min per run. "
    assert say(rows, deadline_s=3600.0) == head + said


# The CPU against a deadline: 500 s (8.33 -> "8 min") is short enough (V1) when the
# deadline allows it (500 <= 500), and dropped when it does not (500 > 499): the 10 s
# GPU is then recommended. Deadline 500 s reads "8 min", 499 s reads "8 min" (8.32).
@pytest.mark.parametrize(
    ("deadline_s", "said"),
    [
        pytest.param(501.0, STAY_10S, id="V3-cpu-below-deadline-stays"),
        pytest.param(500.0, STAY_10S, id="V3-cpu-at-deadline-stays"),
        pytest.param(499.0, RENT_10S, id="V3-cpu-above-deadline-dropped"),
    ],
)
def test_v3_a_cpu_that_misses_the_deadline_is_not_kept(deadline_s: float, said: str) -> None:
    head = WHAT + "8 min on this machine's CPU. Deadline: 8 min per run. "
    assert say([cpu(500.0), CLOUD_10S], deadline_s) == head + said


# Rows that can never be picked, beside a cloud row that can: the 10 s purchase would win
# on speed (no cloud) but is excluded, so the slower cloud row is recommended.
@pytest.mark.parametrize(
    "excluded",
    [
        pytest.param(replace(buy("consumer", "RTX 4090", 10.0, 1600, 1), fits=False),
                     id="V3-does-not-fit-excluded"),
        pytest.param(replace(buy("consumer", "RTX 4090", 10.0, 1600, 1), time_per_run_s=None),
                     id="V3-no-time-excluded"),
        pytest.param(replace(buy("consumer", "RTX 4090", 10.0, 1600, 1), gpu_name="none"),
                     id="V3-empty-none-row-excluded"),
    ],
)  # fmt: skip
def test_v3_an_option_without_a_fit_a_time_or_a_gpu_is_never_recommended(
    excluded: CostRow,
) -> None:
    # The purchase pays back in 1 week (V4), so only V3 keeps it out; the cloud 20 s row
    # is picked: "20 s", $2/h x 20 s = $0.011 -> "$0.01".
    rows = [cpu(36_000.0), excluded, cloud(20.0, 0.011)]
    assert w.recommend(rows, None) is rows[2]
    # (V11 then names the excluded purchase's break-even: it reads every purchase row.)
    rented = (
        WHAT + "10.0 h on this machine's CPU. Recommended: cloud - H100 SXM, 20 s per run at "
        "$2.00/h on lambda (price seen 2025-01-15), $0.01 per run"
    )
    assert say(rows).startswith(rented)


# -- V4: buy only if it pays back within 104 weeks -------------------------------------
# CPU 10 h; a $1,600 RTX 4090 at 360 s ("6 min") breaking even after 1,030 / 1,040 /
# 1,050 hours = 103 / 104 / 105 weeks at 10 h/week; a cloud H100 at 180 s ("3 min"),
# $0.10 per run. Within 104 weeks (103 and 104) the purchase; beyond (105) the cloud.
def _bought(weeks: int) -> str:
    return (
        f"Recommended: consumer - RTX 4090, 6 min per run, $1,600 to buy; it pays for "
        f"itself against renting after {weeks * 10:,} hours of use ({weeks} weeks at 10 h/week)."
    )


@pytest.mark.parametrize(
    ("weeks", "said"),
    [
        pytest.param(103, _bought(103), id="V4-payback-103-weeks-below-buys"),
        pytest.param(104, _bought(104), id="V4-payback-at-104-weeks-buys"),
        pytest.param(
            105,
            "Recommended: cloud - H100 SXM, 3 min per run at $2.00/h on lambda (price seen "
            "2025-01-15), $0.10 per run; buying (RTX 4090, $1,600) would pay back only after "
            "1,050 hours of use (105 weeks at 10 h/week).",
            id="V4-payback-105-weeks-above-rents",
        ),
    ],
)
def test_v4_buy_only_if_it_pays_back_within_104_weeks(weeks: int, said: str) -> None:
    rows = [cpu(36_000.0), buy("consumer", "RTX 4090", 360.0, 1600, weeks), cloud(180.0, 0.10)]
    assert say(rows) == WHAT + "10.0 h on this machine's CPU. " + said


# -- V5: the soonest payback, then the faster ------------------------------------------
# Two purchases that both pay back (<= 104 weeks). RTX 4090: 360 s ("6 min"), $1,600.
# RTX 6000 Ada: 200 s ("3 min": 200/60 = 3.3), $6,800.
@pytest.mark.parametrize(
    ("consumer_weeks", "workstation_weeks", "picked"),
    [
        pytest.param(40, 50, "consumer - RTX 4090, 6 min per run, $1,600 to buy; it pays for "
                     "itself against renting after 400 hours of use (40 weeks at 10 h/week).",
                     id="V5-sooner-payback-wins-consumer"),
        pytest.param(50, 40, "workstation - RTX 6000 Ada, 3 min per run, $6,800 to buy; it pays "
                     "for itself against renting after 400 hours of use (40 weeks at 10 h/week).",
                     id="V5-sooner-payback-wins-workstation"),
        pytest.param(40, 40, "workstation - RTX 6000 Ada, 3 min per run, $6,800 to buy; it pays "
                     "for itself against renting after 400 hours of use (40 weeks at 10 h/week).",
                     id="V5-tie-faster-wins"),
    ],
)  # fmt: skip
def test_v5_the_purchase_that_pays_back_soonest_then_the_faster(
    consumer_weeks: int, workstation_weeks: int, picked: str
) -> None:
    rows = [
        cpu(36_000.0),
        buy("consumer", "RTX 4090", 360.0, 1600, consumer_weeks),
        buy("workstation", "RTX 6000 Ada", 200.0, 6800, workstation_weeks),
        cloud(180.0, 0.10),
    ]
    assert say(rows) == WHAT + "10.0 h on this machine's CPU. Recommended: " + picked


# -- V6: no purchase pays back: the cloud; no cloud: the fastest that holds it ---------
# RTX 4090 at 105 weeks (past 104), RTX 6000 Ada without a price at 200 s ("3 min"), the
# cloud slower than it at 250 s ("4 min": 250/60 = 4.2) and still preferred.
@pytest.mark.parametrize(
    ("last", "said"),
    [
        pytest.param(
            cloud(250.0, 0.14),
            "Recommended: cloud - H100 SXM, 4 min per run at $2.00/h on lambda (price seen "
            "2025-01-15), $0.14 per run; buying (RTX 4090, $1,600) would pay back only after "
            "1,050 hours of use (105 weeks at 10 h/week).",
            id="V6-no-payback-cloud-wins",
        ),
        pytest.param(
            empty("cloud"),
            "Recommended: workstation - RTX 6000 Ada, 3 min per run, no list price published "
            "(ask a vendor).",
            id="V6-no-payback-no-cloud-fastest-purchase",
        ),
    ],
)
def test_v6_without_a_payback_the_cloud_else_the_fastest(last: CostRow, said: str) -> None:
    rows = [
        cpu(36_000.0),
        buy("consumer", "RTX 4090", 360.0, 1600, 105),
        buy("workstation", "RTX 6000 Ada", 200.0, None, None),
        last,
    ]
    assert say(rows) == WHAT + "10.0 h on this machine's CPU. " + said


# -- V10: one GPU reads as its name; two or more as "N x name", and one is not enough --
# $2/h per GPU; 60 s ("60 s") per run.
@pytest.mark.parametrize(
    ("gpus", "words"),
    [
        pytest.param(1, "H100 SXM, 60 s per run at $2.00/h", id="V10-one-gpu-at-plain-name"),
        pytest.param(2, "2 x H100 SXM (one GPU is not enough), 60 s per run at $4.00/h",
                     id="V10-two-gpus-above-several"),
    ],
)  # fmt: skip
def test_v10_several_gpus_are_counted_and_explained(gpus: int, words: str) -> None:
    rows = [cpu(36_000.0), cloud(60.0, 0.07, 2.0 * gpus, gpus=gpus)]
    assert say(rows) == (
        WHAT + "10.0 h on this machine's CPU. Recommended: cloud - " + words
        + " on lambda (price seen 2025-01-15), $0.07 per run."
    )  # fmt: skip


# -- V7..V13: each wording branch of verdict_text ---------------------------------------
NOTHING = (
    "No option in the catalog holds this work: reduce the batch or sequence length "
    "(gpuscout fit shows what fits)."
)
WORDING = [
    # V7: the CPU not measured -> its sentence; nothing feasible either -> V8 without
    # a deadline.
    pytest.param([cpu(None), empty("consumer"), empty("cloud")], None, True,
                 WHAT + "the CPU was not measured for it. " + NOTHING,
                 id="V7-cpu-not-measured-V8-nothing-no-deadline"),
    # V7 the CPU measured (36,000 s = "10.0 h") and a deadline (7,200 s = "2.0 h").
    pytest.param([cpu(36_000.0), CLOUD_10S], 7200.0, True,
                 WHAT + "10.0 h on this machine's CPU. Deadline: 2.0 h per run. " + RENT_10S,
                 id="V7-cpu-measured-with-deadline"),
    # V9: the CPU (60 s = "60 s") with no GPU option left.
    pytest.param([cpu(60.0), empty("consumer"), empty("cloud")], None, True,
                 WHAT + "60 s on this machine's CPU. Stay on the CPU: a run is short enough "
                 "here, and no GPU option holds it.",
                 id="V9-stay-no-gpu-holds-it"),
    # V9: the fastest of two GPU options is named (RTX 4090 at 30 s before H100 at 40 s).
    pytest.param([cpu(60.0), buy("consumer", "RTX 4090", 30.0, 1600, None), cloud(40.0, 0.02)],
                 None, True,
                 WHAT + "60 s on this machine's CPU. Stay on the CPU: a run is short enough "
                 "here, and the fastest GPU option (RTX 4090) would take 30 s.",
                 id="V9-stay-names-fastest-gpu"),
    # V10: 8 GPUs, a time 10 s with a spread 5-15 s ("5 s": 2 significant digits of 5.0).
    pytest.param([cpu(36_000.0),
                  cloud(10.0, 0.044, 16.0, gpus=8, time_low_s=5.0,
                        time_high_s=15.0)], None, True,
                 WHAT + "10.0 h on this machine's CPU. Recommended: cloud - 8 x H100 SXM (one GPU "
                 "is not enough), 10 s (5 s-15 s) per run at $16.00/h on lambda (price seen "
                 "2025-01-15), $0.04 per run.",
                 id="V10-several-gpus-and-a-spread"),
    # V11: of two purchases, the one breaking even sooner in hours is named (1,050 h
    # against 2,000 h), both past 104 weeks so the cloud wins.
    pytest.param([cpu(36_000.0), buy("consumer", "RTX 4090", 360.0, 1600, 200),
                  buy("workstation", "RTX 6000 Ada", 200.0, 6800, 105), cloud(180.0, 0.10)],
                 None, True,
                 WHAT + "10.0 h on this machine's CPU. Recommended: cloud - H100 SXM, 3 min per "
                 "run at $2.00/h on lambda (price seen 2025-01-15), $0.10 per run; buying (RTX "
                 "6000 Ada, $6,800) would pay back only after 1,050 hours of use (105 weeks at "
                 "10 h/week).",
                 id="V11-cloud-names-soonest-purchase"),
    # V11: no purchase with a break-even: the cloud sentence ends at its price.
    pytest.param([cpu(36_000.0), buy("consumer", "RTX 4090", 360.0, 1600, None),
                  cloud(180.0, 0.10)], None, True,
                 WHAT + "10.0 h on this machine's CPU. Recommended: cloud - H100 SXM, 3 min per "
                 "run at $2.00/h on lambda (price seen 2025-01-15), $0.10 per run.",
                 id="V11-cloud-without-a-purchase-to-compare"),
    # V12: a purchase with a price and no break-even, the only GPU (no cloud), 4 GPUs of
    # $1,600 = $6,400.
    pytest.param([cpu(36_000.0), replace(buy("consumer", "RTX 4090", 360.0, 6400, None),
                                         gpus=4), empty("cloud")], None, True,
                 WHAT + "10.0 h on this machine's CPU. Recommended: consumer - 4 x RTX 4090 (one "
                 "GPU is not enough), 6 min per run, $6,400 to buy.",
                 id="V12-purchase-price-no-break-even"),
    # V13: uncalibrated: the note after the purchase sentence.
    pytest.param([cpu(36_000.0), buy("consumer", "RTX 4090", 360.0, 1600, 104), empty("cloud")],
                 None, False,
                 WHAT + "10.0 h on this machine's CPU. " + _bought(104)
                 + " (GPU times use published defaults: nothing was measured on a GPU.)",
                 id="V13-uncalibrated-says-so"),
]  # fmt: skip


@pytest.mark.parametrize(("rows", "deadline_s", "calibrated", "said"), WORDING)
def test_each_wording_branch_of_the_verdict(
    rows: list[CostRow], deadline_s: float | None, calibrated: bool, said: str
) -> None:
    assert say(rows, deadline_s, calibrated) == said


# -- V14: durations ---------------------------------------------------------------------
DAY = 86_400.0


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        pytest.param(None, "n/a", id="V14-none"),
        pytest.param(9.94, "9.9 s", id="V14-below-10s-two-digits"),
        # At 10 s both branches print "10 s" (2 significant digits and whole seconds agree
        # from 10 to 99), so whether 10 itself is below the boundary cannot be seen.
        pytest.param(10.0, "10 s", id="V14-at-10s-seconds"),
        pytest.param(119.0, "119 s", id="V14-below-120s-seconds"),
        pytest.param(120.0, "2 min", id="V14-at-120s-minutes"),
        pytest.param(7199.0, "120 min", id="V14-below-2h-minutes"),  # 119.98 min
        pytest.param(7200.0, "2.0 h", id="V14-at-2h-hours"),
        pytest.param(3 * DAY - 360, "71.9 h", id="V14-below-3-days-hours"),  # 72 - 0.1 h
        pytest.param(3 * DAY, "3.0 days", id="V14-at-3-days-days"),
        pytest.param(99.9 * DAY, "99.9 days", id="V14-below-100-days-tenths"),
        pytest.param(100 * DAY, "100 days", id="V14-at-100-days-whole"),
        pytest.param(1094 * DAY, "1,094 days", id="V14-below-3-years-days"),
        pytest.param(1095 * DAY, "3.0 years", id="V14-at-3-years-years"),  # 3 x 365 days
    ],
)
def test_v14_durations_in_the_unit_people_use(seconds: float | None, words: str) -> None:
    assert w.duration(seconds) == words


# -- V15: dollars -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "words"),
    [
        pytest.param(None, "n/a", id="V15-none"),
        pytest.param(99.99, "$99.99", id="V15-below-100-cents"),
        pytest.param(100.0, "$100", id="V15-at-100-whole"),
        pytest.param(1234.4, "$1,234", id="V15-above-100-thousands"),
        pytest.param(0.0099, "$0.0099", id="V15-below-a-cent-hundredths"),
        pytest.param(0.01, "$0.01", id="V15-at-a-cent-cents"),
        pytest.param(0.0, "$0.00", id="V15-zero-cents"),
        pytest.param(0.00009, "<$0.0001", id="V15-below-hundredth-of-a-cent"),
        pytest.param(0.0001, "$0.0001", id="V15-at-hundredth-of-a-cent"),
        pytest.param(-5.0, "-$5.00", id="V15-negative-sign-first"),
    ],
)
def test_v15_dollars_as_people_read_them(value: float | None, words: str) -> None:
    assert w.usd(value) == words


# -- V16, V17: pro against consumer ------------------------------------------------------
def spec(gid: str, segment: str, form: str = "pcie", **kw: Any) -> GpuSpec:
    base = GpuSpec(
        id=gid, name=gid.upper(), vendor="nvidia", segment=segment, architecture="ada",
        release_year=2022, memory_gb=24.0, memory_type="GDDR6X", memory_bandwidth_gbs=1008.0,
        fp32_tflops=82.6, nvlink=False, ecc=False, form_factor=form, source=("test",),
        tdp_w=450.0, pcie_gen=4,
    )  # fmt: skip
    return replace(base, **kw)


CON = spec("rtx-4090", "consumer")
PRO = spec("rtx-a6000", "workstation", memory_gb=48.0, memory_type="GDDR6", ecc=True,
           nvlink=True, nvlink_bandwidth_gbs=112.5, fp64_tflops=1.2, tdp_w=300.0)  # fmt: skip
DC = spec("h100-sxm", "datacenter", form="sxm", memory_gb=80.0, memory_type="HBM3", ecc=True,
          nvlink=True, nvlink_bandwidth_gbs=900.0, fp64_tflops=34.0, fp64_tensor_tflops=67.0,
          tdp_w=700.0)  # fmt: skip
SPECS = {s.id: s for s in (CON, PRO, DC)}


def pick(option: str, s: GpuSpec, t: float, price: float | None) -> CostRow:
    return row(option, s.name, t, gpu_id=s.id, buy_usd=price)


@pytest.mark.parametrize(
    ("rows", "pro_name"),
    [
        pytest.param([pick("consumer", CON, 1000, 1600), pick("workstation", PRO, 800, 4650),
                      pick("datacenter", DC, 500, 30000)], "RTX-A6000",
                     id="V16-workstation-before-datacenter"),
        pytest.param([pick("consumer", CON, 1000, 1600), empty("workstation"),
                      pick("datacenter", DC, 500, 30000)], "H100-SXM",
                     id="V16-datacenter-without-workstation"),
        pytest.param([pick("consumer", CON, 1000, 1600), empty("workstation"),
                      empty("datacenter")], None, id="V16-no-pro-nothing"),
        pytest.param([empty("consumer"), pick("workstation", PRO, 800, 4650)], None,
                     id="V16-no-consumer-nothing"),
    ],
)  # fmt: skip
def test_v16_the_consumer_pick_against_the_pro_pick(
    rows: list[CostRow], pro_name: str | None
) -> None:
    table = w.pro_vs_consumer(rows, SPECS, 1_000_000, "tokens")
    if pro_name is None:
        assert table == ()
    else:
        assert table[0] == ("GPU", "RTX-4090", pro_name)


def test_v16_v17_every_aspect_in_words_and_numbers() -> None:
    rows = [pick("consumer", CON, 1000.0, 1600.0), pick("workstation", PRO, 800.0, None)]
    # 1,000,000 tokens in 1,000 s = 1,000 tokens/s; $1,600 / 1,000 = $1.60 per token/s.
    # The workstation has no price: "n/a (no list price)". FP64: the consumer card has
    # none ("n/a"), the A6000 its vector 1.2 TFLOPS. NVLink: a PCIe card's bridge joins
    # pairs; none on the 4090, whose 4-GPU box is on PCIe gen4 x16.
    assert dict((a, (c, p)) for a, c, p in w.pro_vs_consumer(rows, SPECS, 1e6, "tokens")) == {
        "GPU": ("RTX-4090", "RTX-A6000"),
        "time per run": ("17 min", "13 min"),  # 1000/60 = 16.7; 800/60 = 13.3
        "memory": ("24 GB GDDR6X", "48 GB GDDR6"),
        "ECC memory": ("no", "yes"),
        "NVLink / multi-GPU": ("no NVLink; PCIe gen4 x16", "NVLink 112.5 GB/s (bridge: pairs)"),
        "FP64": ("n/a", "1.2 TFLOPS"),
        "power and cooling": (
            "450 W; consumer card, usually open-air (heats the case; hard to stack)",
            "300 W; workstation card, usually blower (exhausts out; stacks 2-4)",
        ),
        "price": ("$1,600", "n/a"),
        "price per performance": ("$1.60 per token/s", "n/a (no list price)"),
    }


@pytest.mark.parametrize(
    ("s", "cooling", "link", "fp64"),
    [
        pytest.param(DC, "SXM module: only in a vendor's server", "NVLink 900 GB/s",
                     "67 TFLOPS", id="V17-sxm-module-nvlink-fp64-tensor-first"),
        pytest.param(replace(DC, form_factor="oam"), "OAM module: only in a vendor's server",
                     "NVLink 900 GB/s", "67 TFLOPS", id="V17-oam-module"),
        pytest.param(replace(DC, form_factor="pcie", nvlink=False),
                     "passive card: needs a server chassis's airflow",
                     "no NVLink; PCIe gen4 x16", "67 TFLOPS", id="V17-datacenter-pcie-passive"),
        pytest.param(replace(PRO, nvlink_bandwidth_gbs=None),
                     "workstation card, usually blower (exhausts out; stacks 2-4)",
                     "no NVLink; PCIe gen4 x16", "1.2 TFLOPS",
                     id="V17-nvlink-without-bandwidth-is-none"),
        pytest.param(replace(CON, form_factor="soc", segment="consumer"),
                     "consumer card, usually open-air (heats the case; hard to stack)",
                     "single chip (no multi-GPU)", "n/a", id="V17-soc-single-chip"),
    ],
)  # fmt: skip
def test_v17_cooling_link_and_fp64(s: GpuSpec, cooling: str, link: str, fp64: str) -> None:
    rows = [pick("consumer", CON, 1000.0, 1600.0), pick("workstation", s, 800.0, None)]
    table = {a: p for a, _, p in w.pro_vs_consumer(rows, {CON.id: CON, s.id: s}, 1e6, "tokens")}
    assert table["power and cooling"].endswith("; " + cooling)
    assert table["NVLink / multi-GPU"] == link
    assert table["FP64"] == fp64


# -- V18: the stated assumptions carry the constants the rules use --------------------
@pytest.mark.parametrize(
    ("calibrated", "gpu_words"),
    [
        pytest.param(True, "GPU times: calibrated on NVIDIA H100 80GB HBM3",
                     id="V18-calibrated-names-gpu"),
        pytest.param(False, "GPU times: published anchors", id="V18-uncalibrated-names-source"),
    ],
)  # fmt: skip
def test_v18_the_assumptions_state_the_rules(calibrated: bool, gpu_words: str) -> None:
    c = cast(
        Calibrated,
        SimpleNamespace(
            basis=SimpleNamespace(device_name="NVIDIA H100 80GB HBM3", notes=("a note",)),
            cal=SimpleNamespace(calibrated=calibrated, ceiling_source="published anchors"),
        ),
    )
    said = w.assumptions(c, 0.15, 10.0, "one epoch", "measured (tuned implementation)")
    assert said == (
        "one run = one epoch (--samples changes it)",
        "electricity at the GPU's TDP and $0.15/kWh (--price-kwh), the rest of the machine "
        "not counted",
        "break-even in hours of use; weeks at 10 h/week (--hours-per-week); buying is "
        "recommended when it pays back within 104 weeks",
        "the CPU is enough when a run takes under 10 min or no GPU is 2x faster; CPU time: "
        "measured (tuned implementation)",
        "cloud prices are on-demand list prices with the date they were seen; they move",
        "purchase prices are launch list prices (catalog); street prices differ",
        gpu_words,
        "a note",
    )
