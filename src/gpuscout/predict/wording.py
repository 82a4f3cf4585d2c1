"""The verdict in words, the recommendation rule, and pro-versus-consumer.

Kept apart from ``advise`` (which computes the rows) so the wording can change without
touching the arithmetic. The rule is in ``recommend``; ``advise``'s docstring states it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from gpuscout.catalog import GpuSpec
from gpuscout.predict import defaults as d
from gpuscout.predict import multi
from gpuscout.predict.project import Calibrated
from gpuscout.predict.records import CostRow

PURCHASES = ("consumer", "workstation", "datacenter")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 10:
        return f"{seconds:.2g} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    days = seconds / 86400
    if days < 100:
        return f"{days:.1f} days"
    if days < 3 * 365:
        return f"{days:,.0f} days"
    return f"{days / 365:,.1f} years"  # 1,932 days reads as "5.3 years"


def usd(value: float | None) -> str:
    """Dollars as people read them (the terminal, the report and the verdict alike)."""
    if value is None:
        return "n/a"
    size = abs(value)
    sign = "-" if value < 0 else ""
    if size >= 100:
        return f"{sign}${size:,.0f}"
    if size >= 0.01 or size == 0:
        return f"{sign}${size:.2f}"
    # Below a cent, to the hundredth of a cent: a short run's electricity is not "$0.00".
    return f"{sign}${size:.4f}" if size >= 0.0001 else f"{sign}<$0.0001"


def _feasible(r: CostRow, deadline_s: float | None) -> bool:
    t = r.time_per_run_s
    if t is None or r.fits is False or r.gpu_name == "none":
        return False
    return deadline_s is None or t <= deadline_s


def recommend(rows: Sequence[CostRow], deadline_s: float | None) -> CostRow | None:
    ok = [r for r in rows if _feasible(r, deadline_s)]
    cpu = _first(ok, "cpu")
    gpu = [r for r in ok if r.option != "cpu"]
    if cpu is not None and _cpu_is_enough(cpu, gpu):
        return cpu
    paying = [r for r in gpu if r.option in PURCHASES and _pays_back(r)]
    if paying:
        return min(paying, key=_payback_order)
    return _first(gpu, "cloud") or min(gpu, key=_run_time, default=None)


def _first(rows: Sequence[CostRow], option: str) -> CostRow | None:
    return next((r for r in rows if r.option == option), None)


def _run_time(r: CostRow) -> float:
    return r.time_per_run_s or math.inf


def _payback_order(r: CostRow) -> tuple[float, float]:
    return (r.break_even_weeks or 0.0, r.time_per_run_s or 0.0)


def _cpu_is_enough(cpu: CostRow, gpu: Sequence[CostRow]) -> bool:
    """A CPU run short enough, or no GPU ``MIN_GPU_SPEEDUP`` times faster."""
    fastest = min((_run_time(r) for r in gpu), default=math.inf)
    t = cpu.time_per_run_s
    return t is not None and (t <= d.CPU_IS_ENOUGH_S or t < d.MIN_GPU_SPEEDUP * fastest)


def _pays_back(r: CostRow) -> bool:
    return r.break_even_weeks is not None and r.break_even_weeks <= d.HORIZON_WEEKS


def _gpu_words(r: CostRow) -> str:
    return f"{r.gpus} x {r.gpu_name}" if r.gpus > 1 else r.gpu_name


def _range(r: CostRow) -> str:
    if r.time_low_s is None or r.time_high_s is None:
        return duration(r.time_per_run_s)
    return f"{duration(r.time_per_run_s)} ({duration(r.time_low_s)}-{duration(r.time_high_s)})"


def verdict_text(
    what: str,
    run_words: str,
    unit: str,
    rows: Sequence[CostRow],
    pick: CostRow | None,
    deadline_s: float | None,
    hours_per_week: float,
    calibrated: bool,
) -> str:
    cpu = next(r for r in rows if r.option == "cpu")
    head = f"{what}, one run = {run_words}: "
    head += (
        f"{duration(cpu.time_per_run_s)} on this machine's CPU. "
        if cpu.time_per_run_s is not None
        else "the CPU was not measured for it. "
    )
    if deadline_s is not None:
        head += f"Deadline: {duration(deadline_s)} per run. "
    if pick is None:
        return head + (
            "No option in the catalog holds this work"
            + (" by the deadline" if deadline_s is not None else "")
            + ": reduce the batch or sequence length (gpuscout fit shows what fits)."
        )
    if pick.option == "cpu":
        return head + _stay_on_cpu(rows, deadline_s)
    more = " (one GPU is not enough)" if pick.gpus > 1 else ""
    text = head + f"Recommended: {pick.option} - {_gpu_words(pick)}{more}, {_range(pick)} per run"
    if pick.option == "cloud":
        text += _cloud_words(pick, rows, hours_per_week)
    else:
        text += _purchase_words(pick, hours_per_week)
    if not calibrated:
        text += " (GPU times use published defaults: nothing was measured on a GPU.)"
    return text


def _stay_on_cpu(rows: Sequence[CostRow], deadline_s: float | None) -> str:
    fastest = min(
        (r for r in rows if r.option != "cpu" and _feasible(r, deadline_s)),
        key=lambda r: r.time_per_run_s or math.inf,
        default=None,
    )
    why = (
        f"the fastest GPU option ({_gpu_words(fastest)}) would take {_range(fastest)}"
        if fastest is not None
        else "no GPU option holds it"
    )
    return f"Stay on the CPU: a run is short enough here, and {why}."


def _cloud_words(pick: CostRow, rows: Sequence[CostRow], hours_per_week: float) -> str:
    text = (
        f" at {usd(pick.cloud_usd_per_hour)}/h on {pick.cloud_provider} "
        f"(price seen {pick.cloud_price_date}), {usd(pick.cloud_usd_per_run)} per run"
    )
    buys = [r for r in rows if r.option in PURCHASES and r.break_even_hours is not None]
    if buys:
        b = min(buys, key=lambda r: r.break_even_hours or math.inf)
        text += (
            f"; buying ({_gpu_words(b)}, {usd(b.buy_usd)}) would pay back only after "
            f"{b.break_even_hours:,.0f} hours of use ({b.break_even_weeks or 0:,.0f} weeks "
            f"at {hours_per_week:g} h/week)"
        )
    return text + "."


def _purchase_words(pick: CostRow, hours_per_week: float) -> str:
    text = (
        f", {usd(pick.buy_usd)} to buy"
        if pick.buy_usd is not None
        else ", no list price published (ask a vendor)"
    )
    if pick.break_even_hours is not None:
        text += (
            f"; it pays for itself against renting after {pick.break_even_hours:,.0f} hours "
            f"of use ({pick.break_even_weeks or 0:,.0f} weeks at {hours_per_week:g} h/week)"
        )
    return text + "."


def _cooling(spec: GpuSpec) -> str:
    if spec.form_factor in ("sxm", "oam", "superchip"):
        return f"{spec.form_factor.upper()} module: only in a vendor's server"
    return {
        "consumer": "consumer card, usually open-air (heats the case; hard to stack)",
        "workstation": "workstation card, usually blower (exhausts out; stacks 2-4)",
        "datacenter": "passive card: needs a server chassis's airflow",
    }.get(spec.segment, spec.form_factor)


def _link(spec: GpuSpec) -> str:
    if not multi.supports_boxes(spec):
        return "single chip (no multi-GPU)"
    if spec.nvlink and spec.nvlink_bandwidth_gbs:
        pairs = " (bridge: pairs)" if spec.form_factor == "pcie" else ""
        return f"NVLink {spec.nvlink_bandwidth_gbs:g} GB/s{pairs}"
    return f"no NVLink; {multi.link(spec, 4).name}"


def pro_vs_consumer(
    rows: Sequence[CostRow], specs: Mapping[str, GpuSpec], samples: float, unit: str
) -> tuple[tuple[str, str, str], ...]:
    """(aspect, consumer pick, pro pick) for the consumer row against the workstation
    row (the datacenter row when there is no workstation pick); empty without both."""
    by = {r.option: r for r in rows if r.gpu_id in specs}
    con = by.get("consumer")
    pro = by.get("workstation") or by.get("datacenter")
    if con is None or pro is None or con.gpu_id is None or pro.gpu_id is None:
        return ()
    c, p = specs[con.gpu_id], specs[pro.gpu_id]

    def per_perf(r: CostRow) -> str:
        if r.buy_usd is None or not r.time_per_run_s:
            return "n/a (no list price)"
        rate = samples / r.time_per_run_s
        return f"{usd(r.buy_usd / rate)} per {unit.removesuffix('s')}/s"

    def fp64(s: GpuSpec) -> str:
        v = s.fp64_tensor_tflops or s.fp64_tflops
        return "n/a" if v is None else f"{v:g} TFLOPS"

    return (
        ("GPU", _gpu_words(con), _gpu_words(pro)),
        ("time per run", _range(con), _range(pro)),
        ("memory", f"{c.memory_gb:g} GB {c.memory_type}", f"{p.memory_gb:g} GB {p.memory_type}"),
        ("ECC memory", "yes" if c.ecc else "no", "yes" if p.ecc else "no"),
        ("NVLink / multi-GPU", _link(c), _link(p)),
        ("FP64", fp64(c), fp64(p)),
        (
            "power and cooling",
            f"{c.tdp_w or 0:g} W; {_cooling(c)}",
            f"{p.tdp_w or 0:g} W; {_cooling(p)}",
        ),
        ("price", usd(con.buy_usd), usd(pro.buy_usd)),
        ("price per performance", per_perf(con), per_perf(pro)),
    )


def assumptions(
    c: Calibrated, price_kwh: float, hours_per_week: float, run_words: str, cpu_note: str
) -> tuple[str, ...]:
    out = [
        f"one run = {run_words} (--samples changes it)",
        f"electricity at the GPU's TDP and ${price_kwh:g}/kWh (--price-kwh), "
        "the rest of the machine not counted",
        f"break-even in hours of use; weeks at {hours_per_week:g} h/week (--hours-per-week); "
        f"buying is recommended when it pays back within {d.HORIZON_WEEKS:.0f} weeks",
        f"the CPU is enough when a run takes under {duration(d.CPU_IS_ENOUGH_S)} or no GPU "
        f"is {d.MIN_GPU_SPEEDUP:g}x faster; CPU time: {cpu_note}",
        "cloud prices are on-demand list prices with the date they were seen; they move",
        "purchase prices are launch list prices (catalog); street prices differ",
        "GPU times: "
        + (f"calibrated on {c.basis.device_name}" if c.cal.calibrated else c.cal.ceiling_source),
    ]
    return tuple(out) + c.basis.notes
