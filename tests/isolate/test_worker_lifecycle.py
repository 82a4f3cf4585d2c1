"""A worker never outlives gpuscout: stopped with its own children on Ctrl-C, SIGTERM or
a timeout, killed by the kernel when gpuscout itself is killed, its temp folder gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from gpuscout.errors import Terminated
from gpuscout.isolate import OK, run_isolated, sigterm_unwinds
from helpers import REPO, TESTS
from helpers.workers import sleep_with_a_child

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals")

PARENT = textwrap.dedent(
    """
    import sys
    from gpuscout.errors import Terminated
    from gpuscout.isolate import run_isolated, sigterm_unwinds
    from helpers.workers import sleep_with_a_child

    try:
        with sigterm_unwinds():
            run_isolated(sleep_with_a_child, {"pid_file": sys.argv[1], "seconds": 120},
                         timeout_s=300)
    except Terminated:
        sys.exit(143)
    except KeyboardInterrupt:
        sys.exit(130)
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def gone_within(pids: list[int], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    """gpuscout's side in a process of its own, once its worker and grandchild run."""
    pid_file = tmp_path / "pids"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(TESTS)]),
        "TMPDIR": str(tmp_path),
    }
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(pid_file)], env=env)
    end = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text().endswith("\n")):
        if time.monotonic() > end or parent.poll() is not None:
            parent.kill()
            pytest.fail("the worker did not start")
        time.sleep(0.05)
    return parent, [int(p) for p in pid_file.read_text().split()]


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.glob("gpuscout-worker-*"))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_stop_the_worker_and_its_children(
    tmp_path: Path, sig: int, code: int
) -> None:
    parent, pids = start(tmp_path)
    try:
        parent.send_signal(sig)
        assert parent.wait(30) == code
        assert gone_within(pids, 10), "the worker or its child outlived gpuscout"
        assert leftovers(tmp_path) == []
    finally:
        parent.kill()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_killed_gpuscout_leaves_no_worker_at_work(tmp_path: Path) -> None:
    parent, pids = start(tmp_path)
    worker = pids[0]
    try:
        parent.kill()  # SIGKILL: no handler runs; only the kernel can end the worker
        parent.wait(30)
        assert gone_within([worker], 10), "the worker outlived a killed gpuscout"
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_next_run_removes_a_killed_gpuscouts_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL leaves the worker's folder behind (nothing runs in gpuscout); the next
    worker's start removes it, and leaves a living gpuscout's folder alone."""
    parent, pids = start(tmp_path)
    try:
        parent.kill()
        parent.wait(30)
        assert gone_within(pids[:1], 10)
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert len(leftovers(tmp_path)) == 1  # the killed one's
    living = tmp_path / "gpuscout-worker-1-abcdefgh"  # pid 1 lives as long as the system
    living.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = run_isolated(
        sleep_with_a_child, {"pid_file": str(tmp_path / "p2"), "seconds": 0}, timeout_s=60
    )
    assert out.status == OK, out.error
    assert leftovers(tmp_path) == [living.name]


def test_a_second_sigterm_while_unwinding_is_ignored() -> None:
    """The first SIGTERM unwinds; another one must not cut the cleanup short."""

    def guard(signum: int, frame: Any) -> None:  # the test's own: never die of SIGTERM
        raise AssertionError("SIGTERM reached the caller's handler")

    previous = signal.signal(signal.SIGTERM, guard)
    try:
        with sigterm_unwinds():
            with pytest.raises(Terminated):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            os.kill(os.getpid(), signal.SIGTERM)  # while "cleaning up"
            time.sleep(0.2)
        assert signal.getsignal(signal.SIGTERM) is guard  # given back at the end
    finally:
        signal.signal(signal.SIGTERM, previous)
