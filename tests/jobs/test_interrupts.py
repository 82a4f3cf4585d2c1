"""Ctrl-C and SIGTERM keep what finished: a measuring job stores each result as it ends,
and an interrupt marks the run "interrupted", stops the worker and ends the job with
one line, "interrupted: kept N results as run X" (exit 130 for Ctrl-C, 143 for SIGTERM).

The job functions first, with a stand-in phase that stores some results and is then
interrupted; then a real `gpuscout bench workload --quick` in a process of its own,
signalled once its first result is stored.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gpuscout import jobs
from gpuscout._types import Finding, Result, SystemInfo
from gpuscout.bench import record, runner
from gpuscout.cli.main import app
from gpuscout.errors import Stopped, Terminated, UsageError
from gpuscout.jobs import main_run, measuring
from gpuscout.store import Store
from helpers import REPO
from helpers import report_sample as sample

FINGERPRINT = {"host": "lab-h100", "gpuscout_version": "test"}


def phase(finished: list[Result], then: BaseException | None = None) -> Callable[..., list[Result]]:
    """A stand-in for run_micro or run_workloads: each of ``finished`` ends (heard through
    ``on_result``), then ``then`` is raised (None: the phase returns them)."""

    def run(*args: Any, on_result: Callable[[Result], None] | None = None, **kw: Any) -> Any:
        for result in finished:
            if on_result is not None:
                on_result(result)
        if then is not None:
            raise then
        return list(finished)

    return run


@pytest.fixture
def workloads(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``workloads(phase)``: bench_workload on the CPU with ``phase`` measuring."""
    monkeypatch.setattr(measuring, "resolve_devices", lambda devices: ["cpu"], raising=False)
    monkeypatch.setattr(measuring, "run_fingerprint", lambda: dict(FINGERPRINT))

    def use(fake: Callable[..., list[Result]]) -> None:
        monkeypatch.setattr(measuring, "run_workloads", fake)

    return use


@pytest.fixture
def micro(monkeypatch: pytest.MonkeyPatch, recorded: Callable[..., SystemInfo]) -> Any:
    """``micro(phase)``: bench_micro on the CPU with ``phase`` measuring."""
    monkeypatch.setattr(runner, "resolve_devices", lambda devices: ["cpu"])
    monkeypatch.setattr(record, "probe_for_fingerprint", lambda: recorded("h100"))

    def use(fake: Callable[..., list[Result]]) -> None:
        monkeypatch.setattr(runner, "run_micro", fake)

    return use


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch, recorded: Callable[..., SystemInfo]) -> Any:
    """``main(micro_phase, workloads_phase)``: `gpuscout run` with the doctor's recorded
    answer and these phases under its real stages."""
    system = recorded("h100")

    def examine() -> tuple[SystemInfo, list[Finding]]:
        return system, sample.findings()

    monkeypatch.setattr(main_run, "examine", examine)

    def use(micro_phase: Any, workloads_phase: Any) -> None:
        monkeypatch.setattr(main_run, "run_micro", micro_phase)
        monkeypatch.setattr(main_run, "run_workloads", workloads_phase)

    return use


WORK = sample.workload_results(gpu=False)  # mlp and cnn, reference and tuned, on the CPU
MICRO = sample.micro_results(gpu=False)


def stored(store: Store, run_id: int = 1) -> tuple[str, list[Result]]:
    return store.get_run(run_id).status, store.results(run_id)


# -- the jobs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interrupt", "code"), [(KeyboardInterrupt(), 130), (Terminated("SIGTERM"), 143)]
)
def test_bench_workload_keeps_the_finished_results(
    memory: Store, workloads: Any, interrupt: BaseException, code: int
) -> None:
    workloads(phase(WORK[:2], interrupt))
    with pytest.raises(Stopped) as stop:
        jobs.bench_workload(memory, jobs.WorkloadOptions(names="mlp"))
    assert stop.value.exit_code == code
    assert stop.value.message == "interrupted: kept 2 results as run 1"
    assert stored(memory) == ("interrupted", WORK[:2])
    (run,) = jobs.history(memory).runs
    assert run.kind == "workload" and run.status == "interrupted" and run.finished_at
    assert memory.integrity_ok()


@pytest.mark.parametrize(
    ("interrupt", "code"), [(KeyboardInterrupt(), 130), (Terminated("SIGTERM"), 143)]
)
def test_bench_micro_keeps_the_finished_results(
    memory: Store, micro: Any, interrupt: BaseException, code: int
) -> None:
    micro(phase(MICRO[:3], interrupt))
    with pytest.raises(Stopped) as stop:
        jobs.bench_micro(memory, jobs.MicroOptions(devices="cpu"))
    assert (stop.value.exit_code, stop.value.message) == (
        code,
        "interrupted: kept 3 results as run 1",
    )
    assert stored(memory) == ("interrupted", MICRO[:3])
    assert memory.get_run(1).kind == "bench-micro"


def test_run_keeps_the_doctor_the_ceilings_and_the_finished_workloads(
    memory: Store, main: Any
) -> None:
    main(phase(MICRO), phase(WORK[:2], KeyboardInterrupt()))
    with pytest.raises(Stopped) as stop:
        jobs.run(memory)
    kept = len(MICRO) + 2
    assert (stop.value.exit_code, stop.value.message) == (
        130,
        f"interrupted: kept {kept} results as run 1",
    )
    assert stored(memory) == ("interrupted", [*MICRO, *WORK[:2]])
    assert memory.findings(1) == sample.findings()
    assert memory.get_run(1).fingerprint["host"]  # the doctor's machine


def test_run_interrupted_in_its_ceilings_keeps_those_that_ended(memory: Store, main: Any) -> None:
    main(phase(MICRO[:1], KeyboardInterrupt()), phase(WORK))
    with pytest.raises(Stopped, match=r"^interrupted: kept 1 result as run 1$"):
        jobs.run(memory)
    assert stored(memory) == ("interrupted", MICRO[:1])


def test_report_history_and_advise_use_an_interrupted_runs_results(
    memory: Store, main: Any
) -> None:
    cpu_mlp = [r for r in WORK if r.name.startswith("mlp/")]
    main(phase(MICRO), phase(cpu_mlp, Terminated("SIGTERM")))
    with pytest.raises(Stopped):
        jobs.run(memory)
    report = jobs.report(memory, jobs.ReportOptions(output="-", fmt="md")).report
    assert [r.id for r in report.runs] == [1]
    rows = report.workloads
    assert isinstance(rows, tuple) and {row.workload for row in rows} == {"mlp"}
    advice = jobs.advise(memory, jobs.AdviseOptions(workload="mlp"))
    assert "mlp" in advice.workload
    assert advice.prediction is not None


def test_history_shows_an_interrupted_run_as_such(tmp_path: Path, workloads: Any) -> None:
    db = tmp_path / "g.db"
    workloads(phase(WORK[:1], KeyboardInterrupt()))
    with pytest.raises(Stopped):
        jobs.bench_workload(db, jobs.WorkloadOptions(names="mlp"))
    shown = CliRunner().invoke(app, ["history", "--db", str(db)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    (row,) = [line for line in shown.output.splitlines() if "workload" in line]
    assert "interrupted" in row


def test_a_real_sigterm_unwinds_the_job_like_ctrl_c(memory: Store, workloads: Any) -> None:
    """SIGTERM itself, not a stand-in exception: the job turns it into ``Stopped``."""

    def terminated(*args: Any, on_result: Callable[[Result], None], **kw: Any) -> list[Result]:
        on_result(WORK[0])
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises here, at the latest
        raise AssertionError("SIGTERM did not reach the job")

    def unhandled(signum: int, frame: Any) -> None:  # the test's own guard: never die
        raise AssertionError("the job left SIGTERM unhandled")

    workloads(terminated)
    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        with pytest.raises(Stopped) as stop:
            jobs.bench_workload(memory, jobs.WorkloadOptions(names="mlp"))
        assert signal.getsignal(signal.SIGTERM) is unhandled  # the caller's, given back
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (stop.value.exit_code, stop.value.message) == (
        143,
        "interrupted: kept 1 result as run 1",
    )
    assert stored(memory) == ("interrupted", WORK[:1])


def test_results_are_stored_as_they_end(memory: Store, workloads: Any) -> None:
    seen: list[int] = []

    def watched(*args: Any, on_result: Callable[[Result], None], **kw: Any) -> list[Result]:
        for result in WORK[:3]:
            on_result(result)
            seen.append(len(memory.results(1)))  # read back before the next one ends
        return WORK[:3]

    workloads(watched)
    out = jobs.bench_workload(memory, jobs.WorkloadOptions(names="mlp"))
    assert seen == [1, 2, 3]
    assert out.run_id == 1 and stored(memory) == ("ok", WORK[:3])


def test_the_final_figures_replace_those_written_as_they_ended(
    memory: Store, workloads: Any
) -> None:
    """A workload's ceiling is attached once every run has ended: the stored result is
    the final one, once."""
    raw = [dataclasses.replace(r, peak_fraction=None, extra={"workload": "mlp"}) for r in WORK[:2]]

    def attached_at_the_end(*args: Any, on_result: Callable[[Result], None], **kw: Any) -> Any:
        for result in raw:
            on_result(result)
        return WORK[:2]

    workloads(attached_at_the_end)
    jobs.bench_workload(memory, jobs.WorkloadOptions(names="mlp"))
    assert stored(memory) == ("ok", WORK[:2])


def test_not_stored_an_interrupt_says_so(tmp_path: Path, workloads: Any) -> None:
    db = tmp_path / "never.db"
    workloads(phase(WORK[:1], KeyboardInterrupt()))
    with pytest.raises(Stopped) as stop:
        jobs.bench_workload(db, jobs.WorkloadOptions(names="mlp", store=False))
    assert (stop.value.exit_code, stop.value.message) == (130, "interrupted: nothing stored")
    assert not db.exists()


def test_an_error_keeps_what_finished_as_a_failed_run(memory: Store, workloads: Any) -> None:
    """... and a run that kept nothing is not left behind (nothing was stored before)."""
    workloads(phase([], OSError("no dataset")))
    with pytest.raises(OSError):
        jobs.bench_workload(memory, jobs.WorkloadOptions(names="mlp"))
    assert jobs.history(memory).runs == ()
    workloads(phase(WORK[:1], OSError("disk gone")))
    with pytest.raises(OSError, match="disk gone"):
        jobs.bench_workload(memory, jobs.WorkloadOptions(names="mlp"))
    (run,) = jobs.history(memory).runs
    assert stored(memory, run.id) == ("failed", WORK[:1])
    assert run.summary["error"] == "OSError: disk gone"


def test_a_typo_opens_no_run(tmp_path: Path, workloads: Any) -> None:
    db = tmp_path / "never.db"
    workloads(phase(WORK))
    with pytest.raises(UsageError):
        jobs.bench_workload(db, jobs.WorkloadOptions(names="mpl"))
    assert not db.exists()


# -- a real gpuscout, really signalled ---------------------------------------------------

# The CLI as `gpuscout` runs it, with Python's own Ctrl-C handler: a child inherits an
# ignored SIGINT (nohup, a CI shell) and would never see the test's.
CLI = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'gpuscout'; from gpuscout.cli.main import main; main()"
)
# Two runs (mlp tutorial-style, then tuned) at their smallest: the signal lands while
# the second one's worker is at work.
WORKLOAD = [
    "bench", "workload", "mlp", "--device", "cpu", "--quick",
    "--epochs", "1", "--limit-samples", "256", "--steps", "1",
]  # fmt: skip
LINE = re.compile(r"interrupted: kept (\d+) results? as run (\d+)")


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie (exited, not yet reaped) counts as gone
        return stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _workers(marker: str) -> list[int]:
    """The live worker processes whose command line names ``marker`` (the test's folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "gpuscout.isolate._entry" in cmdline and marker in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _stored_results(db: Path) -> int:
    """How many results the database holds, read-only (0 before it exists)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet
        return 0


def _wait(what: str, ready: Callable[[], bool], child: subprocess.Popen[str]) -> None:
    end = time.monotonic() + 180
    while not ready():
        if child.poll() is not None or time.monotonic() > end:
            child.kill()
            _, err = child.communicate(timeout=30)
            pytest.fail(f"gpuscout ended or hung before {what}: {err[-2000:]}")
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals and /proc")
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signalled_bench_workload_keeps_its_first_result_and_leaves_no_worker(
    tmp_path: Path, sig: int, code: int
) -> None:
    pytest.importorskip("torch")
    db, temp = tmp_path / "g.db", tmp_path / "tmp"
    temp.mkdir()
    env = {
        **os.environ,
        "GPUSCOUT_HOME": str(tmp_path / "home"),
        "GPUSCOUT_OFFLINE": "1",  # stand-in data, never a download
        "TMPDIR": str(temp),  # where the workers' folders go, and are looked for
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CLI, *WORKLOAD, "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    workers: list[int] = []

    def a_worker_at_work() -> bool:
        workers[:] = _workers(str(temp))
        return bool(workers)

    try:
        _wait("its first result was stored", lambda: _stored_results(db) >= 1, child)
        _wait("the next worker started", a_worker_at_work, child)
        child.send_signal(sig)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=30)
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert child.returncode == code, err
    said = LINE.fullmatch(err.strip().splitlines()[-1])
    assert said is not None, err
    kept, run_id = int(said[1]), int(said[2])
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        runs = conn.execute("SELECT id, kind, status, finished_at FROM runs").fetchall()
        rows = conn.execute("SELECT name, status FROM results WHERE run_id = ?", (run_id,))
        results = rows.fetchall()
    finally:
        conn.close()
    (run,) = runs
    assert run[:3] == (run_id, "workload", "interrupted") and run[3] is not None
    assert kept == len(results) >= 1
    assert results[0] == ("mlp/reference", "ok")
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers), "a worker outlived gpuscout"
    assert sorted(p.name for p in temp.glob("gpuscout-worker-*")) == []
