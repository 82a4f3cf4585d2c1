"""What each command does, as a library: one function per command, each taking where
the results go (an open ``Store``, a database path, or None for the user's default) and
typed options, and returning a frozen, typed record. Nothing here prints or exits;
errors are ``GpuscoutError`` subclasses with a one-line hint. The measuring jobs store
each result as it finishes: Ctrl-C or SIGTERM marks the run "interrupted" and raises
``gpuscout.errors.Stopped`` ("interrupted: kept 3 results as run 7", exit code 130 or
143). The CLI parses, calls one of these and renders what it returns.

    >>> from gpuscout import jobs
    >>> from gpuscout.store import Store
    >>> with Store.open(":memory:") as store:
    ...     done = jobs.doctor(store, jobs.DoctorOptions(machine="machine.json"))
    ...     runs = jobs.history(store).runs

Importing this package is cheap: each job's module is imported when the job is first
asked for (``gpuscout --help`` loads none of them), and none imports a framework; the
measuring jobs import torch in the processes that measure.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gpuscout.jobs.listening import Progress, RunListener

# What type checkers see; at run time __getattr__ below imports each on first use.
if TYPE_CHECKING:
    from gpuscout.jobs.choosing import AdviseOptions, Catalog, advise, catalog
    from gpuscout.jobs.main_run import RunOptions, RunOutcome, run
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
    from gpuscout.jobs.memory_fit import FitOptions, FitOutcome, fit, local_gpus, models
    from gpuscout.jobs.pricing import (
        ImportOutcome,
        PriceListing,
        PriceRow,
        PricesOptions,
        import_prices,
        prices,
    )
    from gpuscout.jobs.profiling import ProfileOptions, ProfileOutcome, profile
    from gpuscout.jobs.readiness import DoctorOptions, DoctorOutcome, doctor
    from gpuscout.jobs.stored_runs import (
        Exported,
        History,
        ReportOptions,
        ReportOutcome,
        StoredRun,
        compare,
        delete_runs,
        export,
        history,
        import_file,
        import_runs,
        report,
        show,
    )
    from gpuscout.jobs.storing import StoreLike, run_fingerprint

# Each public name -> the module that defines it, imported on first use.
_WHERE = {
    "choosing": ("AdviseOptions", "Catalog", "advise", "catalog"),
    "main_run": ("RunOptions", "RunOutcome", "run"),
    "measuring": (
        "TINY",
        "DistOptions",
        "DistOutcome",
        "MicroOptions",
        "MicroOutcome",
        "WorkloadOptions",
        "WorkloadOutcome",
        "WorkloadSizes",
        "bench_dist",
        "bench_micro",
        "bench_workload",
    ),
    "memory_fit": ("FitOptions", "FitOutcome", "fit", "local_gpus", "models"),
    "pricing": (
        "ImportOutcome",
        "PriceListing",
        "PriceRow",
        "PricesOptions",
        "import_prices",
        "prices",
    ),
    "profiling": ("ProfileOptions", "ProfileOutcome", "profile"),
    "readiness": ("DoctorOptions", "DoctorOutcome", "doctor"),
    "stored_runs": (
        "Exported",
        "History",
        "ReportOptions",
        "ReportOutcome",
        "StoredRun",
        "compare",
        "delete_runs",
        "export",
        "history",
        "import_file",
        "import_runs",
        "report",
        "show",
    ),
    "storing": ("StoreLike", "run_fingerprint"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

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
    "ImportOutcome",
    "MicroOptions",
    "MicroOutcome",
    "PriceListing",
    "PriceRow",
    "PricesOptions",
    "ProfileOptions",
    "ProfileOutcome",
    "Progress",
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
    "delete_runs",
    "doctor",
    "export",
    "fit",
    "history",
    "import_file",
    "import_prices",
    "import_runs",
    "local_gpus",
    "models",
    "prices",
    "profile",
    "report",
    "run",
    "run_fingerprint",
    "show",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found once, then a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__
