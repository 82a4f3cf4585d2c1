"""The doctor's job: probe this machine (or replay a recorded one), diagnose it, and
store the findings as one run with its headline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gpuscout._types import Finding, Status, SystemInfo
from gpuscout.doctor import diagnose, exit_code
from gpuscout.errors import UsageError
from gpuscout.jobs.storing import StoreLike, save
from gpuscout.probe import probe_host, probe_recorded, probe_system, record_machine
from gpuscout.store import fingerprint


@dataclass(frozen=True)
class DoctorOptions:
    """``machine``: replay a recorded machine (JSON) instead of probing this one.
    ``record_to``: write this machine's raw readings there first, then diagnose that
    recording (so the file is exactly what was seen). ``mem_mts`` and ``mem_channels``
    are the memory's speed and populated channels where the user knows them."""

    machine: Path | str | None = None
    record_to: Path | str | None = None
    mem_mts: int | None = None
    mem_channels: int | None = None
    store: bool = True


@dataclass(frozen=True)
class DoctorOutcome:
    system: SystemInfo
    findings: tuple[Finding, ...]
    exit_code: int  # 0 when no check failed, 1 when one did
    headline: str  # what `gpuscout history` shows for the run
    run_id: int | None  # None when not stored


def doctor(where: StoreLike = None, options: DoctorOptions | None = None) -> DoctorOutcome:
    """Is this machine ready for deep learning? Every check's finding, stored as one run
    of kind "doctor" in ``where`` unless ``options.store`` is False."""
    opts = options or DoctorOptions()
    system = _system(opts)
    findings = diagnose(system)
    code = exit_code(findings)
    said = headline(findings)
    run_id = None
    if opts.store:
        summary = {
            "exit_code": code,
            "failed": _count(findings, Status.FAIL),
            "warnings": _count(findings, Status.WARN),
            "headline": said,
        }
        run_id = save(where, "doctor", fingerprint(system), findings=findings, summary=summary)
    return DoctorOutcome(system, tuple(findings), code, said, run_id)


def _system(opts: DoctorOptions) -> SystemInfo:
    """The live machine, a recorded one replayed (bug reports, tests), or the live one
    recorded to a file first."""
    if opts.record_to is not None:
        raw = record_machine(host=probe_host(opts.mem_mts, opts.mem_channels))
        target = Path(opts.record_to)
        try:
            target.write_text(json.dumps(raw, indent=2))
        except OSError as exc:  # a folder, a read-only place, a full disk
            why = exc.strerror or type(exc).__name__
            raise UsageError(
                f"cannot write the recording to {target}: {why}",
                "give --record a file in a folder you can write to",
            ) from None
        return probe_recorded(raw)
    if opts.machine is not None:
        machine = Path(opts.machine)
        if not machine.is_file():
            raise UsageError(f"no such machine file: {machine}", "give a JSON file from --record")
        return probe_recorded(machine)
    return probe_system(mem_mts=opts.mem_mts, mem_channels=opts.mem_channels)


def _count(findings: list[Finding], status: Status) -> int:
    return sum(1 for f in findings if f.status == status)


def headline(findings: list[Finding]) -> str:
    """The worst finding in a few words, for `gpuscout history`."""
    worst = max(findings, key=lambda f: f.status.severity, default=None)
    if worst is None or worst.status.severity == 0:
        return "all checks passed"
    n_fail = _count(findings, Status.FAIL)
    n_warn = _count(findings, Status.WARN)
    return f"{n_fail} failed, {n_warn} warnings: {worst.summary}"
