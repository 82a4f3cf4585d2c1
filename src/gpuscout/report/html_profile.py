"""The report's "Your script" section: each profiled script, what bounds it, where its
step goes, the fixes that matter and what it would do on other GPUs."""

from __future__ import annotations

from gpuscout.report import fmt
from gpuscout.report.document import ProfileRow, Unavailable
from gpuscout.report.html_kit import card, device, e, num_cell, table, unavailable

LEAD = (
    "Your own training script, run under `gpuscout profile`: one verdict, where each step's "
    "time goes, and the changes that would help most, each with its expected gain."
)


def profiles_section(rows: tuple[ProfileRow, ...] | Unavailable) -> str:
    """The section, or "" when no script was profiled (most reports)."""
    if isinstance(rows, Unavailable):
        return card("profile", "Your script", unavailable(rows), LEAD)
    return card("profile", "Your script", "".join(_one(r) for r in rows), LEAD) if rows else ""


def _one(r: ProfileRow) -> str:
    disturbed = " <span class='badge'>measured beside busy processes</span>" if r.disturbed else ""
    head = (
        f"<h3>{e(r.script)} on {device(r.device, r.device_name)}{disturbed}</h3>"
        f"<p><code>{e(r.command)}</code> (run {r.run_id}): {e(fmt.seconds(r.step_s))} a step, "
        f"{e(fmt.num(r.figure, r.unit))}, {e(fmt.num(r.achieved_tflops))} TFLOPS "
        f"({e(fmt.pct(r.fraction))} of this device's ceiling)</p>"
        f"<p><strong>{e(r.words)}</strong></p>"
    )
    parts = [f"<tr><td>{e(what)}</td>{num_cell(fmt.seconds(s))}</tr>" for what, s in r.parts]
    fixes = [
        f"<tr><td>{e(what)}</td>{num_cell(fmt.ratio(gain))}<td>{e(why)}</td></tr>"
        for what, why, gain in r.fixes
    ]
    warnings = "".join(f"<li>{e(w)}</li>" for w in r.warnings)
    body = head + table(("Where a step goes", "Time"), parts, (1,))
    if fixes:
        body += table(("What to change first", "Steps per second", "Why"), fixes, (1,))
    if warnings:
        body += f"<ul class='small'>{warnings}</ul>"
    if r.projections:
        rows = [
            f"<tr><td>{e(gpu)}</td>{num_cell(fmt.seconds(step))}{num_cell(fmt.ratio(x))}"
            f"<td>{e(bound)}</td></tr>"
            for gpu, step, x, bound in r.projections
        ]
        body += table(("The same script on", "Step", "Speed-up", "Bound by"), rows, (1, 2))
    return body
