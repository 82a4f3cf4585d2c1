"""`gpuscout run` and `gpuscout bench workload` through their real stages at tiny sizes:
the doctor probes this machine, a micro-benchmark runs, every quick workload trains in
its own worker process, the verdict is said, one run is stored and its report written.
Nothing is replaced; only the sizes are small (`--tiny`: one micro-benchmark, one epoch
of 256 samples, one timed step)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpuscout.cli.main import app
from gpuscout.store import Store
from gpuscout.workloads import QUICK_WORKLOADS

pytest.importorskip("torch")

PRIMARY = {f"{w}/{impl}" for w in QUICK_WORKLOADS for impl in ("reference", "tuned")}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GPUSCOUT_OFFLINE", "1")  # stand-in data, never a download


def test_run_goes_through_every_real_stage(tmp_path: Path) -> None:
    db = tmp_path / "data" / "gpuscout.db"
    r = CliRunner().invoke(app, ["run", "--tiny", "--db", str(db)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    out = r.stdout
    headings = ["1. Readiness", "2. Ceilings", "3. Real work", "Verdict"]
    assert all(h in out for h in headings)
    assert [out.index(h) for h in headings] == sorted(out.index(h) for h in headings)
    assert "launch/dispatch" in out  # the micro-benchmark's table
    verdict = out.split("Verdict", 1)[1]
    assert all(f"on {w}:" in verdict for w in QUICK_WORKLOADS)
    with Store.open(db) as store:
        (run,) = store.list_runs()
        results = store.results(run.id)
        findings = store.findings(run.id)
    assert run.kind == "run" and run.status == "ok" and run.summary["headline"]
    assert {"host.cpu", "nvidia.driver"} <= {f.id for f in findings}
    assert any(x.name == "launch/dispatch" and x.device == "cpu" for x in results)
    work = {x.name: x for x in results if x.name in PRIMARY and x.device == "cpu"}
    assert set(work) == PRIMARY
    for x in work.values():
        assert x.status == "ok" and x.figure is not None and x.figure > 0, x
        assert x.extra["quick"] is True  # the run's quick set, made tiny
    report = tmp_path / "data" / "reports" / f"run-{run.id}.html"
    assert f"report: {report}" in out
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_bench_workload_trains_the_quick_set_for_real(tmp_path: Path) -> None:
    """The tuned programs only (the run above trains both): the text table, the verdict,
    the stored run."""
    db = tmp_path / "w.db"
    args = ["bench", "workload", ",".join(QUICK_WORKLOADS), "--device", "cpu", "--quick"]
    tiny = ["--impl", "tuned", "--epochs", "1", "--limit-samples", "256", "--steps", "1"]
    r = CliRunner().invoke(app, [*args, *tiny, "--db", str(db)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    tuned = {f"{w}/tuned" for w in QUICK_WORKLOADS}
    with Store.open(db) as store:
        (run,) = store.list_runs()
        results = store.results(run.id)
    assert run.kind == "workload" and run.status == "ok"
    assert {x.name for x in results} == tuned
    assert all(x.status == "ok" and x.device == "cpu" for x in results)
    verdict_at = min(r.stdout.index(f"on {w}:") for w in QUICK_WORKLOADS)
    assert all(r.stdout.index(name) < verdict_at for name in tuned)  # the table, then it
    synthetic = any(x.extra.get("synthetic_data") for x in results)
    assert ("synthetic data:" in r.stdout) is synthetic
    assert run.summary["synthetic_data"] is synthetic
