"""`gpuscout compare`: results matched by name and device kind, B/A, what differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gpuscout import Result
from gpuscout.cli.report import register
from gpuscout.report.compare import compare_results, env_differences
from gpuscout.store import Store
from helpers.report_sample import fill_store, fingerprint

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_gpus_are_matched_by_kind_not_by_device_string() -> None:
    a = [
        Result("matmul/bf16", "cuda:0", 700.0, "TFLOPS"),
        Result("memory/copy", "cpu", 40.0, "GB/s"),
    ]
    b = [
        Result("matmul/bf16", "cuda:1", 350.0, "TFLOPS"),
        Result("memory/copy", "cpu", 50.0, "GB/s"),
    ]
    rows, only_a, only_b = compare_results(a, b)
    by = {(r.name, r.device): r for r in rows}
    gpu = by[("matmul/bf16", "gpu 0")]
    assert (gpu.device_a, gpu.device_b, gpu.ratio, gpu.b_better) == ("cuda:0", "cuda:1", 0.5, False)
    assert by[("memory/copy", "cpu")].ratio == pytest.approx(1.25)
    assert only_a == only_b == []


def test_the_nth_gpu_of_a_meets_the_nth_gpu_of_b() -> None:
    a = [Result("m", "cuda:0", 1.0, "x"), Result("m", "cuda:1", 2.0, "x")]
    b = [Result("m", "cuda:2", 3.0, "x"), Result("m", "cuda:10", 4.0, "x")]
    rows, _, _ = compare_results(a, b)
    assert [(r.device_a, r.device_b) for r in rows] == [("cuda:0", "cuda:2"), ("cuda:1", "cuda:10")]


def test_latency_is_better_when_lower_and_failures_have_no_ratio() -> None:
    a = [
        Result("launch/dispatch", "cpu", 4.0, "us"),
        Result("matmul/fp8", "cuda:0", 900.0, "TFLOPS"),
    ]
    b = [
        Result("launch/dispatch", "cpu", 2.0, "us"),
        Result("matmul/fp8", "cuda:0", None, "TFLOPS", "skipped"),
    ]
    rows, _, _ = compare_results(a, b)
    by = {r.name: r for r in rows}
    assert by["launch/dispatch"].ratio == 0.5 and by["launch/dispatch"].b_better is True
    assert by["matmul/fp8"].ratio is None and by["matmul/fp8"].b_better is None


def test_benchmarks_at_different_sizes_compare_their_best_size() -> None:
    a = [
        Result("matmul/bf16/256", "cpu", 0.6, "TFLOPS"),
        Result("matmul/bf16/512", "cpu", 0.8, "TFLOPS"),
    ]
    b = [
        Result("matmul/bf16/2048", "cpu", 4.0, "TFLOPS"),
        Result("matmul/bf16/4096", "cpu", None, "TFLOPS", "oom"),
        Result("matmul/fp8/2048", "cpu", 9.0, "TFLOPS"),
    ]
    rows, only_a, only_b = compare_results(a, b)
    assert [(r.name, r.figure_a, r.figure_b) for r in rows] == [
        ("matmul/bf16 (best size)", 0.8, 4.0)
    ]
    assert rows[0].ratio == pytest.approx(5.0)
    assert only_a == [] and only_b == ["matmul/fp8/2048 on cpu"]


def test_results_only_one_run_has_are_listed() -> None:
    rows, only_a, only_b = compare_results(
        [Result("x", "cpu", 1.0, "u")], [Result("y", "cuda:0", 1.0, "u")]
    )
    assert rows == [] and only_a == ["x on cpu"] and only_b == ["y on gpu 0"]


def test_environment_differences_name_gpu_driver_and_torch() -> None:
    a = fingerprint()
    b = fingerprint("NVIDIA H200") | {"driver_version": "590.10", "torch_version": "2.10.0"}
    diffs = {d.field: (d.a, d.b) for d in env_differences(a, b)}
    assert diffs == {
        "gpus": ("NVIDIA H100 80GB HBM3", "NVIDIA H200"),
        "driver_version": ("580.95.05", "590.10"),
        "torch_version": ("2.9.1+cu130", "2.10.0"),
    }


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "g.db"
    with Store.open(path) as store:
        fill_store(store, host="lab")
        fill_store(store, gpu=False, host="laptop")
    return path


def test_compare_command_shows_both_runs_and_what_differs(app: typer.Typer, tmp_path: Path) -> None:
    db = _db(tmp_path)
    r = runner.invoke(app, ["compare", "1", "2", "--db", str(db)], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    assert "A: run 1" in r.output and "B: run 2" in r.output
    assert "mlp/tuned" in r.output and "1.0x" in r.output
    assert (
        "only in A: matmul/fp32/8192 on gpu 0" in r.output and "more (--json lists all)" in r.output
    )
    assert "What differs" in r.output and "laptop" in r.output


def test_compare_json(app: typer.Typer, tmp_path: Path) -> None:
    r = runner.invoke(app, ["compare", "1", "2", "--json", "--db", str(_db(tmp_path))])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert doc["run_a"]["id"] == 1 and doc["run_b"]["id"] == 2
    assert {d["field"] for d in doc["differences"]} >= {"host", "gpus"}
    assert all(row["ratio"] == 1.0 for row in doc["results"])


def test_compare_unknown_run_is_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    r = runner.invoke(app, ["compare", "1", "9", "--db", str(_db(tmp_path))])
    assert r.exit_code == 2
    assert "no run 9" in r.output


def test_strings_from_another_machine_are_shown_as_text(app: typer.Typer, tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Store.open(db) as store:
        fill_store(store, host="lab")
        fill_store(store, gpu_name="[bold]GPU[/] x", host="rack[/]7")  # Rich markup, not text
    r = runner.invoke(app, ["compare", "1", "2", "--db", str(db)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "rack[/]7" in r.output and "[bold]GPU[/] x" in r.output
