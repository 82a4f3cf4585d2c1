"""Runs, results and findings: writing, reading and the run context manager."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gpuscout import Finding, Result, Stats, Status
from gpuscout.errors import StoreError, UsageError
from gpuscout.store import Store

STATS = Stats(
    n=30,
    median_s=0.0012,
    mean_s=0.00125,
    min_s=0.0011,
    max_s=0.002,
    p10_s=0.00115,
    p90_s=0.0014,
    iqr_s=0.00008,
    cv=0.07,
    noisy=False,
)

FULL = Result(
    name="matmul/bf16/8192",
    device="cuda:0",
    figure=712.5,
    unit="TFLOPS",
    status="ok",
    stats=STATS,
    peak_fraction=0.72,
    error=None,
    extra={"dtype": "bf16", "shape": [8192, 8192], "nested": {"a": None, "b": True}},
)
FAILED = Result("memory/copy", "cuda:0", None, "GB/s", status="oom", error="CUDA out of memory")


@pytest.fixture
def store() -> Iterator[Store]:
    with Store(":memory:") as s:
        yield s


def test_results_round_trip_with_stats_and_extra(store: Store) -> None:
    run_id = store.begin_run("bench-micro", {"host": "box", "gpuscout_version": "9.9"})
    store.add_result(run_id, FULL)
    store.add_results(run_id, [FAILED, Result("launch", "cpu", 3e5, "launches/s")])
    assert store.results(run_id) == [FULL, FAILED, Result("launch", "cpu", 3e5, "launches/s")]
    row = store.conn.execute("SELECT gpuscout_version, host FROM runs").fetchone()
    assert tuple(row) == ("9.9", "box")


def test_findings_round_trip(store: Store) -> None:
    run_id = store.begin_run("doctor", {})
    findings = [
        Finding("driver.version", Status.WARN, "old driver", "535 < 550", "apt install x", "GPU 0"),
        Finding("torch.cuda", Status.PASS, "ok"),
    ]
    store.add_findings(run_id, findings)
    assert store.findings(run_id) == findings


def test_add_results_is_all_or_nothing(store: Store) -> None:
    run_id = store.begin_run("bench", {})
    bad = Result(None, "cpu", 1.0, "s")  # type: ignore[arg-type]  # violates NOT NULL
    with pytest.raises(UsageError):
        store.add_results(run_id, [FULL, bad])
    assert store.results(run_id) == []
    assert store.integrity_ok()


def test_unstorable_extra_is_rejected_before_writing(store: Store) -> None:
    run_id = store.begin_run("bench", {})
    with pytest.raises(TypeError, match="cannot store"):
        store.add_results(run_id, [FULL, Result("x", "cpu", 1.0, "s", extra={"o": object()})])
    assert store.results(run_id) == []


def test_run_context_ok(store: Store) -> None:
    fp = {"host": "box", "gpus": []}
    with store.run("bench-micro", fp) as run:
        run.add_result(FULL)
        run.add_findings([Finding("x", Status.PASS, "fine")])
        run.summary["headline"] = "712 TFLOPS"
        assert store.get_run(run.id).status == "running"
    record = store.get_run(run.id)
    assert record.status == "ok"
    assert record.kind == "bench-micro"
    assert record.fingerprint == fp
    assert record.summary == {"headline": "712 TFLOPS"}
    assert record.finished_at is not None and record.finished_at >= record.started_at
    assert store.results(run.id) == [FULL]


def test_run_context_failed_keeps_results_and_reraises(store: Store) -> None:
    with pytest.raises(ValueError, match="boom"), store.run("workload", {}) as run:
        run.add_result(FULL)
        raise ValueError("boom")
    record = store.get_run(run.id)
    assert record.status == "failed"
    assert record.summary == {"error": "ValueError: boom"}
    assert store.results(run.id) == [FULL]


def test_run_context_interrupted_keeps_results_and_reraises(store: Store) -> None:
    with pytest.raises(KeyboardInterrupt), store.run("workload", {}) as run:
        run.add_result(FULL)
        raise KeyboardInterrupt
    assert store.get_run(run.id).status == "interrupted"
    assert store.results(run.id) == [FULL]


def test_run_context_explicit_failed_status(store: Store) -> None:
    with store.run("doctor", {}) as run:
        run.status = "failed"
    assert store.get_run(run.id).status == "failed"


def test_finish_run_keeps_summary_when_none(store: Store) -> None:
    run_id = store.begin_run("bench", {})
    store.finish_run(run_id, "ok", {"headline": "h"})
    store.finish_run(run_id, "failed")
    record = store.get_run(run_id)
    assert (record.status, record.summary) == ("failed", {"headline": "h"})


def test_finish_run_rejects_unknown_status(store: Store) -> None:
    run_id = store.begin_run("bench", {})
    with pytest.raises(UsageError, match="finishes as one of"):
        store.finish_run(run_id, "running")


def test_unknown_run_is_a_usage_error(store: Store) -> None:
    with pytest.raises(UsageError, match=r"no run 42 .*gpuscout history"):
        store.get_run(42)
    for call in (store.results, store.findings):
        with pytest.raises(UsageError, match="no run 42"):
            call(42)
    with pytest.raises(UsageError, match="no run 42"):
        store.add_result(42, FULL)
    with pytest.raises(UsageError, match="no run 42"):
        store.finish_run(42, "ok")


def test_begin_run_needs_a_kind(store: Store) -> None:
    with pytest.raises(UsageError):
        store.begin_run("", {})


def test_list_runs_newest_first_limit_and_kind(store: Store) -> None:
    kinds = ["doctor", "bench-micro", "doctor", "workload", "doctor"]
    ids = [store.begin_run(k, {}) for k in kinds]
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs(limit=2)] == ids[::-1][:2]
    assert [r.id for r in store.list_runs(kind="doctor")] == [ids[4], ids[2], ids[0]]
    assert store.list_runs(kind="nope") == []
    with pytest.raises(UsageError):
        store.list_runs(limit=0)


def test_nan_figure_is_stored_as_missing(store: Store) -> None:
    run_id = store.begin_run("bench", {})
    store.add_result(run_id, Result("x", "cpu", float("nan"), "s"))
    assert store.results(run_id)[0].figure is None


def test_numpy_like_scalars_in_extra_are_stored_as_numbers(store: Store) -> None:
    class Scalar:  # what numpy.float32 / torch scalars look like to the encoder
        def item(self) -> float:
            return 2.5

    run_id = store.begin_run("bench", {})
    store.add_result(run_id, Result("x", "cpu", 1.0, "s", extra={"v": Scalar()}))
    assert store.results(run_id)[0].extra == {"v": 2.5}


def test_closed_store_says_so() -> None:
    store = Store(":memory:")
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="closed"):
        store.list_runs()


def test_handle_id_outside_with_block_is_an_error(store: Store) -> None:
    handle = store.run("bench", {})
    with pytest.raises(StoreError, match="has not begun"):
        _ = handle.id
