"""The ``gpuscout`` command: registers each sub-command module on one Typer app."""

from __future__ import annotations

import typer

from gpuscout import __version__
from gpuscout.cli import _common

app = typer.Typer(
    name="gpuscout",
    help="Do I need a GPU for deep learning, which one, and is mine working? "
    "Measured, not guessed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        _common.console.print(f"gpuscout {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Do I need a GPU for deep learning, which one, and is mine working?"""


def _register() -> None:
    # Imported here so that `import gpuscout.cli.main` stays cheap and each module owns
    # its commands; the order is the order of `gpuscout --help`.
    from gpuscout.cli import commands_registry

    for register in commands_registry.REGISTRARS:
        register(app)


_register()


def main() -> None:
    app()
