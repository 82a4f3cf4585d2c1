"""`gpuscout doctor`: is this machine ready for deep learning?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from gpuscout._types import Finding, SystemInfo
from gpuscout.cli._common import DbOpt, JsonOpt, console, err_console, fail_from, print_json
from gpuscout.errors import GpuscoutError, UsageError


def probe(machine: Path | None, mem_mts: int | None, mem_channels: int | None) -> SystemInfo:
    """The live machine, or a recorded one replayed (for bug reports and tests)."""
    from gpuscout import probe as probe_mod

    if machine is not None:
        if not machine.is_file():
            raise UsageError(f"no such machine file: {machine}", "give a JSON file from --record")
        return probe_mod.probe_recorded(machine)
    return probe_mod.probe_system(mem_mts=mem_mts, mem_channels=mem_channels)


def store_findings(db: Path | None, system: SystemInfo, findings: list[Finding]) -> int:
    from gpuscout.doctor import exit_code
    from gpuscout.store import Store
    from gpuscout.store.fingerprint import fingerprint

    store = Store.open(db)
    try:
        with store.run("doctor", fingerprint(system)) as run:
            run.add_findings(findings)
            run.summary["exit_code"] = exit_code(findings)
            run.summary["failed"] = sum(1 for f in findings if f.status.value == "fail")
            run.summary["warnings"] = sum(1 for f in findings if f.status.value == "warn")
            run.summary["headline"] = headline(findings)
            return run.id
    finally:
        store.close()


def headline(findings: list[Finding]) -> str:
    """The worst finding in a few words, for `gpuscout history`."""
    worst = max(findings, key=lambda f: f.status.severity, default=None)
    if worst is None or worst.status.severity == 0:
        return "all checks passed"
    n_fail = sum(1 for f in findings if f.status.value == "fail")
    n_warn = sum(1 for f in findings if f.status.value == "warn")
    return f"{n_fail} failed, {n_warn} warnings: {worst.summary}"


def render(system: SystemInfo, findings: list[Finding]) -> None:
    from gpuscout.report.doctor_text import findings_view, machine_summary

    console.print(machine_summary(system))
    console.print()
    console.print(findings_view(findings))


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
    from gpuscout.doctor import diagnose, exit_code

    try:
        if record is not None:
            # Record once and diagnose the recording, so the file is exactly what was seen.
            from gpuscout.probe import probe_host
            from gpuscout.probe.recorded import probe_recorded, record_machine

            raw = record_machine(host=probe_host(mem_mts, mem_channels))
            record.write_text(_dumps(raw))
            system = probe_recorded(raw)
        else:
            system = probe(machine, mem_mts, mem_channels)
        findings = diagnose(system)
        run_id = None if no_store else store_findings(db, system, findings)
    except GpuscoutError as exc:
        fail_from(exc)
    code = exit_code(findings)
    if json_out:
        print_json({"run_id": run_id, "exit_code": code, "system": system, "findings": findings})
    else:
        render(system, findings)
        if run_id is not None:
            err_console.print(f"[dim]saved as run {run_id} (gpuscout show {run_id})[/]")
    raise typer.Exit(code)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
