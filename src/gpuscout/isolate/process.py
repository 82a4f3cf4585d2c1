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

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OK = "ok"
FAILED = "failed"
OOM = "oom"
TIMEOUT = "timeout"
_KILL_GRACE_S = 3.0


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


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(_KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(_KILL_GRACE_S)


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
    with tempfile.TemporaryDirectory(prefix="gpuscout-worker-") as tmp:
        result_path = Path(tmp) / "result.pickle"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gpuscout.isolate._entry", str(result_path)],
            stdin=subprocess.PIPE,
            stdout=sink,
            env=env,
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
