"""gpuscout.validate.predict_across_gpus on synthetic runs: it pairs figures across two GPUs,
predicts each side from the other, and reports the errors (no GPU figures invented)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpuscout._types import Result
from gpuscout.catalog import find_gpu
from gpuscout.predict import predict_results
from gpuscout.store import Store
from gpuscout.validate import predict_across_gpus as across

GPU = {
    "h100": {"device_name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 85_520_809_984},
    "h200": {"device_name": "NVIDIA H200", "memory_total_bytes": 150_754_820_096},
}


def decode(step_s: float, gpu: str, **kw: Any) -> Result:
    e = (
        {
            "workload": "llm",
            "impl": "tuned",
            "variant": "decode-b1",
            "batch_size": 1,
            "ms_per_token": step_s * 1e3,
            "flops_per_step": 2.2e9,
            "bytes_per_step": 2.2e9,
            "host_ops_per_step": 10,
            "dtype": "bf16",
            "model": "llama-1.1b",
        }
        | GPU[gpu]
        | kw
    )
    return Result("llm/tuned/decode-b1", "cuda:0", 1 / step_s, "tokens/s", extra=e)


def test_a_figure_the_model_predicts_exactly_has_no_error() -> None:
    a = decode(0.002, "h100")
    # "Measure" the H200 as the model predicts it from the H100.
    pred = predict_results([a], None, [find_gpu("h200-sxm-141gb")])
    b = decode(pred.projections[0].step_s, "h200")
    report = across.validate([a], [b])
    (row,) = report["a_to_b"]
    assert row["abs_error"] == pytest.approx(0.0, abs=1e-9)
    assert row["predicted_low_s"] <= row["predicted_step_s"] <= row["predicted_high_s"]
    assert len(report["b_to_a"]) == 1 and report["figures"] == 2


def test_errors_are_relative_to_the_measurement() -> None:
    a = decode(0.002, "h100")
    pred = predict_results([a], None, [find_gpu("h200-sxm-141gb")])
    b = decode(pred.projections[0].step_s * 1.25, "h200")  # 25% slower than predicted
    (row,) = across.validate([a], [b])["a_to_b"]
    assert row["abs_error"] == pytest.approx(0.2)  # |p - 1.25 p| / 1.25 p


def test_cli_on_one_store_with_two_runs(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "v.db"
    with Store.open(path) as store:
        with store.run("workload", {"host": "h100box"}) as run:
            run.add_results([decode(0.002, "h100")])
            ra = run.id
        with store.run("workload", {"host": "h200box"}) as run:
            run.add_results([decode(0.0015, "h200")])
            rb = run.id
    assert across.main(["--db", str(path), "--runs", str(ra), str(rb), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["figures"] == 2 and doc["median_abs_error"] is not None
    assert across.main(["--db", str(path), "--runs", str(ra), str(rb)]) == 0
    assert "median absolute error" in capsys.readouterr().out


def test_nothing_comparable_says_so(tmp_path: Path, capsys: Any) -> None:
    extra = {"workload": "mlp", "impl": "tuned", "variant": None, "batch_size": 32,
             "flops_per_step": 2e7, "bytes_per_step": 4e6, "host_ops_per_step": 50}  # fmt: skip
    cpu = Result("mlp/tuned", "cpu", 5000.0, "samples/s", extra=extra)
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    for path in (a, b):
        with Store.open(path) as store, store.run("workload", {"host": "x"}) as run:
            run.add_results([cpu])
    assert across.main(["--a", str(a), "--b", str(b)]) == 1
    assert "nothing to compare" in capsys.readouterr().out
