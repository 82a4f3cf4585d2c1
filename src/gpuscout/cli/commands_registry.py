"""The command modules, in the order `gpuscout --help` lists them."""

from __future__ import annotations

from collections.abc import Callable

import typer

from gpuscout.cli import bench, doctor, gpus, history, run

REGISTRARS: list[Callable[[typer.Typer], None]] = [
    run.register,
    doctor.register,
    gpus.register,
    bench.register,
    history.register,
]
