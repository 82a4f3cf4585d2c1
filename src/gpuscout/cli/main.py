"""The ``gpuscout`` command: registers each sub-command module on one Typer app."""

from __future__ import annotations

from typing import Any

import typer
import typer.main

from gpuscout import __version__
from gpuscout.cli import _common, commands_registry
from gpuscout.errors import Stopped

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


# Each command module owns its commands; the order is the order of `gpuscout --help`.
for _register in commands_registry.REGISTRARS:
    _register(app)


def main() -> None:
    try:
        app()
    except Stopped as stop:  # a job kept what finished before Ctrl-C or SIGTERM
        _common.err_console.print(stop.message, soft_wrap=True, markup=False)
        raise SystemExit(stop.exit_code) from None


# Typer's Click objects are read by duck typing: newer Typer vendors Click, older Typer
# depends on it, and the attributes used here are the same in both.
def _click_commands() -> dict[tuple[str, ...], Any]:
    """Every command and group of the app by its words after ``gpuscout``."""
    root = typer.main.get_command(app)
    found: dict[tuple[str, ...], Any] = {(): root}
    stack: list[tuple[tuple[str, ...], Any]] = [((), root)]
    while stack:
        path, cmd = stack.pop()
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            key = (*path, name)
            found[key] = sub
            stack.append((key, sub))
    return found


def command_paths() -> set[tuple[str, ...]]:
    """("run",), ("bench", "micro") ...: what may follow ``gpuscout`` (hidden ones too)."""
    return set(_click_commands())


def option_names(path: tuple[str, ...]) -> set[str]:
    """Every option spelling the command at ``path`` accepts (``--json``, ``-o`` ...)."""
    cmd = _click_commands()[path]
    names = {"--help", "-h"}
    for param in cmd.params:
        if getattr(param, "param_type_name", "") == "option":
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def parse_problem(argv: list[str]) -> str | None:
    """None when the CLI accepts ``argv`` (the words after ``gpuscout``), else the parse
    error it would print. Nothing runs: only the options and values are checked."""
    cmd: Any = typer.main.get_command(app)
    name, args = "gpuscout", list(argv)
    try:
        while True:
            ctx = cmd.make_context(name, args)
            # Click 8.2 keeps the sub-command's name in _protected_args; 8.1 in
            # protected_args (Typer vendors the one, older Typer depends on the other).
            held = ctx.__dict__.get("_protected_args") or ctx.__dict__.get("protected_args")
            rest = [*(held or []), *ctx.args]
            if not hasattr(cmd, "resolve_command") or not rest:
                return None
            name, sub, args = cmd.resolve_command(ctx, rest)
            if sub is None:
                return f"no command {rest[0]!r}"
            cmd = sub
    except Exception as exc:  # Click's usage errors; anything else is a real bug
        message = getattr(exc, "format_message", None)
        if message is None:
            raise
        return str(message())
