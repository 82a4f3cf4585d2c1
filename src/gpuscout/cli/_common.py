"""What every command shares: the console, JSON output, one-line errors, the progress
bar and the line that says where a run was saved."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import (
    Console,
    ConsoleOptions,
    ConsoleRenderable,
    RenderableType,
    RenderHook,
    RenderResult,
)
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.progress import Progress as Bar
from rich.segment import Segment

from gpuscout._types import to_jsonable
from gpuscout.errors import GpuscoutError
from gpuscout.jobs import Progress

# C0 and C1 controls but newline and tab, DEL, and the marks that reorder text: what a
# terminal would obey (colour, title, cursor, a cleared screen) or a reader be fooled by.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with each character a terminal would act on shown as U+FFFD instead."""
    return _UNPRINTABLE.sub("\ufffd", text)


class _Printable:
    """A renderable drawn as Rich draws it, its text made printable; Rich's own styles
    and cursor controls (separate segments) pass as they are."""

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            if segment.control or not _UNPRINTABLE.search(segment.text):
                yield segment
            else:
                yield Segment(printable(segment.text), segment.style)


class _PrintableOnly(RenderHook):
    """Whatever a console prints has no control character in its text: names, hosts and
    messages come from stored runs, imported files and other machines."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Printable(r) for r in renderables]


console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
for _console in (console, err_console):
    _console.push_render_hook(_PrintableOnly())

JSON_HELP = "Print machine-readable JSON instead of tables."
DB_HELP = "Results database (default: gpuscout.db in the user's data directory)."

JsonOpt = typer.Option(False, "--json", help=JSON_HELP)
DbOpt = typer.Option(None, "--db", help=DB_HELP, dir_okay=False)


def print_json(obj: Any) -> None:
    """JSON on stdout, nothing else: safe to pipe into ``jq``."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def print_error(message: str, hint: str = "") -> None:
    """ "error: message" on stderr, and the fix on a second line when there is one."""
    # Messages quote user input and machine names: "[/]" in a file name must print, not
    # be read as markup (it raised a traceback).
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        err_console.print(f"  {escape(hint)}", soft_wrap=True)


def fail(message: str, hint: str = "", code: int = 2) -> NoReturn:
    """One clear line (and the fix on a second), then exit; never a traceback."""
    print_error(message, hint)
    raise typer.Exit(code)


def fail_from(exc: GpuscoutError) -> NoReturn:
    fail(exc.message, exc.hint, exc.exit_code)


def id_ranges(ids: Sequence[int]) -> str:
    """5, 1, 2, 3, 7, 8 -> "1-3, 5, 7-8": sorted, each unbroken run of ids as one span."""
    spans: list[list[int]] = []
    for i in sorted(set(ids)):
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def say_saved(run_id: int | None) -> None:
    """Where the run went, on stderr (stdout keeps the tables); nothing if not stored."""
    if run_id is not None:
        err_console.print(f"[dim]saved as run {run_id} (gpuscout show {run_id})[/]")


@contextmanager
def progress_bar(enabled: bool, start: str = "starting") -> Iterator[Progress | None]:
    """A Rich progress bar on stderr, so stdout stays clean for tables and --json; none
    where stderr is not a terminal (a log file would get blank lines, not a bar). It
    yields the (label, done, total) callback the jobs take; total 0 is "not known yet"."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    bar = Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
    )
    with bar:
        task = bar.add_task(start, total=None)

        def update(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total or None)

        yield update
