"""Isolated runs: whatever a worker does (return, raise, run out of memory, hang, die),
the caller gets an Outcome and can go on. The worker functions live here, at module
level, because a worker imports its function by name."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from gpuscout.isolate import FAILED, OK, OOM, TIMEOUT, is_oom, run_isolated
from gpuscout.isolate.process import target_name


class OutOfMemoryError(RuntimeError):
    """Named like torch.OutOfMemoryError, without importing torch."""


def w_ok(x: int) -> dict[str, Any]:
    return {"x2": x * 2, "pid": os.getpid()}


def w_raise() -> dict[str, Any]:
    raise ValueError("broken benchmark 42")


def w_oom() -> dict[str, Any]:
    raise OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")


def w_sleep() -> dict[str, Any]:
    time.sleep(60)
    return {}


def w_exit() -> dict[str, Any]:
    os._exit(3)


def w_kill() -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


def w_not_a_dict() -> Any:
    return [1, 2]


def w_print() -> dict[str, Any]:
    print("noise on stdout")
    return {"ok": True}


def test_ok_returns_the_dict_from_another_process() -> None:
    out = run_isolated(w_ok, {"x": 21}, timeout_s=60)
    assert out.status == OK and out.error is None
    assert out.value is not None and out.value["x2"] == 42
    assert out.value["pid"] != os.getpid()


def test_a_suite_goes_on_after_every_kind_of_failure() -> None:
    """One after the other, in one process: each failure is an outcome, not a crash."""
    failed = run_isolated(w_raise, timeout_s=60)
    assert failed.status == FAILED and failed.value is None
    assert failed.error is not None
    assert "Traceback" in failed.error and "ValueError: broken benchmark 42" in failed.error

    oom = run_isolated(w_oom, timeout_s=60)
    assert oom.status == OOM and oom.error is not None and "out of memory" in oom.error

    t0 = time.perf_counter()
    slow = run_isolated(w_sleep, timeout_s=3)
    assert slow.status == TIMEOUT and "3 s" in (slow.error or "")
    assert time.perf_counter() - t0 < 20  # stopped, not waited for

    died = run_isolated(w_exit, timeout_s=60)
    assert died.status == FAILED and died.exitcode == 3 and "code 3" in (died.error or "")

    killed = run_isolated(w_kill, timeout_s=60)
    assert killed.status == FAILED and "SIGKILL" in (killed.error or "")

    wrong = run_isolated(w_not_a_dict, timeout_s=60)
    assert wrong.status == FAILED and "must return a dict" in (wrong.error or "")

    after = run_isolated(w_ok, {"x": 1}, timeout_s=60)
    assert after.status == OK and after.value is not None and after.value["x2"] == 2


def test_worker_prints_do_not_reach_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    out = run_isolated(w_print, timeout_s=60)
    assert out.status == OK
    assert "noise on stdout" not in capfd.readouterr().out  # --json output stays clean


def test_only_importable_functions_are_accepted() -> None:
    with pytest.raises(ValueError, match="importable module"):
        target_name(lambda: {})

    def nested() -> dict[str, Any]:
        return {}

    with pytest.raises(ValueError, match="nested"):
        target_name(nested)
    assert target_name(w_ok).endswith("test_launch:w_ok")
    with pytest.raises(ValueError):
        run_isolated(w_ok, timeout_s=0)


def test_is_oom_recognises_allocator_failures() -> None:
    assert is_oom(OutOfMemoryError("x"))
    assert is_oom(MemoryError())
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert is_oom(RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert not is_oom(ValueError("shape mismatch"))


def test_is_oom_recognises_torchs_own_cpu_allocator_failure() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError) as info:
        torch.empty(1 << 50, dtype=torch.uint8)  # 1 PiB: more than any machine has
    assert is_oom(info.value)
    assert not is_oom(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
