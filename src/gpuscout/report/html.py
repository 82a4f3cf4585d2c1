"""A ``Report`` as one self-contained HTML page: inline CSS, inline SVG, no script, no URL.

Every string that reaches the page from the machine, the store or the user goes through
``e()`` (html.escape); the charts come from matplotlib, which escapes its own text. A
Content-Security-Policy that allows nothing but inline styles backs this up: even a
string that slipped through could neither run nor fetch anything.
"""

from __future__ import annotations

from gpuscout._types import Finding, Status
from gpuscout.report import charts, fmt
from gpuscout.report.document import CeilingRow, Report, Roofline, Unavailable, WorkloadRow
from gpuscout.report.html_forecast import cost_section, fit_section, predictions_section
from gpuscout.report.html_kit import (
    card,
    chart,
    device,
    e,
    meter,
    none,
    num_cell,
    pill,
    table,
    unavailable,
)
from gpuscout.report.html_profile import profiles_section
from gpuscout.report.style import CSS

CSP = "default-src 'none'; style-src 'unsafe-inline'"
SECTIONS = (
    ("machine", "Machine and readiness"),
    ("ceilings", "Ceilings vs datasheet"),
    ("workloads", "CPU vs GPU"),
    ("roofline", "Roofline"),
    ("predictions", "Other GPUs"),
    ("fit", "Memory fit"),
    ("cost", "Cost"),
)


def _finding(f: Finding) -> str:
    subject = f' <span class="badge">{e(f.subject)}</span>' if f.subject else ""
    detail = f'<div class="detail">{e(f.detail)}</div>' if f.detail else ""
    fix = f'<div class="fix">fix: <code>{e(f.fix)}</code></div>' if f.fix else ""
    return (
        f'<div class="finding"><div class="head">{pill(f.status.value)}'
        f'<span class="id">{e(f.id)}</span>{subject}<span>{e(f.summary)}</span></div>'
        f"{detail}{fix}</div>"
    )


def machine_section(report: Report) -> str:
    kv = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in report.machine)
    problems = [f for f in report.findings if f.status in (Status.FAIL, Status.WARN)]
    problems.sort(key=lambda f: -f.status.severity)
    rest = [f for f in report.findings if f not in problems]
    if not report.findings:
        checks = none("no doctor findings in these runs (gpuscout doctor)")
    else:
        checks = "".join(_finding(f) for f in problems) or (
            '<p class="yes">Every readiness check passed.</p>'
        )
        if rest:
            items = "".join(
                f"<li>{pill(f.status.value)} <b>{e(f.id)}</b> {e(f.summary)}</li>" for f in rest
            )
            more = f"{len(rest)} more checks passed or did not apply"
            checks += f"<details><summary>{more}</summary><ul>{items}</ul></details>"
    body = f'<div class="grid2"><div><table class="kv">{kv}</table></div><div>{checks}</div></div>'
    return card("machine", "Machine and readiness", body)


def ceilings_section(rows: tuple[CeilingRow, ...] | Unavailable) -> str:
    lead = (
        "The best figure each micro-benchmark reached, beside the datasheet (GPUs) or "
        "formula (CPU) peak. Far below peak is worth a look; above peak means the peak "
        "is conservative (boost clocks)."
    )
    if isinstance(rows, Unavailable):
        return card("ceilings", "Ceilings vs datasheet", unavailable(rows), lead)
    if not rows:
        body = none("no micro-benchmarks in these runs (gpuscout bench micro)")
        return card("ceilings", "Ceilings vs datasheet", body, lead)
    out = []
    current = None
    for r in rows:
        if r.device != current:
            current = r.device
            out.append(
                f'<tr class="group"><td colspan="5">{device(r.device, r.device_name)}</td></tr>'
            )
        noisy = ' <span class="badge">noisy</span>' if r.noisy else ""
        out.append(
            f"<tr><td>{e(r.what)}{noisy}</td>{num_cell(fmt.num(r.measured), r.unit)}"
            f"{num_cell(fmt.num(r.peak), r.unit if r.peak is not None else '')}"
            f'<td class="num">{e(fmt.pct(r.fraction))}{meter(r.fraction)}</td>'
            f"<td class='small muted'>{e(r.peak_source)}</td></tr>"
        )
    head = ("Benchmark", "Measured", "Peak", "% of peak", "Peak from")
    return card("ceilings", "Ceilings vs datasheet", table(head, out, (1, 2, 3)), lead)


def workloads_section(rows: tuple[WorkloadRow, ...] | Unavailable) -> str:
    lead = (
        "Real training and inference on each device, written two ways: tutorial-style "
        "(reference) and tuned. Bars: throughput; the label says how many times the CPU's best."
    )
    if not isinstance(rows, Unavailable) and any(r.above_ceiling for r in rows):
        lead += (
            " A % of ceiling marked ! ran faster than its measured ceiling: that ceiling "
            "under-measured (a quick or noisy micro-benchmark)."
        )
    if isinstance(rows, Unavailable):
        return card("workloads", "CPU vs GPU", unavailable(rows), lead)
    if not rows:
        body = none("no workloads in these runs (gpuscout bench workload)")
        return card("workloads", "CPU vs GPU", body, lead)
    drawn = chart(*charts.chart_or_note(charts.workload_chart, rows))
    out = []
    for r in rows:
        name = r.workload + (f" {r.variant}" if r.variant else "")
        status = pill(r.status) + (
            f" <span class='small muted'>{e(r.error)}</span>" if r.error else ""
        )
        out.append(
            f"<tr><td>{e(name)}</td><td>{device(r.device, r.device_name)}</td>"
            f"<td>{e(r.impl)}</td>{num_cell(fmt.num(r.figure), r.unit)}"
            f"{num_cell(fmt.seconds(r.step_time_s))}"
            f"{num_cell(fmt.num(r.achieved_tflops))}"
            f"{num_cell(fmt.ceiling_pct(r.fraction, r.above_ceiling))}"
            f"{num_cell(fmt.ratio(r.speedup_vs_cpu) if r.device != 'cpu' else '')}"
            f"<td>{e(r.dtype or '')}</td><td>{status}</td></tr>"
        )
    head = ("Workload", "Device", "Code", "Throughput", "Step", "TFLOPS", "% of ceiling",
            "vs CPU", "Precision", "Status")  # fmt: skip
    return card("workloads", "CPU vs GPU", drawn + table(head, out, (3, 4, 5, 6, 7)), lead)


def roofline_section(roof: Roofline | Unavailable) -> str:
    lead = (
        "The roof is this machine's measured ceiling: memory bandwidth on the slope, the matmul "
        "peak on the flat. A workload left of the corner is limited by memory, right of it by "
        "compute; the gap to the roof is what tuning can still win."
    )
    if isinstance(roof, Unavailable):
        return card("roofline", "Roofline", unavailable(roof), lead)
    body = chart(*charts.chart_or_note(charts.roofline_chart, roof))
    if roof.missing:
        missing = e(", ".join(roof.missing))
        body += f'<p class="small muted">Not placed (no byte count recorded): {missing}.</p>'
    return card("roofline", "Roofline", body, lead)


def _summary(report: Report) -> str:
    items = "".join(f"<li>{e(s)}</li>" for s in report.summary) or "<li>Nothing measured yet.</li>"
    notes = "".join(f"<p class='notes'>{e(n)}</p>" for n in report.notes)
    shown = SECTIONS + ((("profile", "Your script"),) if report.profiles else ())
    toc = "".join(f'<a href="#{a}">{e(t)}</a>' for a, t in shown)
    return (
        f'<section class="summary"><h2>The answer</h2><ul>{items}</ul>{notes}'
        f'<nav class="toc">{toc}</nav></section>'
    )


def _footer(report: Report) -> str:
    rows = "".join(
        f"<tr><td class='num'>{r.id}</td><td>{e(r.kind)}</td>"
        f"<td>{e(r.started_at[:16].replace('T', ' '))}</td>"
        f"<td>{pill(r.status)}</td><td>{e(r.fingerprint.get('host', ''))}</td></tr>"
        for r in report.runs
    )
    return (
        f"<footer><p>Generated by gpuscout {e(report.gpuscout_version)} "
        f"at {e(report.generated_at)} "
        f"from these stored runs (<code>gpuscout show ID</code> lists every figure):</p>"
        f"<table><thead><tr><th class='num'>Run</th><th>Kind</th><th>Started (UTC)</th>"
        f"<th>Status</th><th>Host</th></tr></thead><tbody>{rows}</tbody></table></footer>"
    )


def render_html(report: Report) -> str:
    """The whole page as one string."""
    body = "".join(
        (
            machine_section(report),
            ceilings_section(report.ceilings),
            workloads_section(report.workloads),
            roofline_section(report.roofline),
            predictions_section(report.prediction),
            fit_section(report.fit),
            cost_section(report.advice),
            profiles_section(report.profiles),
        )
    )
    host = dict(report.machine).get("Host", "")
    gpus = dict(report.machine).get("GPUs", "")
    meta = f"{host} · GPUs: {gpus} · runs {', '.join(str(r.id) for r in report.runs)}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{e(report.title)}</title><style>{CSS}</style></head><body><main>"
        f'<header><h1>gpuscout report</h1><div class="meta">{e(meta)}</div></header>'
        f"{_summary(report)}{body}{_footer(report)}</main></body></html>\n"
    )
