"""Errors the user can act on. Each carries a one-line ``hint`` with the fix.

The CLI prints ``message`` and ``hint`` on one line each and exits with ``exit_code``;
it never shows a traceback for these.
"""

from __future__ import annotations

from collections.abc import Sequence


class GpuscoutError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(GpuscoutError):
    """Bad input from the user: an unknown name, an impossible option. Exit 2."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A name (GPU, model, benchmark) that is not known; ``suggestions`` are close matches."""

    def __init__(
        self, kind: str, name: str, suggestions: list[str], known: Sequence[str] = ()
    ) -> None:
        # Nothing close: a short list of what is known beats an empty hint.
        if suggestions:
            hint = f"did you mean {', '.join(suggestions)}?"
        elif 0 < len(known) <= 12:
            hint = f"use one of {', '.join(known)}"
        else:
            hint = ""
        super().__init__(f"unknown {kind} {name!r}", hint)
        self.suggestions = suggestions


class StoreError(GpuscoutError):
    """The results database is unusable (corrupted, foreign, newer schema). Exit 2."""

    exit_code = 2


class CatalogError(GpuscoutError):
    """The shipped catalog data is malformed (a bug in gpuscout, not the user's fault)."""


class Terminated(BaseException):
    """SIGTERM, raised where the process is (``isolate.sigterm_unwinds``) so that it
    unwinds as Ctrl-C does: workers stopped, finished results kept, temp files removed.
    A BaseException, like KeyboardInterrupt, so no ``except Exception`` swallows it."""

    exit_code = 143  # 128 + SIGTERM, what a shell reports for a process it ended


class Stopped(BaseException):
    """Ctrl-C or SIGTERM ended a job after it kept what had finished. ``message`` says
    what was kept ("interrupted: kept 3 results as run 7"); ``exit_code`` is 130 (SIGINT)
    or 143 (SIGTERM). The CLI prints the message and exits with the code, no traceback.
    A BaseException for the reason ``Terminated`` is one: nothing may swallow it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
