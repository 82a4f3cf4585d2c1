"""`gpuscout run`: the main job. Doctor, quick ceilings, the seed experiment, a verdict.

Everything lands in one stored run, so `gpuscout show` gives the whole picture later.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from gpuscout._types import Finding, Result, Status, SystemInfo
from gpuscout.cli._common import DbOpt, JsonOpt, console, err_console, fail_from, print_json
from gpuscout.errors import GpuscoutError
from gpuscout.report.fmt import plural
from gpuscout.timing.load import disturbance

if TYPE_CHECKING:
    from gpuscout.store import Store


def _doctor(json_out: bool) -> tuple[SystemInfo, list[Finding]]:
    from gpuscout.doctor import diagnose
    from gpuscout.probe import probe_system
    from gpuscout.report.doctor_text import findings_view, machine_summary

    system = probe_system()
    findings = diagnose(system)
    if not json_out:
        console.rule("[bold]1. Readiness (gpuscout doctor)")
        console.print(machine_summary(system))
        console.print(findings_view(findings, problems_only=True))
    return system, findings


def _micro(system: SystemInfo, json_out: bool) -> list[Result]:
    from gpuscout.bench import run_micro
    from gpuscout.cli.bench import _progress, render

    if not json_out:
        console.rule("[bold]2. Ceilings (gpuscout bench micro --quick)")
    with _progress(not json_out) as progress:
        results = run_micro(None, None, True, progress, system=system)
    if not json_out:
        render(results)
    return results


def _workloads(micro: list[Result], db: Path | None, json_out: bool) -> tuple[list[Result], str]:
    from gpuscout.cli.bench import _progress
    from gpuscout.report.verdict import verdict
    from gpuscout.workloads import QUICK_WORKLOADS, run_workloads
    from gpuscout.workloads.ceilings import from_results

    if not json_out:
        console.rule("[bold]3. Real work: the Fashion-MNIST MLP and a small CNN, per device")
    # Efficiencies are measured against the ceilings this same run just measured.
    ceilings = {d: from_results(micro, d, "this run") for d in sorted({r.device for r in micro})}
    with _progress(not json_out) as progress:
        results = run_workloads(
            QUICK_WORKLOADS, "all", "both", quick=True, db=db, ceilings=ceilings, progress=progress
        )
    if not json_out:
        from gpuscout.cli.workload import render as render_workloads

        render_workloads(results)
    # The headline says first whether the figures were disturbed, over every result.
    return results, verdict(results, say_disturbed=False)


def run(
    json_out: bool = JsonOpt,
    db: Path | None = DbOpt,
    skip_bench: bool = typer.Option(False, "--skip-bench", help="Only run the doctor."),
    report_to: Path | None = typer.Option(
        None,
        "--report",
        help="Where to write the HTML report (default: reports/run-ID.html next to the database).",
        dir_okay=False,
    ),
) -> None:
    """The main job: check this machine, measure every CPU and GPU, and say what it means."""
    from gpuscout.store import Store
    from gpuscout.store.fingerprint import fingerprint

    try:
        system, findings = _doctor(json_out)
        results: list[Result] = [] if skip_bench else _micro(system, json_out)
        work, said = ([], "") if skip_bench else _workloads(results, db, json_out)
        results += work
        store = Store.open(db)
        try:
            with store.run("run", fingerprint(system)) as handle:
                handle.add_findings(findings)
                handle.add_results(results)
                handle.summary["headline"] = _stored_headline(findings, results, said)
                run_id = handle.id
            # From the store just written: a second open would find an in-memory one empty.
            report_path, report_error, advice = _write_report(store, db, run_id, report_to)
        finally:
            store.close()
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json(
            {
                "run_id": run_id,
                "verdict": said,
                "advice": advice,
                "report": None if report_path is None else str(report_path),
                "report_error": report_error,
                "system": system,
                "findings": findings,
                "results": results,
            }
        )
        return
    console.rule("[bold]Verdict")
    console.print(_headline(findings, results))
    if said:
        console.print(escape(said))  # it names devices, and a name may hold "[...]"
    if advice:
        console.print(escape(advice))
        console.print("[dim]every option, its cost and the break-even: gpuscout advise[/]")
    err_console.print(f"[dim]saved as run {run_id} (gpuscout show {run_id})[/]")
    if report_path is not None:  # escaped: a path may hold "[...]", which Rich reads as markup
        console.print(f"report: {escape(str(report_path))}", soft_wrap=True)
    else:
        err_console.print(
            f"[yellow]warning:[/] the report was not written: {escape(report_error or '')}",
            soft_wrap=True,
        )


def _write_report(
    store: Store, db: Path | None, run_id: int, path: Path | None
) -> tuple[Path | None, str | None, str | None]:
    """The run's HTML report: (its path, None, the advice it gives), or (None, why not,
    None). Never raises: the measurements are already stored, and a report can be written
    later (gpuscout report). The advice (which GPU, if any, and what a run costs) is the
    one the report computed, so the verdict and the report say the same thing."""
    try:
        from gpuscout.report import build_report, default_report_path, write_report

        target = path if path is not None else default_report_path(db, run_id)
        report = build_report(store, [run_id])
        advice = getattr(report.advice, "verdict", None)
        return write_report(report, target, "html"), None, advice
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}", None


def _stored_headline(findings: list[Finding], results: list[Result], said: str) -> str:
    """What `history` shows for the run: the verdict, after any disturbance."""
    if not said:
        return _headline(findings, results)
    disturbed = disturbance(results)
    return said if disturbed is None else f"{disturbed.line()}\n{said}"


def _headline(findings: list[Finding], results: list[Result]) -> str:
    """Readiness and the count of measurements; first, whether those were disturbed (a
    busy host's figures are not this machine's, so "ready" alone would mislead)."""
    fails = [f for f in findings if f.status is Status.FAIL]
    ok = sum(1 for r in results if r.status == "ok")
    disturbed = disturbance(results)
    if fails:
        state = plural(len(fails), "readiness problem")
    else:
        state = "readiness checks passed" if disturbed else "ready"
    head = f"{state}; {plural(ok, 'measurement')}"
    return head if disturbed is None else f"{disturbed.line()}\n{head}"


def register(app: typer.Typer) -> None:
    app.command("run")(run)
