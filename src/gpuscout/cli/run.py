"""`gpuscout run`: the main job. Doctor, quick ceilings, the seed experiment, a verdict.

Everything lands in one stored run, so `gpuscout show` gives the whole picture later;
it is saved as it goes, so Ctrl-C or SIGTERM keeps what finished (the job raises
``Stopped``, which ``cli.main.main`` prints). The work is ``gpuscout.jobs.run``; this
module prints each stage as it ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path

import typer
from rich.markup import escape

from gpuscout import jobs
from gpuscout._types import Finding, Result, SystemInfo
from gpuscout.cli._common import (
    DbOpt,
    JsonOpt,
    console,
    err_console,
    fail_from,
    print_json,
    progress_bar,
    say_saved,
)
from gpuscout.cli._tables import render_micro, render_workloads
from gpuscout.errors import GpuscoutError
from gpuscout.jobs.listening import DOCTOR, MICRO, WORKLOADS, Progress
from gpuscout.report.doctor_text import findings_view, machine_summary

TITLES = {
    DOCTOR: "1. Readiness (gpuscout doctor)",
    MICRO: "2. Ceilings (gpuscout bench micro --quick)",
    WORKLOADS: "3. Real work: the Fashion-MNIST MLP and a small CNN, per device",
}


class _Printer(jobs.RunListener):
    """Each stage under its heading as it ends, a progress bar while it runs; nothing
    with --json (stdout stays pure JSON)."""

    def __init__(self, show: bool) -> None:
        self.show = show

    def stage(self, name: str) -> AbstractContextManager[Progress | None]:
        if self.show:
            console.rule(f"[bold]{TITLES[name]}")
        return nullcontext() if name == DOCTOR else progress_bar(self.show)

    def doctor_done(self, system: SystemInfo, findings: Sequence[Finding]) -> None:
        if self.show:
            console.print(machine_summary(system))
            console.print(findings_view(list(findings), problems_only=True))

    def micro_done(self, results: Sequence[Result]) -> None:
        if self.show:
            render_micro(results)

    def workloads_done(self, results: Sequence[Result]) -> None:
        if self.show:
            render_workloads(results)


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
    tiny: bool = typer.Option(False, "--tiny", hidden=True),
) -> None:
    """The main job: check this machine, measure every CPU and GPU, and say what it means."""
    options = jobs.RunOptions(skip_bench=skip_bench, report_to=report_to)
    if tiny:  # every stage real, at its smallest: the whole path in seconds (tests)
        options = replace(options, benchmarks=("launch",), sizes=jobs.TINY)
    try:
        out = jobs.run(db, options, _Printer(not json_out))
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json(
            {
                "run_id": out.run_id,
                "verdict": out.verdict,
                "advice": out.advice,
                "report": None if out.report_path is None else str(out.report_path),
                "report_error": out.report_error,
                "system": out.system,
                "findings": out.findings,
                "results": out.results,
            }
        )
        return
    _verdict(out)


def _verdict(out: jobs.RunOutcome) -> None:
    console.rule("[bold]Verdict")
    console.print(out.headline)
    if out.verdict:
        console.print(escape(out.verdict))  # it names devices, and a name may hold "[...]"
    if out.advice:
        console.print(escape(out.advice))
        console.print("[dim]every option, its cost and the break-even: gpuscout advise[/]")
    say_saved(out.run_id)
    if out.report_path is not None:  # escaped: a path may hold "[...]", which Rich reads as markup
        console.print(f"report: {escape(str(out.report_path))}", soft_wrap=True)
    else:
        err_console.print(
            f"[yellow]warning:[/] the report was not written: {escape(out.report_error or '')}",
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    app.command("run")(run)
