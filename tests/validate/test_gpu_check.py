"""gpuscout.validate.gpu_check: the GPU check as one list of capped steps, rehearsed on the
CPU. The rehearsal runs the real module end to end (``--device cpu --tiny``) once for the
whole file; the cut-off and SIGTERM cases run a few of its steps (``--only``); the
deadline case runs throwaway commands in process. Each ends with the summary and the
archive written, whatever happened to the steps."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from gpuscout.validate import gpu_check
from gpuscout.validate.gpu_check import MAIN, PACK_S, PY, Step
from gpuscout.validate.stepper import Check, Settings

MODULE = "gpuscout.validate.gpu_check"
CPU_ONLY = [s.name for s in MAIN if not s.gpu_only]
GPU_ONLY = [s.name for s in MAIN if s.gpu_only]


def check_cmd(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", MODULE, "--out", str(out), "--device", "cpu", "--tiny", *args]


def check_env(tmp: Path) -> dict[str, str]:
    return dict(os.environ, GPUSCOUT_HOME=str(tmp / "home"), GPUSCOUT_OFFLINE="1")


def run_check(tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp / "out"
    cmd = check_cmd(out, *args)
    proc = subprocess.run(cmd, env=check_env(tmp), capture_output=True, text=True, timeout=600)
    return proc, out


def steps_of(out: Path) -> dict[str, dict[str, Any]]:
    doc = json.loads((out / "steps.json").read_text())
    return {r["name"]: r for r in doc["steps"]}


def archived(out: Path) -> list[str]:
    with tarfile.open(out / "gpu_check.tar.gz") as tar:
        return tar.getnames()


def not_measured(out: Path) -> str:
    md = (out / "summary.md").read_text()
    return md[md.index("### Not measured in this run") :]


@pytest.fixture(scope="module")
def rehearsal(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path, float]:
    """The CPU rehearsal, once: every main step at tiny sizes (about 45 s on two idle
    cores; each step's own cap bounds it)."""
    tmp = tmp_path_factory.mktemp("rehearsal")
    t0 = time.monotonic()
    proc, out = run_check(tmp)
    return proc, out, time.monotonic() - t0


def test_the_cpu_rehearsal_runs_every_step_and_packs(
    rehearsal: tuple[subprocess.CompletedProcess[str], Path, float],
    record_property: Any,
) -> None:
    proc, out, wall_s = rehearsal
    record_property("rehearsal_wall_s", round(wall_s, 1))
    steps = steps_of(out)
    assert list(steps) == [s.name for s in MAIN], proc.stderr
    for name in CPU_ONLY:
        assert steps[name]["status"] == "ok", (name, steps[name]["reason"], proc.stdout)
        assert steps[name]["exit_code"] == 0 and steps[name]["wall_s"] <= steps[name]["cap_s"]
    missing = not_measured(out)
    for name in GPU_ONLY:  # run, and reported as not measured with why: never hidden
        rec = steps[name]
        assert rec["status"] in ("failed", "skipped"), rec
        assert rec["reason"].startswith("GPU-only step run on cpu: exit"), rec
        assert f"- `{rec['result']}`: " in missing and f"step `{name}` " in missing
    assert proc.returncode == 1  # not every step was ok
    names = archived(out)
    assert {"steps.json", "summary.md", "versions.json", "home/gpuscout.db"} <= set(names)
    assert {s.stdout for s in MAIN} <= set(names)
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.tar.gz", "steps.json", "summary.md"]
    md = (out / "summary.md").read_text()
    assert "A rehearsal on the CPU" in md
    assert "`python -m gpuscout bench micro --quick --device cpu --json --only launch" in md


def test_a_step_past_its_cap_is_cut_off_and_the_next_steps_still_run(tmp_path: Path) -> None:
    proc, out = run_check(tmp_path, "--only", "versions,doctor,fit_measure", "--cap", "doctor=1")
    steps = steps_of(out)
    assert [r["status"] for r in steps.values()] == ["ok", "cut off", "failed"], proc.stdout
    doctor = steps["doctor"]
    assert doctor["reason"] == "its 1 s cap" and doctor["exit_code"] is None
    assert 1.0 <= doctor["wall_s"] < 15.0
    assert steps["fit_measure"]["exit_code"] == 2  # it ran after the cut
    line = next(ln for ln in not_measured(out).splitlines() if ln.startswith("- `doctor.txt`: "))
    assert "; step `doctor` cut off (its 1 s cap) after" in line  # its file empty or partial
    assert {"steps.json", "summary.md", "doctor.txt"} <= set(archived(out))


def test_sigterm_while_a_step_runs_still_writes_the_summary_and_archive(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = check_cmd(out, "--only", "versions,doctor")
    proc = subprocess.Popen(cmd, env=check_env(tmp_path), stdout=subprocess.PIPE, text=True)
    try:
        wait_for_a_running_step(out)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    doc = json.loads((out / "steps.json").read_text())
    assert doc["stopped_by"] == "SIGTERM"
    statuses = [r["status"] for r in doc["steps"]]
    assert statuses in (["cut off", "skipped"], ["ok", "cut off"]), stdout
    cut = next(r for r in doc["steps"] if r["status"] == "cut off")
    assert cut["reason"] == "the check was stopped by SIGTERM" and cut["wall_s"] is not None
    assert f"step `{cut['name']}` cut off (the check was stopped by SIGTERM)" in not_measured(out)
    assert {"steps.json", "summary.md"} <= set(archived(out))


def wait_for_a_running_step(out: Path, timeout_s: float = 60.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            if any(r["status"] == "running" for r in steps_of(out).values()):
                return
        except (OSError, ValueError):
            pass  # not written yet
        time.sleep(0.05)
    raise AssertionError("no step started")


def sleeper(name: str, seconds: float) -> Step:
    code = f"import time; print('{name}', flush=True); time.sleep({seconds})"
    return Step(name, 5, f"sleeps {seconds} s", (PY, "-c", code), f"{name}.txt")


def test_steps_past_the_deadline_are_skipped_and_the_archive_is_written(
    tmp_path: Path,
) -> None:
    """A deadline that leaves 2 s for steps: the first is cut off by it, the rest are
    skipped, and packing still happens."""
    home = tmp_path / "home"
    (home / "datasets").mkdir(parents=True)
    (home / "gpuscout.db").write_bytes(b"db")
    (home / "datasets" / "big.bin").write_bytes(b"x" * 1024)
    settings = Settings(out=tmp_path / "out", device="cpu", deadline_s=PACK_S + 2, home=home)
    steps = [sleeper("first", 30), sleeper("second", 0), sleeper("third", 0)]
    t0 = time.monotonic()
    assert Check(settings, steps).run() == 1
    assert time.monotonic() - t0 < PACK_S + 2
    recs = steps_of(settings.out)
    assert recs["first"]["status"] == "cut off"
    assert recs["first"]["reason"].startswith(f"the {PACK_S + 2} s deadline (")
    for name in ("second", "third"):
        assert (recs[name]["status"], recs[name]["reason"]) == ("skipped", "no time left")
    names = archived(settings.out)
    assert {"steps.json", "summary.md", "first.txt", "home/gpuscout.db"} <= set(names)
    assert "home/datasets/big.bin" not in names  # the dataset cache stays behind
    assert "- `second.txt`: missing; step `second` skipped: no time left" in not_measured(
        settings.out
    )


def test_the_plan_prints_every_step_with_its_cap_and_fits_540_s() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, "--plan"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    for step in MAIN:
        assert re.search(
            rf"\b{step.name} +{step.cap_s} s  {re.escape(step.establishes)}", proc.stdout
        )
    total = sum(s.cap_s for s in MAIN) + PACK_S
    assert total <= 540 == gpu_check.DEADLINE_S
    assert f"total {total} s of caps (packing included) against the 540 s deadline\n" in proc.stdout


def test_the_extended_plan_and_the_options() -> None:
    extended = gpu_check.plan_text(gpu_check.EXTENDED, "cuda:0", False, 540)
    assert "the deadline skips the steps that do not fit" in extended
    assert gpu_check.main(["--plan", "--cap", "nope=3"]) == 2
    assert gpu_check.main(["--plan", "--only", "versions,nope"]) == 2
    assert gpu_check.main([]) == 2  # --out is needed to run
    steps = gpu_check.steps_for(False, {"doctor": 1}, ["versions", "doctor"])
    assert [(s.name, s.cap_s) for s in steps] == [("versions", 15), ("doctor", 1)]
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--cap", "doctor=0"])


def test_a_steps_command_as_it_runs_and_as_it_reads() -> None:
    llm = next(s for s in MAIN if s.name == "workload_llm")
    argv = llm.argv_for("cpu", True, "/o", "/py")
    assert argv[:3] == ["/py", "-m", "gpuscout"] and "cpu" in argv
    assert argv[-7:] == ["--impl", "tuned", "--no-store", "--batch-size", "1", "--seq-len", "8"]
    assert "--impl tuned" not in llm.display("cuda:0", False)
    run = next(s for s in MAIN if s.name == "gpuscout_run")
    assert "/o/report.html" in run.argv_for("cuda:0", False, "/o", "/py")
    assert run.display("cuda:0", False).startswith(
        'COLUMNS=120 python -m gpuscout run --report "$OUT/'
    )


def test_the_slow_gpu_tests_it_names_exist() -> None:
    for node in gpu_check.SLOW_GPU_TESTS:
        path, _, test = node.partition("::")
        source = (gpu_check.ROOT / path).read_text()
        assert f"def {test.split('[')[0]}(" in source, node


def test_importing_the_check_loads_no_framework() -> None:
    code = (
        "import sys, gpuscout.validate.gpu_check, gpuscout.validate.stepper, "
        "gpuscout.validate.summary; assert 'torch' not in sys.modules, 'torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_signal_whose_raise_was_lost_still_stops_the_check(tmp_path: Path) -> None:
    """A SIGTERM that lands in logging's at-fork hook while a step is spawned has its
    exception printed and dropped by Python; the flag it set stops the check anyway."""
    settings = Settings(out=tmp_path / "out", device="cpu", deadline_s=PACK_S + 60)
    steps = [sleeper("first", 0), sleeper("second", 0)]
    check = Check(settings, steps)
    real_spawn = check.spawn_and_wait

    def spawn_then_lose_a_signal(*args: Any) -> int | None:
        rc = real_spawn(*args)
        with contextlib.suppress(Exception):  # what an at-fork hook does with the raise
            check._on_signal(signal.SIGTERM, None)
        return rc

    check.spawn_and_wait = spawn_then_lose_a_signal  # type: ignore[method-assign,assignment]
    assert check.run() == 128 + signal.SIGTERM
    recs = steps_of(settings.out)
    assert recs["first"]["status"] == "cut off"
    assert recs["first"]["reason"] == "the check was stopped by SIGTERM"
    assert recs["second"]["status"] != "ok"
