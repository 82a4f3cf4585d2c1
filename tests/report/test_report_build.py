"""What the report is built from: which runs, and each section's figures."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpuscout import Finding, Result, Status
from gpuscout.errors import UsageError
from gpuscout.report import Unavailable, build_report, gather, select_runs
from gpuscout.report.document import CeilingRow
from gpuscout.store import Store
from helpers.report_sample import (
    fill_store,
    findings,
    fingerprint,
    micro_results,
    workload_results,
)


@pytest.fixture
def store() -> Store:
    return Store(":memory:")


def _pieces(store: Store, host: str = "lab") -> tuple[int, int, int]:
    fp = fingerprint(host=host)
    with store.run("doctor", fp) as run:
        run.add_findings(findings())
    with store.run("bench-micro", fp) as run:
        run.add_results(micro_results())
    with store.run("workload", fp) as run:
        run.add_results(workload_results())
    return run.id - 2, run.id - 1, run.id


def test_an_empty_store_is_a_usage_error(store: Store) -> None:
    with pytest.raises(UsageError, match="no runs"):
        select_runs(store)


def test_a_full_run_is_the_whole_picture(store: Store) -> None:
    _pieces(store)
    run_id = fill_store(store, host="lab")
    assert [r.id for r in select_runs(store)] == [run_id]


def test_separate_commands_are_combined_newest_of_each(store: Store) -> None:
    fill_store(store, host="lab")  # older than all three pieces
    doctor, micro, work = _pieces(store)
    with store.run("doctor", fingerprint(host="lab")):  # a newer doctor run, without findings
        pass
    assert [r.id for r in select_runs(store)] == [doctor, micro, work]


def test_runs_from_another_host_are_not_mixed_in(store: Store) -> None:
    doctor, micro, _ = _pieces(store, host="lab")
    with store.run("workload", fingerprint(host="elsewhere")) as run:
        run.add_results(workload_results())
    newest = run.id
    chosen = select_runs(store)
    assert [r.id for r in chosen] == [newest]  # the newest run's host decides
    assert {r.fingerprint["host"] for r in chosen} == {"elsewhere"}
    assert doctor not in [r.id for r in chosen] and micro not in [r.id for r in chosen]


def test_explicit_run_ids_are_used_as_given(store: Store) -> None:
    doctor, _, work = _pieces(store)
    assert [r.id for r in select_runs(store, [work, doctor])] == [doctor, work]
    with pytest.raises(UsageError, match="no run 99"):
        select_runs(store, [99])


def test_ceilings_take_the_best_size_and_divide_by_the_peak() -> None:
    small = Result("matmul/bf16/256", "cuda:0", 100.0, "TFLOPS", extra={"peak": 1000.0})
    big = Result("matmul/bf16/8192", "cuda:0", 700.0, "TFLOPS", extra={"peak": 1000.0})
    failed = Result("matmul/bf16/16384", "cuda:0", None, "TFLOPS", "oom")
    mem = Result("memory/copy", "cpu", 40.0, "GB/s", extra={"peak": None})
    rows = gather.ceiling_rows([small, big, failed, mem], {"cuda:0": "H100"})
    by = {(r.device, r.what): r for r in rows}
    assert by[("cuda:0", "matmul bf16")].measured == 700.0
    assert by[("cuda:0", "matmul bf16")].fraction == pytest.approx(0.7)
    assert by[("cpu", "memory copy")].fraction is None
    assert rows[0].device == "cpu"  # the CPU first, then each GPU


def test_workload_rows_compare_each_device_with_the_cpus_best() -> None:
    rows = gather.workload_rows(workload_results(), {})
    gpu_tuned = next(
        r for r in rows if r.workload == "cnn" and r.device == "cuda:0" and r.impl == "tuned"
    )
    assert gpu_tuned.speedup_vs_cpu == pytest.approx(31_800 / 702)
    encoder = [r for r in rows if r.workload == "encoder"]
    assert encoder and all(r.speedup_vs_cpu is None for r in encoder)  # no CPU figure


def test_roofline_places_points_at_flops_over_bytes_and_lists_the_rest() -> None:
    results = workload_results()
    no_bytes = replace(
        results[0], extra={k: v for k, v in results[0].extra.items() if k != "bytes_per_step"}
    )
    results[0] = no_bytes
    ceilings = gather.ceiling_rows(micro_results(), {})
    roof = gather.roofline(results, ceilings, {})
    assert len(roof.points) == len(results) - 1
    assert roof.missing == (f"{no_bytes.name} on {no_bytes.device}",)
    cnn = next(p for p in roof.points if p.label == "cnn tuned" and p.device == "cuda:0")
    measured = next(r for r in results if r.name == "cnn/tuned" and r.device == "cuda:0")
    flops, moved = measured.extra["flops_per_step"], measured.extra["bytes_per_step"]
    assert cnn.intensity == pytest.approx(flops / moved)
    assert cnn.achieved_tflops == measured.extra["achieved_tflops"]
    h100_bf16 = next(r for r in roof.roofs if r.device == "cuda:0" and r.precision == "bf16")
    assert (h100_bf16.peak_tflops, h100_bf16.bandwidth_gbs) == (705.0, 2961.0)  # measured


def test_a_failing_section_becomes_unavailable_and_the_rest_stands(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_store(store)

    def broken(*args: object) -> tuple[CeilingRow, ...]:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(gather, "ceiling_rows", broken)
    report = build_report(store, forecast=False)
    assert report.ceilings == Unavailable("ZeroDivisionError: division by zero")
    assert isinstance(report.workloads, tuple) and report.workloads


def test_forecast_failures_cost_only_their_sections(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpuscout.report import forecast

    fill_store(store)

    def boom(*args: object) -> None:
        raise RuntimeError("predictor exploded")

    monkeypatch.setattr(forecast, "prediction", boom)
    monkeypatch.setattr(forecast, "advice", boom)
    report = build_report(store)
    assert report.prediction == Unavailable("RuntimeError: predictor exploded")
    assert report.advice == Unavailable("RuntimeError: predictor exploded")
    assert isinstance(report.workloads, tuple)


def test_summary_leads_with_readiness_problems(store: Store) -> None:
    with store.run("doctor", fingerprint()) as run:
        run.add_findings(
            [Finding("torch.arch", Status.FAIL, "sm_120 missing", fix="pip install ...")]
        )
    report = build_report(store, forecast=False)
    assert report.summary[0].startswith("1 readiness problem to fix first: torch.arch")


def test_summary_says_how_much_faster_the_gpu_is(store: Store) -> None:
    fill_store(store)
    report = build_report(store, forecast=False)
    line = next(s for s in report.summary if s.startswith("cnn"))
    assert "45x faster than the CPU" in line


def test_a_full_newest_run_is_chosen_without_reading_older_runs(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        _pieces(store)
    newest = fill_store(store, host="lab")
    read: list[int] = []
    real = store.results

    def counted(run_id: int) -> list[Result]:
        read.append(run_id)
        return real(run_id)

    monkeypatch.setattr(store, "results", counted)
    assert [r.id for r in select_runs(store)] == [newest]
    assert read == [newest]  # the older runs' results were never loaded


def test_work_above_its_ceiling_is_marked_not_passed_as_a_figure() -> None:
    from gpuscout.report import fmt, markdown

    results = workload_results()
    fast = next(r for r in results if r.extra.get("workload") == "cnn" and r.device == "cpu")
    flagged = replace(fast, peak_fraction=5.86, extra=dict(fast.extra) | {"above_ceiling": True})
    rows = gather.workload_rows([flagged], {})
    assert rows[0].above_ceiling
    assert fmt.ceiling_pct(rows[0].fraction, rows[0].above_ceiling) == "586%!"
    assert fmt.ceiling_pct(0.5, False) == "50%"
    assert "586%!" in markdown._workloads(rows)


def test_counts_read_as_words() -> None:
    from gpuscout.report.fmt import plural

    assert plural(1, "warning") == "1 warning" and plural(0, "warning") == "0 warnings"
    assert plural(1200, "run") == "1,200 runs" and plural(2, "box", "boxes") == "2 boxes"


def _busy(results: list[Result]) -> list[Result]:
    return [
        replace(r, extra={**r.extra, "flags": ["host-busy"], "host_busy_pct": 70.0})
        for r in results
    ]


def test_a_disturbed_run_leads_the_answer_and_is_not_called_ready(store: Store) -> None:
    with store.run("run", fingerprint()) as run:
        run.add_findings(findings())
        run.add_results(_busy(micro_results(gpu=False)) + workload_results(gpu=False))
    report = build_report(store)
    assert report.summary[0].startswith("measurements disturbed: ")
    assert "ran beside busy processes (others used up to 70% of the CPUs)" in report.summary[0]
    assert not any("ready for deep-learning work" in s for s in report.summary)
    assert report.summary[1].startswith("The readiness checks passed")
    # The advice's time per run comes from those figures: it says it cannot be trusted.
    assert report.summary[2].startswith("From disturbed measurements, not to be trusted")


def test_a_quiet_run_is_ready(store: Store) -> None:
    with store.run("run", fingerprint()) as run:
        run.add_findings(findings())
        run.add_results(micro_results(gpu=False) + workload_results(gpu=False))
    report = build_report(store, forecast=False)
    assert report.summary[0].startswith("This machine is ready for deep-learning work")
