"""What each command does, as a library: one function per command, each taking where
the results go (an open ``Store``, a database path, or None for the user's default) and
typed options, and returning a frozen, typed record. Nothing here prints or exits;
errors are ``GpuscoutError`` subclasses with a one-line hint. The CLI parses, calls one
of these and renders what it returns.

    >>> from gpuscout import jobs
    >>> from gpuscout.store import Store
    >>> with Store.open(":memory:") as store:
    ...     done = jobs.doctor(store, jobs.DoctorOptions(machine="machine.json"))
    ...     runs = jobs.history(store).runs

Importing this package imports no framework: the measuring jobs import torch in the
processes that measure.
"""

from __future__ import annotations

from gpuscout.jobs.choosing import AdviseOptions, Catalog, advise, catalog
from gpuscout.jobs.main_run import RunListener, RunOptions, RunOutcome, run
from gpuscout.jobs.measuring import (
    TINY,
    DistOptions,
    DistOutcome,
    MicroOptions,
    MicroOutcome,
    WorkloadOptions,
    WorkloadOutcome,
    WorkloadSizes,
    bench_dist,
    bench_micro,
    bench_workload,
)
from gpuscout.jobs.memory_fit import FitOptions, FitOutcome, fit, local_gpus
from gpuscout.jobs.readiness import DoctorOptions, DoctorOutcome, doctor
from gpuscout.jobs.stored_runs import (
    Exported,
    History,
    ReportOptions,
    ReportOutcome,
    StoredRun,
    compare,
    export,
    history,
    import_runs,
    report,
    show,
)
from gpuscout.jobs.storing import StoreLike, run_fingerprint

__all__ = [
    "TINY",
    "AdviseOptions",
    "Catalog",
    "DistOptions",
    "DistOutcome",
    "DoctorOptions",
    "DoctorOutcome",
    "Exported",
    "FitOptions",
    "FitOutcome",
    "History",
    "MicroOptions",
    "MicroOutcome",
    "ReportOptions",
    "ReportOutcome",
    "RunListener",
    "RunOptions",
    "RunOutcome",
    "StoreLike",
    "StoredRun",
    "WorkloadOptions",
    "WorkloadOutcome",
    "WorkloadSizes",
    "advise",
    "bench_dist",
    "bench_micro",
    "bench_workload",
    "catalog",
    "compare",
    "doctor",
    "export",
    "fit",
    "history",
    "import_runs",
    "local_gpus",
    "report",
    "run",
    "run_fingerprint",
    "show",
]
