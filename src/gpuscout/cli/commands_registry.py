"""The command modules, in the order `gpuscout --help` lists them."""

from __future__ import annotations

from collections.abc import Callable

import typer

from gpuscout.cli import advise, bench, doctor, fit, gpus, history, prices, profile, report, run

REGISTRARS: list[Callable[[typer.Typer], None]] = [
    run.register,
    doctor.register,
    gpus.register,
    prices.register,
    bench.register,
    fit.register,
    profile.register,
    advise.register,
    report.register,
    history.register,
]
