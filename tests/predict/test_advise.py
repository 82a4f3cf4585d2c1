"""`advise`: the verdict from synthetic measurements in a store built here (no torch):
stay on the CPU, buy, rent, several GPUs for a deadline or a big model; the CLI's JSON
and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gpuscout._types import Result
from gpuscout.catalog import find_gpu
from gpuscout.cli.advise import register
from gpuscout.errors import UsageError
from gpuscout.predict import advise
from gpuscout.predict import defaults as d
from gpuscout.store import Store

runner = CliRunner()
H100 = {"device_name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 85_520_809_984}


def result(workload: str, device: str, per_s: float, batch: int, **extra: Any) -> Result:
    e = {
        "workload": workload,
        "impl": "tuned",
        "variant": None,
        "batch_size": batch,
        "step_time_s": batch / per_s,
        "dtype": "fp32",
    } | extra
    return Result(f"{workload}/tuned", device, per_s, "images/s", extra=e)


def mlp_cpu(per_s: float = 5000.0) -> Result:
    return result("mlp", "cpu", per_s, 32, flops_per_step=1.95e7, bytes_per_step=4.1e6,
                  host_ops_per_step=50, params=101_770)  # fmt: skip


def cnn_cpu(per_s: float = 5.0) -> Result:
    return result("cnn", "cpu", per_s, 16, flops_per_step=3.9e11, bytes_per_step=3.6e9,
                  host_ops_per_step=600, params=25_557_032, model="resnet50")  # fmt: skip


def cnn_h100() -> Result:
    return result("cnn", "cuda:0", 2790.0, 256, flops_per_step=6.28e12, bytes_per_step=29.4e9,
                  host_ops_per_step=459, params=25_557_032, model="resnet50", dtype="bf16",
                  **H100)  # fmt: skip


def test_a_short_cpu_run_stays_on_the_cpu() -> None:
    a = advise(results=[mlp_cpu()])
    assert a.recommended is not None and a.recommended.option == "cpu"
    assert "Stay on the CPU" in a.verdict
    # One run is the Keras tutorial's: 5 epochs of 60,000 images, at 5,000 samples/s.
    assert a.rows[0].time_per_run_s == pytest.approx(5 * 60_000 / 5000.0)


def test_a_long_cpu_run_gets_a_gpu_with_every_option_costed() -> None:
    a = advise(results=[cnn_cpu()], hours_per_week=10)
    assert [r.option for r in a.rows] == ["cpu", "consumer", "workstation", "datacenter", "cloud"]
    assert a.recommended is not None and a.recommended.option != "cpu"
    cloud = a.rows[-1]
    assert cloud.cloud_price_date and cloud.cloud_provider and cloud.cloud_usd_per_run
    assert cloud.cloud_usd_per_run == pytest.approx(
        (cloud.cloud_usd_per_hour or 0) * (cloud.time_per_run_s or 0) / 3600
    )
    consumer = a.rows[1]
    spec = find_gpu(str(consumer.gpu_id))
    assert consumer.electricity_usd_per_run == pytest.approx(
        (spec.tdp_w or 0) * (consumer.time_per_run_s or 0) / 3600 / 1000 * d.PRICE_KWH_USD
    )
    if consumer.break_even_hours is not None:
        assert consumer.break_even_weeks == pytest.approx(consumer.break_even_hours / 10)
    assert a.pro_vs_consumer and a.pro_vs_consumer[0][0] == "GPU"
    aspects = {row[0] for row in a.pro_vs_consumer}
    assert {"ECC memory", "NVLink / multi-GPU", "FP64", "power and cooling"} <= aspects
    assert a.prediction is not None and a.prediction.calibrated is False


def test_the_advice_names_the_cpu_it_measured_on() -> None:
    a = advise(results=[cnn_cpu()], system={"cpu_model": "Test CPU 9000"})
    assert a.prediction is not None and "Test CPU 9000" in a.prediction.measured_on


def test_cli_defaults_are_the_librarys() -> None:
    import inspect

    from gpuscout.cli import advise as cli

    params = inspect.signature(cli.advise).parameters
    assert params["hours_per_week"].default.default == d.HOURS_PER_WEEK
    assert params["price_kwh"].default.default == d.PRICE_KWH_USD


def test_a_budget_filters_purchases() -> None:
    a = advise(results=[cnn_cpu()], budget_usd=800)
    for r in a.rows:
        if r.option in ("consumer", "workstation", "datacenter") and r.gpu_id is not None:
            assert r.buy_usd is not None and r.buy_usd <= 800


def test_a_deadline_one_gpu_cannot_meet_brings_several() -> None:
    # One ImageNet epoch at 2,790 img/s is ~7.7 min on one H100; ask for 3 minutes.
    a = advise(results=[cnn_h100()], deadline_hours=0.05)
    assert a.recommended is not None and a.recommended.gpus > 1
    assert a.recommended.time_per_run_s is not None and a.recommended.time_per_run_s <= 180
    assert "one GPU is not enough" in a.verdict


def test_a_model_that_fits_no_single_gpu_gets_a_sharded_box() -> None:
    # Full fine-tuning with AdamW keeps ~16 bytes per weight: 128 GB for 8B weights.
    a = advise(results=[], model="llama-3-8b", mode="train")
    assert a.recommended is not None and a.recommended.gpus > 1
    assert "one GPU is not enough" in a.verdict
    workstation = next(r for r in a.rows if r.option == "workstation")
    assert workstation.gpus > 1 and "fully sharded" in workstation.note
    consumer = next(r for r in a.rows if r.option == "consumer")
    assert consumer.gpu_id is None  # four 32 GB cards are not enough either
    assert a.prediction is not None and not a.prediction.calibrated


def test_a_model_to_run_fits_on_one_gpu() -> None:
    a = advise(results=[], model="llama-3-8b", mode="infer")
    assert a.recommended is not None and a.recommended.gpus == 1
    assert a.sample_unit == "tokens"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hours_per_week": 0},
        {"hours_per_week": 200},
        {"price_kwh": -1},
        {"budget_usd": 0},
        {"deadline_hours": -3},
        {"workload": "llm"},  # not measured in these results
        {"model": "resnet50"},  # a CNN: measured, not derived
        {"model": "llama-3-8b", "mode": "serve"},
        {"model": "llama-3-8b", "workload": "cnn"},
    ],
)
def test_bad_input_is_a_usage_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        advise(results=[cnn_cpu()], **kwargs)


def test_nothing_measured_is_a_usage_error_with_the_fix() -> None:
    with pytest.raises(UsageError) as err:
        advise(results=[Result("memory/copy", "cpu", 20.0, "GB/s")])
    assert "gpuscout run" in err.value.hint


# -- the CLI, on a recorded store ------------------------------------------------------


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps `advise` a subcommand
        pass

    return app


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "g.db"
    with Store.open(path) as store, store.run("workload", {"host": "box"}) as run:
        run.add_results([cnn_cpu(), mlp_cpu()])
    return path


def test_cli_json(app: typer.Typer, db: Path) -> None:
    out = runner.invoke(app, ["advise", "--db", str(db), "--workload", "cnn", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["recommended"]["option"] != "cpu"
    assert len(doc["rows"]) == 5 and doc["verdict"].startswith("cnn")


def test_cli_text_names_the_pick(app: typer.Typer, db: Path) -> None:
    out = runner.invoke(app, ["advise", "--db", str(db), "--budget", "2000"])
    assert out.exit_code == 0, out.output
    assert "Recommended" in out.stdout and "Assumptions" in out.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--hours-per-week", "0"], "--hours-per-week"),
        (["--workload", "llm"], "not measured"),
        (["--infer"], "--model"),
        (["--model", "llama-3-8b", "--train", "--infer"], "not both"),
        (["--model", "lama-3-8b"], "did you mean"),
        (["--run", "99"], "no run 99"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    app: typer.Typer, db: Path, args: list[str], needle: str
) -> None:
    out = runner.invoke(app, ["advise", "--db", str(db), *args])
    assert out.exit_code == 2
    assert needle in out.output and "Traceback" not in out.output


def test_cli_without_a_store_points_at_gpuscout_run(app: typer.Typer, tmp_path: Path) -> None:
    out = runner.invoke(app, ["advise", "--db", str(tmp_path / "none.db")])
    assert out.exit_code == 2 and "gpuscout run" in out.output
    assert not (tmp_path / "none.db").exists()  # asking created nothing
    out = runner.invoke(
        app, ["advise", "--db", str(tmp_path / "none.db"), "--model", "llama-3-8b", "--infer"]
    )
    assert out.exit_code == 0, out.output
