"""The ``gpuscout`` command: registers each sub-command module on one Typer app, and
``main()``, the last line of defence between any exception and the user's terminal."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import platform
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, NoReturn

import typer
import typer.main

from gpuscout import __version__
from gpuscout.cli import _common, commands_registry
from gpuscout.errors import GpuscoutError, Stopped, Terminated
from gpuscout.store.codec import utc_now
from gpuscout.store.paths import default_data_dir

CRASH_LOG = "crash.log"  # in the data directory, beside the results database
DEBUG_ENV = "GPUSCOUT_DEBUG"

app = typer.Typer(
    name="gpuscout",
    help="Do I need a GPU for deep learning, which one, and is mine working? "
    "Measured, not guessed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _Flags:
    """What the root options asked of ``main()`` (set by their callback, read after the
    command has raised)."""

    debug = False


def _version(value: bool) -> None:
    if value:
        _common.console.print(f"gpuscout {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(
        False,
        "--debug",
        help=f"Show the traceback of an internal error instead of writing it to {CRASH_LOG} "
        f"(also {DEBUG_ENV}=1).",
    ),
) -> None:
    """Do I need a GPU for deep learning, which one, and is mine working?"""
    _Flags.debug = _Flags.debug or debug


# Each command module owns its commands; the order is the order of `gpuscout --help`.
for _register in commands_registry.REGISTRARS:
    _register(app)


def main() -> NoReturn:
    """Run the command line; whatever happens, the user sees lines, never a traceback
    (unless asked with --debug): a job stopped by Ctrl-C says what it kept, an error
    nobody caught is "error: ..." with its exit code, a bug is one line naming the log
    that holds its traceback, and a stdout that is closed or full ends the run quietly."""
    _tolerate_unencodable_output()
    if sys.stderr is None:  # started with stderr closed (`2>&-`): messages go nowhere
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - open until the process ends
    _Flags.debug = os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    stdout = sys.stdout = _WatchedStdout(sys.stdout)
    try:
        code = _run()
        # What is still buffered is written now, while a full or closed stdout can still
        # be told from a bug (at exit Python would print "Exception ignored", exit 120).
        stdout.flush()
    except OSError as exc:
        code = _output_gone(stdout.stream) if stdout.failed else _internal_error(exc)
    finally:
        sys.stdout = stdout.stream  # Click may have wrapped it again after a broken pipe
    raise SystemExit(code)


def _run() -> Any:
    """The command's exit code (or SystemExit's message); OSError where stdout failed."""
    try:
        app()
    except SystemExit as done:  # how Click ends every command
        return done.code
    except Stopped as stop:  # a job kept what finished before Ctrl-C or SIGTERM
        _common.err_console.print(stop.message, soft_wrap=True, markup=False)
        return stop.exit_code
    except Terminated as term:  # SIGTERM outside a job: nothing to keep, nothing to say
        return term.exit_code
    except GpuscoutError as exc:  # a user's error that a command let through
        _common.print_error(exc.message, exc.hint)
        return exc.exit_code
    except OSError:
        raise  # main() tells a failed stdout from a bug
    except Exception as exc:
        return _internal_error(exc)
    return 0


class _WatchedStdout:
    """sys.stdout as it was, noting whether a write to it failed: an OSError from there
    means nobody can read the output (``| head -c1``, ``> /dev/full``), one from anywhere
    else is a bug."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        try:
            if self.stream is None:  # started with stdout closed (`>&-`)
                raise OSError(errno.EBADF, "stdout is closed")
            return int(self.stream.write(text))
        except OSError:
            self.failed = True
            raise

    def flush(self) -> None:
        if self.stream is None:
            return
        try:
            self.stream.flush()
        except (OSError, ValueError):  # ValueError: the stream was closed
            self.failed = True
            raise OSError(errno.EPIPE, "stdout is closed") from None

    def __getattr__(self, name: str) -> Any:  # isatty, encoding, fileno, buffer ...
        return getattr(self.stream, name)


def _tolerate_unencodable_output() -> None:
    """A terminal or pipe that cannot encode a character (PYTHONIOENCODING=ascii, LANG=C)
    gets "?" on stdout, where tables keep their width, and "\\xb7" on stderr, rather than
    a UnicodeEncodeError half-way through a table."""
    for stream, errors in ((sys.stdout, "replace"), (sys.stderr, "backslashreplace")):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors=errors)


def _output_gone(stream: Any) -> int:
    """Nobody can read what gpuscout writes any more: exit 1 without a word, and point
    stdout at devnull so that Python's own flush at exit has nothing left to complain
    about (the Python docs' note on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass  # no file descriptor (closed, or an in-process caller's): nothing to flush
    return 1


def _internal_error(exc: Exception) -> int:
    """A bug: one line with the log that holds the traceback (or, with --debug, the
    traceback itself), exit 1."""
    text = "".join(traceback.format_exception(exc))
    if _Flags.debug:
        sys.stderr.write(text)
        return 1
    log = _write_crash_log(text)
    where = f"traceback in {log}" if log else "run it again with --debug to see the traceback"
    sys.stderr.write(
        f"gpuscout: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
        f"({where}; please report this)\n"
    )
    return 1


def _one_line(text: str, width: int = 200) -> str:
    """The message on one line of printable characters: an exception may quote anything."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _write_crash_log(text: str) -> Path | None:
    """The traceback, with what it ran on, in the data directory; in a fresh temporary
    file where that cannot be written (a read-only home, GPUSCOUT_HOME on a file); None
    where neither can."""
    report = (
        f"gpuscout {__version__} internal error at {utc_now()}\n"
        f"command: {' '.join(sys.argv)}\n"
        f"python {platform.python_version()} on {platform.platform()}\n\n{text}"
    )
    try:
        folder = default_data_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CRASH_LOG
        path.write_text(report, encoding="utf-8", errors="backslashreplace")
        return path
    except (OSError, GpuscoutError):
        pass
    try:
        # mkstemp, not a fixed name: the temporary folder is shared with other users.
        handle, name = tempfile.mkstemp(prefix="gpuscout-crash-", suffix=".log")
        with os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace") as out:
            out.write(report)
        return Path(name)
    except OSError:
        return None


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
    error it would print. Nothing runs and nothing is printed: only the options and
    values are checked (``--help`` and ``--version`` are accepted)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return _parse_problem(argv)
        except typer.Exit:  # --help or --version: the eager option printed and stopped
            return None


def _parse_problem(argv: list[str]) -> str | None:
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
