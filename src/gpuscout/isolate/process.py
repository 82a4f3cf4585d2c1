"""Run one function in a fresh worker process, with a timeout, and always come back.

A benchmark that runs out of memory, segfaults in a driver, or hangs must not take the
suite down with it (optimum-benchmark's process launcher). The worker is a new Python
(``python -m gpuscout.isolate._entry``), not a fork: a fork would copy a parent that may
hold a CUDA context (unusable in the child) and its threads' locks; and unlike
multiprocessing's spawn it never re-runs the caller's ``__main__``, so a script without
an ``if __name__ == "__main__"`` guard works too. The function travels by name
("module:qualname"), its arguments and result as pickles over a pipe and a file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpuscout.errors import Terminated

OK = "ok"
FAILED = "failed"
OOM = "oom"
TIMEOUT = "timeout"
_KILL_GRACE_S = 3.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# A worker's temp folder: gpuscout-worker-PID-random, PID being gpuscout's own.
_FOLDER_PREFIX = "gpuscout-worker-"


@dataclass(frozen=True)
class Outcome:
    """What came back from a worker. ``value`` is set only when ``status`` is "ok"."""

    status: str  # "ok", "failed", "oom", "timeout"
    value: dict[str, Any] | None
    error: str | None  # a traceback, or why the worker died
    duration_s: float
    exitcode: int | None = None


def is_oom(exc: BaseException) -> bool:
    """torch.OutOfMemoryError (matched by name: torch is not imported here), MemoryError,
    and the allocator failures that only surface as RuntimeError text."""
    if any(cls.__name__ in ("OutOfMemoryError", "MemoryError") for cls in type(exc).__mro__):
        return True
    text = str(exc).lower()
    # torch's CPU allocator raises a plain RuntimeError: "DefaultCPUAllocator: can't
    # allocate memory: you tried to allocate N bytes" (older builds: "not enough memory").
    return any(
        words in text
        for words in (
            "out of memory",
            "cublas_status_alloc_failed",
            "cpuallocator: can't allocate memory",
            "cpuallocator: not enough memory",
        )
    )


def describe_exit(code: int | None) -> str:
    """How a process ended without a result, in words (a signal by name)."""
    if code is None:
        return "died without a result or an error"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        oom = " (the kernel's out-of-memory killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"was killed by {name}{oom}"
    return f"exited with code {code} without a result"


def target_name(fn: Callable[..., Any]) -> str:
    """ "module:qualname" for a module-level function; ValueError for anything else."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        raise ValueError(
            f"{fn!r} cannot run in a worker: it must be a function defined at the top of an "
            "importable module (not in __main__, not a lambda or a nested function)"
        )
    return f"{module}:{qualname}"


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """``sig`` to the worker and everything it started (its own process group)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError, AttributeError):  # gone, or not POSIX
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """The worker's group terminated, then killed if it does not go within the grace."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(_KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(_KILL_GRACE_S)
    else:  # the worker is gone; what it started may not be
        with contextlib.suppress(ProcessLookupError, PermissionError, AttributeError):
            os.killpg(proc.pid, signal.SIGKILL)


def die_with_parent(parent_pid: int) -> None:
    """Called first thing in a worker: the kernel kills it when the parent dies (Linux's
    PR_SET_PDEATHSIG), so a SIGKILLed gpuscout leaves no orphan at work. Done in the
    worker rather than between fork and exec (a ``preexec_fn`` may deadlock when the
    parent has threads); a parent that died before this ends the worker here."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no prctl: the parent's handlers still stop it
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # POSIX only: on Windows this would end the process
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_stale_folders(root: Path | None = None) -> list[Path]:
    """Remove the temp folders of workers whose gpuscout is gone (killed with SIGKILL,
    which no handler sees: only the next run can tidy up); the folders removed. A
    folder's name carries its gpuscout's pid; one whose process lives is left alone."""
    if os.name != "posix":
        return []
    base = Path(tempfile.gettempdir()) if root is None else root
    removed: list[Path] = []
    for folder in base.glob(f"{_FOLDER_PREFIX}*-*"):
        pid = folder.name[len(_FOLDER_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While inside, SIGTERM raises ``Terminated`` in the main thread, so ``finally``
    blocks run: the worker is stopped, its temp folder removed, finished work kept.
    Only the first SIGTERM raises; later ones are ignored until the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        # Once: a second SIGTERM while unwinding would cut the cleanup short (a run
        # left "running", a worker not stopped), so it is ignored until the end.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated("terminated (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_isolated(
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any] | None = None,
    *,
    timeout_s: float,
    stdout: str = "stderr",
) -> Outcome:
    """Call ``fn(**kwargs)`` in a new Python process; never raises for what happens there.

    ``fn`` must be a module-level function of an importable module, returning a dict
    of picklable values. ``timeout_s`` covers the worker's start-up (importing torch
    takes seconds) as well as its work. ``stdout`` is where the worker's prints go:
    "stderr" (the default: the parent's stdout stays clean for ``--json``), "devnull" or
    "inherit". Ctrl-C in the parent stops the worker and propagates.
    """
    if timeout_s <= 0:
        raise ValueError("timeout_s must be > 0")
    sinks: dict[str, Any] = {"stderr": sys.stderr, "devnull": subprocess.DEVNULL, "inherit": None}
    if stdout not in sinks:
        raise ValueError(f"stdout must be stderr, devnull or inherit, not {stdout!r}")
    request = pickle.dumps({"target": target_name(fn), "kwargs": dict(kwargs or {})})
    env = dict(os.environ)
    # The child must import what the parent can (a test module, a source checkout).
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
    sink = sinks[stdout]
    try:
        sink.fileno()
    except (AttributeError, OSError, ValueError):  # a captured sys.stderr (pytest): no fd
        sink = subprocess.DEVNULL if stdout != "inherit" else None
    sweep_stale_folders()
    with tempfile.TemporaryDirectory(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-") as tmp:
        result_path = Path(tmp) / "result.pickle"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gpuscout.isolate._entry", str(result_path), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=sink,
            env=env,
            # A group of its own, stopped whole by _stop; a terminal's Ctrl-C reaches
            # only gpuscout, which stops it (and says so) instead of both racing.
            start_new_session=True,
        )
        try:
            assert proc.stdin is not None
            try:
                proc.stdin.write(request)
                proc.stdin.close()
            except BrokenPipeError:  # died at start-up; its exit code says more below
                pass
            try:
                code = proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _stop(proc)
                elapsed = time.perf_counter() - t0
                msg = f"no result after {timeout_s:g} s; the worker was stopped"
                return Outcome(TIMEOUT, None, msg, elapsed, proc.returncode)
        except BaseException:
            _stop(proc)
            raise
        elapsed = time.perf_counter() - t0
        if not result_path.is_file():
            return Outcome(FAILED, None, f"the worker process {describe_exit(code)}", elapsed, code)
        status, payload = pickle.loads(result_path.read_bytes())
    if status == OK:
        return Outcome(OK, payload, None, elapsed, code)
    return Outcome(status, None, str(payload), elapsed, code)
