"""run_job's own part, with stand-in launchers: tiny Python processes in place of torchrun
and its ranks (no torch, a second each). They show that the launcher stops what it
started (past the timeout, on Ctrl-C, a rank a crashed launcher left behind), keeps or
removes the job directory, and names the rank from what it left."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from gpuscout.dist import torchrun
from gpuscout.dist.slurm import SlurmTask
from gpuscout.dist.torchrun import JobOutcome, LaunchSpec, _alive_rank, run_job

# Each stand-in gets (request, out_dir) as torchrun's ranks do and writes rank 0's files.
FINISH = """
import json, sys
out = sys.argv[2]
json.dump({"rank": 0, "value": {"request": json.load(open(sys.argv[1]))}}, open(out + "/rank-0.json", "w"))
"""
SLEEP = "import time; time.sleep(60)"
PROGRESS_THEN_SLEEP = """
import json, os, sys, time
json.dump({"step": 1, "phase": "warming up", "total": 4, "pid": os.getpid()},
          open(sys.argv[2] + "/rank-0.progress.json", "w"))
time.sleep(60)
"""
# A launcher that dies at once, leaving a rank running in a session of its own.
ORPHAN = """
import json, subprocess, sys
out = sys.argv[2]
rank = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                         "gpuscout.dist.rank_main", out], start_new_session=True)
json.dump({"step": 2, "phase": "all_reduce 1 KiB", "pid": rank.pid},
          open(out + "/rank-0.progress.json", "w"))
"""


def stand_in(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """torchrun replaced by ``python -c code request out_dir``."""
    monkeypatch.setattr(
        torchrun,
        "torchrun_command",
        lambda spec, request, out_dir: [sys.executable, "-c", code, str(request), str(out_dir)],
    )


def job(work_dir: Path | None, timeout_s: float = 30.0, **kw: Any) -> JobOutcome:
    spec = LaunchSpec(nproc_per_node=1, timeout_s=timeout_s)
    return run_job(
        "pkg.mod:fn", {"n": 1}, spec, backend="gloo", device="cpu", work_dir=work_dir, **kw
    )


def test_a_finished_job_returns_rank_0s_value_and_its_own_directory_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in(monkeypatch, FINISH)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = job(None)
    assert (out.ok, out.local_ranks, out.returncode, out.message) == (True, (0,), 0, None)
    assert out.value == {
        "request": {
            "target": "pkg.mod:fn",
            "kwargs": {"n": 1},
            "backend": "gloo",
            "device": "cpu",
            "pg_timeout_s": 30.0,  # the job's timeout when none is given
            "fault": None,
        }
    }
    assert list(tmp_path.glob("gpuscout-dist-*")) == []
    kept = job(tmp_path / "mine")  # a directory of the caller's is left where it is
    assert kept.ok and (tmp_path / "mine" / "rank-0.json").is_file()


def test_past_the_timeout_the_launcher_is_stopped_and_the_silence_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in(monkeypatch, SLEEP)
    t0 = time.monotonic()
    out = job(tmp_path, timeout_s=0.5)
    assert time.monotonic() - t0 < 10
    assert (out.ok, out.timed_out, out.culprits, out.job_dir) == (False, True, (0,), str(tmp_path))
    assert out.returncode == -15  # SIGTERM from the launcher's stop
    assert out.message == (
        "no rank started within the 0.5 s timeout "
        "(a rendezvous that never completed: are all nodes running the same command?)"
    )


def test_ctrl_c_stops_the_job_and_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in(monkeypatch, PROGRESS_THEN_SLEEP)
    seen: list[tuple[str, int, int]] = []

    def progress(label: str, done: int, total: int) -> None:
        seen.append((label, done, total))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        job(tmp_path, progress=progress)
    assert seen == [("warming up", 1, 4)]
    pid = json.loads((tmp_path / "rank-0.progress.json").read_text())["pid"]
    assert (
        not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
    )  # gone, or a zombie waiting for its parent


def test_a_rank_the_launcher_left_behind_is_stopped_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in(monkeypatch, ORPHAN)
    out = job(tmp_path)
    pid = json.loads((tmp_path / "rank-0.progress.json").read_text())["pid"]
    assert not _alive_rank(pid, tmp_path)
    assert (out.ok, out.timed_out, out.returncode, out.culprits) == (False, False, 0, (0,))
    assert out.message == "rank 0 died without a result or an error after 'all_reduce 1 KiB'"


def test_a_slurm_task_that_died_is_named_by_its_own_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each Slurm task starts its rank directly: ``python -m ENTRY request out_dir``.
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "fake_rank.py").write_text(
        "import json, sys\n"
        "json.dump({'step': 3, 'phase': 'broadcast 4 KiB'},"
        " open(sys.argv[2] + '/rank-2.progress.json', 'w'))\n"
        "sys.exit(7)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))  # the rank's PYTHONPATH
    monkeypatch.setattr(torchrun, "ENTRY", "fake_rank")
    task = SlurmTask("9", "0", 2, 4, 0, 1, 0, 4, "n[1-4]", "n1", 29500)
    spec = LaunchSpec(nproc_per_node=1, nnodes=4, slurm=task, slurm_tasks=True)
    out = run_job("m:f", {}, spec, backend="gloo", device="cpu", work_dir=tmp_path / "job")
    assert (out.ok, out.returncode, out.local_ranks, out.culprits) == (False, 7, (2,), (2,))
    assert out.message == "rank 2 exited with code 7 without a result after 'broadcast 4 KiB'"
