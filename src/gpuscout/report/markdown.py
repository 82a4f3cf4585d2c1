"""A ``Report`` as GitHub-flavoured Markdown: the same sections as tables, no charts.

Cells are escaped for both Markdown and HTML (GitHub renders inline HTML), so a GPU
name like ``<script>`` or ``a|b`` stays text and never breaks a table.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gpuscout._types import Status
from gpuscout.report import charts, fmt
from gpuscout.report.document import ProfileRow, Report, Roofline, Unavailable

if TYPE_CHECKING:
    from gpuscout.predict import Advice, Prediction
    from gpuscout.report.document import CeilingRow, FitTable, WorkloadRow


def cell(value: Any) -> str:
    text = html.escape("" if value is None else str(value), quote=False)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    for ch in ("*", "_", "[", "]"):
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())  # a newline would end the table row


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    align = ["---:" if i in numeric else "---" for i in range(len(head))]
    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _unavailable(section: Unavailable) -> str:
    return f"> could not compute: {cell(section.reason)}"


def _ceilings(rows: tuple[CeilingRow, ...] | Unavailable) -> str:
    if isinstance(rows, Unavailable):
        return _unavailable(rows)
    if not rows:
        return "No micro-benchmarks in these runs."
    return table(
        ("Device", "Benchmark", "Measured", "Peak", "% of peak", "Peak from"),
        [
            (
                f"{r.device_name} ({r.device})",
                r.what,
                fmt.num(r.measured, r.unit),
                fmt.num(r.peak, r.unit),
                fmt.pct(r.fraction),
                r.peak_source,
            )
            for r in rows
        ],
        (2, 3, 4),
    )


def _workloads(rows: tuple[WorkloadRow, ...] | Unavailable) -> str:
    if isinstance(rows, Unavailable):
        return _unavailable(rows)
    if not rows:
        return "No workloads in these runs."
    return table(
        (
            "Workload",
            "Device",
            "Code",
            "Throughput",
            "Step",
            "TFLOPS",
            "% of ceiling",
            "vs CPU",
            "Status",
        ),
        [
            (
                r.workload + (f" {r.variant}" if r.variant else ""),
                f"{r.device_name} ({r.device})",
                r.impl,
                fmt.num(r.figure, r.unit),
                fmt.seconds(r.step_time_s),
                fmt.num(r.achieved_tflops),
                fmt.ceiling_pct(r.fraction, r.above_ceiling),
                fmt.ratio(r.speedup_vs_cpu),
                r.status + (f": {r.error}" if r.error else ""),
            )
            for r in rows
        ],
        (3, 4, 5, 6, 7),
    )


def _roofline(roof: Roofline | Unavailable) -> str:
    if isinstance(roof, Unavailable):
        return _unavailable(roof)
    if not roof.points:
        return "No workload result carries a byte count, so none can be placed."
    roofs = {(r.device, r.precision): r for r in roof.roofs}
    rows = []
    for p in roof.points:
        r = roofs.get((p.device, p.precision))
        bound = fmt.NA if r is None else ("memory" if p.intensity < r.ridge else "compute")
        roof_text = (
            f"{fmt.num(r.peak_tflops)} TFLOPS, {fmt.num(r.bandwidth_gbs)} GB/s" if r else fmt.NA
        )
        rows.append(
            (p.label, p.device, p.precision, fmt.num(p.intensity), fmt.num(p.achieved_tflops),
             roof_text, bound)
        )  # fmt: skip
    head = ("Workload", "Device", "Precision", "FLOP/byte", "TFLOPS", "Roof", "Side of the ridge")
    return table(head, rows, (3, 4))


def _predictions(pred: Prediction | Unavailable) -> str:
    if isinstance(pred, Unavailable):
        return _unavailable(pred)
    parts = []
    if not pred.calibrated:
        parts.append("> No GPU was measured here: efficiencies are calibrated defaults.")
    for wl, projs in charts.chosen_projections(pred).items():
        rows = []
        for p in sorted(projs, key=lambda p: -p.throughput):
            lo, hi = charts.throughput_range(p)
            rows.append(
                (
                    p.gpu_name + (f" x{p.gpus}" if p.gpus > 1 else ""),
                    p.segment,
                    fmt.num(p.throughput, p.throughput_unit),
                    f"{fmt.num(lo)} – {fmt.num(hi)}",
                    fmt.seconds(p.step_s),
                    p.bound,
                    fmt.yes_no(p.fits),
                    fmt.ratio(p.speedup),
                )
            )
        head = ("GPU", "Segment", "Throughput", "Range", "Step", "Bound", "Fits", "vs measured")
        parts.append(f"### {cell(wl)} ({cell(projs[0].result_name)}, {cell(projs[0].precision)})")
        parts.append(table(head, rows, (2, 3, 4, 7)))
    parts.append(f"Measured on {cell(pred.measured_on)}.")
    parts += [f"- {cell(a)}" for a in pred.assumptions]
    return "\n\n".join(parts)


def _fit(t: FitTable | Unavailable) -> str:
    if isinstance(t, Unavailable):
        return _unavailable(t)
    head = ["Model", "Needs", *(f"{fmt.short_name('gpu', n)} ({fmt.gib(m)})" for _, n, m in t.gpus)]
    rows = []
    for r in t.rows:
        cells = {c.gpu_id: c for c in r.cells}
        marks = [
            fmt.NA if c is None else fmt.fit_mark(c.fits, c.max_batch_size)
            for c in (cells.get(gpu_id) for gpu_id, _, _ in t.gpus)
        ]
        what = f"{r.label} ({r.mode}, batch {r.batch_size}, {r.dtype})"
        rows.append((what, fmt.gib(r.need_bytes), *marks))
    return table(head, rows, (1,))


def _cost(a: Advice | Unavailable) -> str:
    if isinstance(a, Unavailable):
        return _unavailable(a)
    rows = [
        (
            r.option
            + (" (recommended)" if a.recommended is not None and r == a.recommended else ""),
            r.gpu_name + (f" x{r.gpus}" if r.gpus > 1 else ""),
            fmt.seconds(r.time_per_run_s),
            fmt.yes_no(r.fits),
            fmt.usd(r.buy_usd),
            fmt.usd(r.electricity_usd_per_run),
            (
                fmt.usd(r.cloud_usd_per_hour)
                + "/h "
                + " ".join(x for x in (r.cloud_provider, r.cloud_price_date) if x)
            )
            if r.cloud_usd_per_hour is not None
            else fmt.NA,
            fmt.usd(r.cloud_usd_per_run),
            fmt.hours(r.break_even_hours),
        )
        for r in a.rows
    ]
    head = (
        "Option",
        "GPU",
        "Time per run",
        "Fits",
        "Buy",
        "Power per run",
        "Cloud",
        "Cloud per run",
        "Break-even",
    )
    parts = [f"**{cell(a.verdict)}**", table(head, rows, (2, 4, 5, 6, 7, 8))]
    if a.pro_vs_consumer:
        parts.append(table(("Aspect", "Consumer", "Pro"), list(a.pro_vs_consumer)))
    parts += [f"- {cell(x)}" for x in a.assumptions]
    return "\n\n".join(parts)


def _profiles(rows: tuple[ProfileRow, ...] | Unavailable) -> list[str]:
    if isinstance(rows, Unavailable):
        return ["## Your script", _unavailable(rows)]
    out = ["## Your script"] if rows else []
    for r in rows:
        out.append(
            f"**{cell(r.script)}** on {cell(r.device_name)} (run {r.run_id}): "
            f"{fmt.seconds(r.step_s)} a step. {cell(r.words)}."
        )
        out.append(table(("Where a step goes", "Time"), [(w, fmt.seconds(t)) for w, t in r.parts]))
        if r.fixes:
            fixes = [(w, fmt.ratio(x), y) for w, y, x in r.fixes]
            out.append(table(("What to change first", "Steps per second", "Why"), fixes))
        if r.projections:
            proj = [(g, fmt.seconds(t), fmt.ratio(x), b) for g, t, x, b in r.projections]
            out.append(table(("The same script on", "Step", "Speed-up", "Bound by"), proj))
    return out


def render_markdown(report: Report) -> str:
    findings = [f for f in report.findings if f.status in (Status.FAIL, Status.WARN)]
    finding_rows = [(f.status.value, f.id, f.subject, f.summary, f.fix) for f in findings]
    passed = len(report.findings) - len(findings)
    parts = [
        "# gpuscout report",
        cell(
            f"{dict(report.machine).get('Host', '')} · generated {report.generated_at} · runs "
            + ", ".join(str(r.id) for r in report.runs)
        ),
        "## The answer",
        "\n".join(f"- {cell(s)}" for s in report.summary) or "- Nothing measured yet.",
        *(f"> {cell(n)}" for n in report.notes),
        "## Machine and readiness",
        table(("", ""), report.machine),
        table(("Status", "Check", "Subject", "Summary", "Fix"), finding_rows)
        if finding_rows
        else ("Every readiness check passed." if report.findings else "No doctor findings."),
        f"{passed} more checks passed or did not apply." if findings and passed else "",
        "## Ceilings vs datasheet",
        _ceilings(report.ceilings),
        "## CPU vs GPU",
        _workloads(report.workloads),
        "## Roofline",
        _roofline(report.roofline),
        "## Other GPUs: predictions",
        _predictions(report.prediction),
        "## Memory fit",
        _fit(report.fit),
        "## Cost: buy, rent or stay on the CPU",
        _cost(report.advice),
        *_profiles(report.profiles),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"
