"""The main job (`gpuscout run`): the doctor, quick ceilings on every device, the real
workloads measured against those ceilings, a verdict, one stored run and its report.

Each stage is a function of this module, so a test can put a recording in its place;
a ``RunListener`` sees each stage begin and end (the CLI prints it as it goes). The run
is stored as it goes: opened once the doctor has seen the machine, each result written
as it finishes, so Ctrl-C or SIGTERM keeps every finished measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import gpuscout.report as reporting
import gpuscout.workloads as workloads_pkg
from gpuscout._types import Finding, Result, Status, SystemInfo
from gpuscout.bench import run_micro
from gpuscout.doctor import diagnose
from gpuscout.jobs.listening import DOCTOR, MICRO, WORKLOADS, Progress, RunListener
from gpuscout.jobs.measuring import OWN_SIZES, WorkloadSizes
from gpuscout.jobs.storing import StoreLike, db_location, keeping
from gpuscout.probe import probe_system
from gpuscout.report.fmt import plural
from gpuscout.report.verdict import verdict
from gpuscout.store import Store, fingerprint
from gpuscout.timing.load import disturbance
from gpuscout.workloads import run_workloads
from gpuscout.workloads.ceilings import from_results

# Where the measuring stages store each result as it finishes, while a run is going.
# Not an argument: a stage a test puts in place keeps the plain signature (its results
# are stored when the run finishes).
_KEEP: ContextVar[Callable[[Result], None] | None] = ContextVar("keep", default=None)


@dataclass(frozen=True)
class RunOptions:
    """``skip_bench``: only the doctor. ``report_to``: the HTML report's path (default
    reports/run-ID.html beside the database). The rest make a run smaller than the
    standard one (tests, rehearsals): ``benchmarks`` a subset of the quick
    micro-benchmarks, ``workloads`` instead of the quick ones, ``sizes`` each workload's."""

    skip_bench: bool = False
    report_to: Path | None = None
    benchmarks: tuple[str, ...] | None = None
    workloads: tuple[str, ...] | None = None  # None: the quick set, as registered now
    sizes: WorkloadSizes = OWN_SIZES


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    system: SystemInfo
    findings: tuple[Finding, ...]
    results: tuple[Result, ...]  # the micro-benchmarks', then the workloads'
    verdict: str  # the workloads' verdict in plain words ("" with skip_bench)
    headline: str  # readiness and the count of measurements, disturbance first
    advice: str | None  # which GPU, if any, and what a run costs (the report's)
    report_path: Path | None  # None when the report could not be written ...
    report_error: str | None  # ... and why


def run(
    where: StoreLike = None,
    options: RunOptions | None = None,
    listener: RunListener | None = None,
) -> RunOutcome:
    """Check this machine, measure every CPU and GPU, say what it means, store it as one
    run of kind "run" and write its report. A report that cannot be written does not fail
    the run (the measurements are stored first): ``report_error`` says why. Ctrl-C or
    SIGTERM ends the job with ``Stopped`` once the run is marked "interrupted" with the
    findings and every finished measurement."""
    opts = options or RunOptions()
    hear = listener or RunListener()
    with keeping(where, "run") as keeper:
        with hear.stage(DOCTOR):
            system, findings = examine()
        keeper.begin(fingerprint(system))
        keeper.keep_findings(findings)
        hear.doctor_done(system, findings)
        results: list[Result] = []
        said = ""
        if not opts.skip_bench:
            results, said = _measure(system, opts, hear, db_location(where), keeper.keep)
        summary = {"headline": _stored_headline(findings, results, said)}
        run_id = keeper.finish(results, summary)
        assert run_id is not None  # a run is always stored
        # From the store just written: a second open would find an in-memory one empty.
        path, error, advice = _write_report(keeper.store, run_id, opts.report_to)
    return RunOutcome(
        run_id,
        system,
        tuple(findings),
        tuple(results),
        said,
        headline(findings, results),
        advice,
        path,
        error,
    )


def _measure(
    system: SystemInfo,
    opts: RunOptions,
    hear: RunListener,
    db: Path | str | None,
    keep: Callable[[Result], None],
) -> tuple[list[Result], str]:
    """Stages 2 and 3, each result stored through ``keep`` as it finishes: the ceilings'
    results, then the workloads' (with their ceilings), and the verdict."""
    token = _KEEP.set(keep)
    try:
        with hear.stage(MICRO) as progress:
            micro = ceilings(system, opts, progress)
        hear.micro_done(micro)
        with hear.stage(WORKLOADS) as progress:
            work, said = workloads(micro, db, opts, progress)
        hear.workloads_done(work)
    finally:
        _KEEP.reset(token)
    return [*micro, *work], said  # a new list: each stage's own stays as it was heard


def examine() -> tuple[SystemInfo, list[Finding]]:
    """Stage 1, the doctor: this machine and its findings."""
    system = probe_system()
    return system, diagnose(system)


def ceilings(system: SystemInfo, opts: RunOptions, progress: Progress | None) -> list[Result]:
    """Stage 2: the quick micro-benchmarks on every device."""
    return run_micro(None, opts.benchmarks, True, progress, system=system, on_result=_KEEP.get())


def workloads(
    micro: list[Result], db: Path | str | None, opts: RunOptions, progress: Progress | None
) -> tuple[list[Result], str]:
    """Stage 3: the quick workloads on every device, and their verdict."""
    # Efficiencies are measured against the ceilings this same run just measured.
    measured = {d: from_results(micro, d, "this run") for d in sorted({r.device for r in micro})}
    names = opts.workloads if opts.workloads is not None else workloads_pkg.QUICK_WORKLOADS
    results = run_workloads(
        names,
        "all",
        "both",
        quick=True,
        db=db,
        ceilings=measured,
        progress=progress,
        on_result=_KEEP.get(),
        **opts.sizes.fields(),
    )
    # The headline says first whether the figures were disturbed, over every result.
    return results, verdict(results, say_disturbed=False)


def _write_report(
    store: Store, run_id: int, path: Path | None
) -> tuple[Path | None, str | None, str | None]:
    """The run's HTML report: (its path, None, the advice it gives), or (None, why not,
    None). Never raises: the measurements are already stored, and a report can be written
    later (gpuscout report). The advice (which GPU, if any, and what a run costs) is the
    one the report computed, so the verdict and the report say the same thing."""
    try:
        target = path if path is not None else reporting.default_report_path(store.path, run_id)
        report = reporting.build_report(store, [run_id])
        advice = getattr(report.advice, "verdict", None)
        return reporting.write_report(report, target, "html"), None, advice
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}", None


def _stored_headline(findings: list[Finding], results: list[Result], said: str) -> str:
    """What `history` shows for the run: the verdict, after any disturbance."""
    if not said:
        return headline(findings, results)
    disturbed = disturbance(results)
    return said if disturbed is None else f"{disturbed.line()}\n{said}"


def headline(findings: Sequence[Finding], results: Sequence[Result]) -> str:
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
