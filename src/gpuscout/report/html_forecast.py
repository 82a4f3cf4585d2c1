"""The report's forward-looking sections as HTML: predictions, memory fit and cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuscout.report import charts, fmt
from gpuscout.report.document import FitTable, Unavailable
from gpuscout.report.html_kit import (
    assumptions,
    card,
    chart,
    e,
    none,
    num_cell,
    table,
    table_html,
    unavailable,
)

if TYPE_CHECKING:
    from gpuscout.predict import Advice, Prediction, Projection


def _prediction_cell(p: Projection | None) -> str:
    if p is None:
        return '<td class="num muted">n/a</td>'
    if p.fits is False:
        note = f'<br><span class="unit">{e(p.fit_note)}</span>' if p.fit_note else ""
        return f'<td class="num"><span class="no">does not fit</span>{note}</td>'
    lo, hi = (fmt.compact(x) for x in charts.throughput_range(p))
    speed = f' <span class="unit">{e(fmt.ratio(p.speedup))}</span>' if p.speedup is not None else ""
    span = lo if lo == hi else f"{lo} – {hi}"
    return (
        f'<td class="num">{e(fmt.compact(p.throughput))}{speed}<br>'
        f'<span class="unit">{e(span)} · {e(p.bound)}-bound</span></td>'
    )


def _prediction_table(pred: Prediction) -> str:
    """One row per GPU, one column per workload: the likely figure, x the measured one,
    and under it the range and what bounds it."""
    groups = charts.chosen_projections(pred)
    heads = "".join(
        f'<th class="num">{e(wl)}<br>'
        f'<span class="unit">{e(ps[0].throughput_unit)}, {e(ps[0].precision)}</span></th>'
        for wl, ps in groups.items()
    )
    rows = []
    for gpu_id, count, name, segment in charts.gpu_order(groups):
        cells = "".join(
            _prediction_cell(next((p for p in ps if (p.gpu_id, p.gpus) == (gpu_id, count)), None))
            for ps in groups.values()
        )
        many = f" x{count}" if count > 1 else ""
        rows.append(f"<tr><td>{e(name)}{e(many)}</td><td>{e(segment)}</td>{cells}</tr>")
    return table_html(f"<th>GPU</th><th>Segment</th>{heads}", rows)


def predictions_section(pred: Prediction | Unavailable) -> str:
    lead = (
        "Each measured workload, split into its compute-bound, memory-bound and host parts, "
        "projected onto GPUs you do not own: dots are the likely speed-up over this machine, "
        "whiskers the range. The table gives the figures."
    )
    if isinstance(pred, Unavailable):
        return card("predictions", "Other GPUs: predictions", unavailable(pred), lead)
    body = ""
    if not pred.calibrated:
        body += (
            '<div class="unavailable">No GPU was measured here, so the efficiencies are '
            "defaults calibrated on measured GPUs, not this machine's: read the ranges, "
            "not the points.</div>"
        )
    body += chart(*charts.chart_or_note(charts.prediction_chart, pred))
    body += _prediction_table(pred)
    body += f'<p class="small muted">Measured on {e(pred.measured_on)}.</p>'
    body += assumptions(pred.assumptions)
    return card("predictions", "Other GPUs: predictions", body, lead)


def fit_section(table: FitTable | Unavailable) -> str:
    lead = (
        "Whether each model trains (or runs) in each GPU's memory at the measured batch size and "
        "precision; a cell gives the largest batch that fits there. Estimates are a band, not a "
        "point: near the edge, measure (gpuscout fit --measure)."
    )
    if isinstance(table, Unavailable):
        return card("fit", "Memory fit", unavailable(table), lead)
    if not table.rows:
        return card("fit", "Memory fit", none("no model to fit"), lead)
    heads = []
    for row in table.rows:
        name, _, why = row.label.partition(" · ")
        seq = f", seq {row.seq_len}" if row.seq_len else ""
        what = f"{why}: {row.mode}, batch {row.batch_size}{seq}, {row.dtype}"
        band = f"{fmt.gib(row.low_bytes)} – {fmt.gib(row.high_bytes)}"
        heads.append(
            f'<th class="c">{e(name)}<br><span class="unit">{e(what)}</span><br>'
            f'<span class="unit">needs {e(fmt.gib(row.need_bytes))} ({e(band)}), '
            f"mostly {e(row.dominant)}</span></th>"
        )
    cells = [{c.gpu_id: c for c in row.cells} for row in table.rows]
    out = []
    for gpu_id, gpu_name, mem in table.gpus:
        tds = []
        for by_gpu in cells:
            c = by_gpu.get(gpu_id)
            if c is None:
                tds.append('<td class="fit">n/a</td>')
            else:
                mark = fmt.fit_mark(c.fits, c.max_batch_size)
                tds.append(f'<td class="fit {"yes" if c.fits else "no"}">{e(mark)}</td>')
        out.append(
            f"<tr><td class='nowrap'>{e(fmt.short_name('gpu', gpu_name))}</td>"
            f"{num_cell(fmt.gib(mem))}{''.join(tds)}</tr>"
        )
    body = table_html(f'<th>GPU</th><th class="num">Memory</th>{"".join(heads)}', out)
    return card("fit", "Memory fit", body, lead)


def cost_section(advice: Advice | Unavailable) -> str:
    lead = (
        "What each option costs per run of the measured work: buying (with electricity) or "
        "renting, and after how many hours of use buying beats renting."
    )
    if isinstance(advice, Unavailable):
        return card("cost", "Cost: buy, rent or stay on the CPU", unavailable(advice), lead)
    body = f'<p class="verdict">{e(advice.verdict)}</p>'
    pick = advice.recommended
    out = []
    for r in advice.rows:
        cls = ' class="pick"' if pick is not None and r == pick else ""
        cloud = fmt.usd(r.cloud_usd_per_hour) + "/h" if r.cloud_usd_per_hour is not None else "n/a"
        seen = " ".join(x for x in (r.cloud_provider, r.cloud_price_date) if x)
        count = f" x{r.gpus}" if r.gpus > 1 else ""
        span = ""
        if r.time_low_s is not None and r.time_high_s is not None:
            span = f"{fmt.seconds(r.time_low_s)} – {fmt.seconds(r.time_high_s)}"
        weeks = f"{r.break_even_weeks:,.0f} weeks" if r.break_even_weeks is not None else ""
        mark = ' <span class="badge">recommended</span>' if cls else ""
        out.append(
            f"<tr{cls}><td>{e(r.option)}{mark}</td>"
            f"<td>{e(r.gpu_name)}{e(count)}<br><span class='small muted'>{e(r.note)}</span></td>"
            f"<td class='num'>{e(fmt.seconds(r.time_per_run_s))}<br>"
            f"<span class='unit'>{e(span)}</span></td><td>{e(fmt.yes_no(r.fits))}</td>"
            f"{num_cell(fmt.usd(r.buy_usd))}{num_cell(fmt.usd(r.electricity_usd_per_run))}"
            f"<td class='num'>{e(cloud)}<br><span class='unit'>{e(seen)}</span></td>"
            f"{num_cell(fmt.usd(r.cloud_usd_per_run))}"
            f"<td class='num'>{e(fmt.hours(r.break_even_hours))}<br>"
            f"<span class='unit'>{e(weeks)}</span></td></tr>"
        )
    head = ("Option", "GPU", "Time per run", "Fits", "Buy", "Power per run", "Cloud",
            "Cloud per run", "Break-even")  # fmt: skip
    body += table(head, out, (2, 4, 5, 6, 7, 8))
    if advice.pro_vs_consumer:
        rows = "".join(
            f"<tr><td>{e(a)}</td><td>{e(c)}</td><td>{e(p)}</td></tr>"
            for a, c, p in advice.pro_vs_consumer
        )
        body += "<h3>Workstation (pro) vs consumer</h3>" + table(
            ("Aspect", "Consumer", "Pro"), [rows]
        )
    body += assumptions(advice.assumptions)
    return card("cost", "Cost: buy, rent or stay on the CPU", body, lead)
