"""`gpuscout doctor`: is this machine ready for deep learning?"""

from __future__ import annotations

from pathlib import Path

import typer

from gpuscout import jobs
from gpuscout.cli._common import (
    DbOpt,
    JsonOpt,
    console,
    fail_from,
    print_json,
    say_saved,
)
from gpuscout.errors import GpuscoutError
from gpuscout.report.doctor_text import findings_view, machine_summary


def doctor(
    json_out: bool = JsonOpt,
    db: Path | None = DbOpt,
    mem_mts: int | None = typer.Option(
        None, "--mem-mts", min=100, help="Memory speed in MT/s (DDR4-2933 -> 2933), if known."
    ),
    mem_channels: int | None = typer.Option(
        None, "--mem-channels", min=1, max=24, help="Populated memory channels, if known."
    ),
    machine: Path | None = typer.Option(
        None, "--machine", help="Replay a recorded machine (JSON) instead of probing this one."
    ),
    record: Path | None = typer.Option(
        None, "--record", help="Write this machine's raw readings to a JSON file (for bug reports)."
    ),
    no_store: bool = typer.Option(False, "--no-store", help="Do not save this run."),
) -> None:
    """Check driver, CUDA, framework build, PCIe, throttling and GPU health; print the fixes.

    Exit code 0 when no check failed, 1 when one did, 2 for usage errors.
    """
    options = jobs.DoctorOptions(machine, record, mem_mts, mem_channels, store=not no_store)
    try:
        out = jobs.doctor(db, options)
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json(
            {
                "run_id": out.run_id,
                "exit_code": out.exit_code,
                "system": out.system,
                "findings": out.findings,
            }
        )
    else:
        console.print(machine_summary(out.system))
        console.print()
        console.print(findings_view(list(out.findings)))
        say_saved(out.run_id)
    raise typer.Exit(out.exit_code)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
