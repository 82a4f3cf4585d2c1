"""What every command shares: the console, JSON output and one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from gpuscout._types import to_jsonable
from gpuscout.errors import GpuscoutError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

JSON_HELP = "Print machine-readable JSON instead of tables."
DB_HELP = "Results database (default: gpuscout.db in the user's data directory)."

JsonOpt = typer.Option(False, "--json", help=JSON_HELP)
DbOpt = typer.Option(None, "--db", help=DB_HELP, dir_okay=False)


def print_json(obj: Any) -> None:
    """JSON on stdout, nothing else: safe to pipe into ``jq``."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def fail(message: str, hint: str = "", code: int = 2) -> NoReturn:
    """One clear line (and the fix on a second), then exit; never a traceback."""
    from rich.markup import escape

    # Messages quote user input and machine names: "[/]" in a file name must print, not
    # be read as markup (it raised a traceback).
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        err_console.print(f"  {escape(hint)}", soft_wrap=True)
    raise typer.Exit(code)


def fail_from(exc: GpuscoutError) -> NoReturn:
    fail(exc.message, exc.hint, exc.exit_code)


def run_fingerprint() -> dict[str, Any]:
    """This machine's environment fingerprint for a stored run; a minimal one (host and
    version) when the probe fails, because storing the result matters more."""
    try:
        from gpuscout.probe import probe_system
        from gpuscout.store.fingerprint import fingerprint

        return fingerprint(probe_system())
    except Exception:
        import platform

        from gpuscout import __version__

        return {"host": platform.node(), "gpuscout_version": __version__}


def db_path(db: Path | None) -> Path | None:
    return db
