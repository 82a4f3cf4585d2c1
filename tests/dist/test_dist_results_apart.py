"""A `bench dist` scaling point is not a single-device workload figure: the report's
CPU-vs-GPU section, predict and advise must not take it for one (they did: a 2-rank
tiny-model throughput showed up as "cnn on the CPU")."""

from __future__ import annotations

from pathlib import Path

from helpers.report_sample import fingerprint, micro_results, workload_results

from gpuscout._types import Result
from gpuscout.dist.job import plan, to_results
from gpuscout.predict import advise
from gpuscout.predict.project import run_results
from gpuscout.report import build_report
from gpuscout.store import Store

SCALING_POINT = {
    "workload": "cnn",
    "parallel": "ddp",
    "processes": 2,
    "model": "resnet-tiny",
    "per_rank_batch": 8,
    "throughput": 2003.0,
    "efficiency": 0.67,
    "status": "ok",
}


def _dist_results() -> list[Result]:
    p = plan(nproc_per_node=2, backend="gloo", device="cpu", quick=True)
    return to_results({"collectives": [], "scaling": [SCALING_POINT]}, p)


def test_a_scaling_point_is_named_as_such_and_not_as_a_workload() -> None:
    (r,) = _dist_results()
    assert r.name == "dist/scaling/cnn/2"
    assert "workload" not in r.extra
    assert r.extra["scaled_workload"] == "cnn"


def _store(path: Path) -> tuple[int, int]:
    fp = fingerprint(host="lab")
    with Store.open(path) as store:
        with store.run("bench-micro", fp) as run:
            run.add_results(micro_results())
        with store.run("workload", fp) as run:
            run.add_results(workload_results())
            workload_run = run.id
        with store.run("bench-dist", fp) as run:  # the newest run
            run.add_results(_dist_results())
            dist_run = run.id
    return workload_run, dist_run


def test_report_predict_and_advise_skip_the_dist_run(tmp_path: Path) -> None:
    workload_run, _ = _store(tmp_path / "g.db")
    with Store.open(tmp_path / "g.db") as store:
        rid, _, _ = run_results(store)
        assert rid == workload_run
        report = build_report(store, forecast=False)
        rows = report.workloads
        assert isinstance(rows, tuple) and rows
        assert all(row.figure != 2003.0 for row in rows)
        assert advise(store=store, workload="cnn").workload.startswith("cnn")


def test_advise_on_a_workload_takes_the_newest_run_that_measured_it(tmp_path: Path) -> None:
    workload_run, _ = _store(tmp_path / "g.db")
    mlp_only = [r for r in workload_results() if r.extra.get("workload") == "mlp"]
    with Store.open(tmp_path / "g.db") as store:
        with store.run("workload", fingerprint(host="lab")) as run:
            run.add_results(mlp_only)
            newest = run.id
        assert run_results(store)[0] == newest
        assert run_results(store, workload="cnn")[0] == workload_run
        assert advise(store=store, workload="cnn").workload.startswith("cnn")
