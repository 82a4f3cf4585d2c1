"""`gpuscout fit`: tables, JSON, one-line usage errors (exit 2), --measure without a GPU
and with a fake worker, and no torch needed.

The command is mounted on a throwaway app here, the way cli/main.py will mount it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import gpuscout.cli.fit as cli_fit
from gpuscout.catalog import load_gpus
from gpuscout.fit import DEFAULT_GPUS


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(cli_fit, "local_gpus", lambda: [])
    # probing frameworks for the run's fingerprint takes seconds; not what is tested here
    monkeypatch.setattr(cli_fit, "run_fingerprint", lambda: {"host": "test"})


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _main() -> None:
        """gpuscout."""

    cli_fit.register(app)
    return app


def invoke(*args: str) -> Any:
    return CliRunner().invoke(make_app(), ["fit", *args])


def test_help_lists_the_options() -> None:
    r = invoke("--help")
    assert r.exit_code == 0
    for opt in ("--train", "--infer", "--gpu", "--all-gpus", "--batch-size", "--seq-len",
                "--dtype", "--optimizer", "--lora-rank", "--checkpointing", "--gpus", "--zero",
                "--tp", "--json", "--db", "--measure", "--device"):  # fmt: skip
        assert opt in r.output


def test_the_table_shows_each_term_and_each_default_gpu() -> None:
    r = invoke("llama-3-8b", "--infer", "--seq-len", "8192")
    assert r.exit_code == 0, r.output
    for word in ("weights", "KV cache", "overhead", "peak", "lever", "max batch", "max context"):
        assert word in r.output
    for gpu in DEFAULT_GPUS:
        assert gpu in r.output
    assert "14.96" in r.output  # 16.06e9 bytes of bf16 weights, in GiB


def test_json_has_the_estimate_and_one_row_per_gpu() -> None:
    r = invoke("llama-3.2-1b", "--lora-rank", "16", "--seq-len", "2048", "--gpu", "4090",
               "--gpu", "h100 sxm", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    est = doc["estimate"]
    assert est["request"]["lora_rank"] == 16 and est["request"]["seq_len"] == 2048
    assert est["low_bytes"] <= est["total_bytes"] <= est["high_bytes"]
    assert [g["gpu_id"] for g in doc["gpus"]] == ["rtx-4090", "h100-sxm5-80gb"]
    assert doc["gpus"][1]["fits"] is True
    assert doc["measured"] is None and doc["run_id"] is None


def test_all_gpus_covers_the_catalog() -> None:
    r = invoke("mlp", "--all-gpus", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert len(doc["gpus"]) == len(load_gpus())
    assert doc["estimate"]["request"]["dtype"] == "fp32"  # the mlp workload's own
    assert doc["estimate"]["request"]["batch_size"] == 32


def test_list_shows_the_models() -> None:
    r = invoke("--list")
    assert r.exit_code == 0
    assert "llama-3-70b" in r.output and "resnet50" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("llama-3-9b",), "llama-3-8b,"),
        (("llama-3-8b", "--infer", "--lora-rank", "8"), "LoRA is a way to train"),
        (("llama-3-8b", "--dtype", "int4"), "cannot be trained directly"),
        (("llama-3-8b", "--batch-size", "0"), "--batch-size must be at least 1"),
        (("llama-3-8b", "--zero", "3", "--gpus", "3", "--tp", "2"), "not a multiple"),
        (("llama-3-8b", "--gpu", "rtx-9090"), "unknown GPU"),
        (("llama-3-8b", "--gpu", "4090", "--all-gpus"), "not both"),
        (("llama-3-8b", "--dtype", "fp5"), "unknown weight format"),
        (("gpt2", "--seq-len", "4096"), "learned positions"),
        ((), "give a MODEL"),
        (("llama-3-8b", "--measure"), "NVML finds none"),
        (("mixtral-8x7b", "--measure"), "--measure has no moe-decoder"),
        (("llama-3-8b", "--measure", "--device", "cpu"), "--measure runs on one CUDA GPU"),
        (("llama-3-8b", "--dtype", "nf4", "--lora-rank", "8", "--measure"), "fp32, bf16 or fp16"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output


def test_a_malformed_config_json_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama", "hidden_size": 64}')
    r = invoke(str(bad))
    assert r.exit_code == 2
    assert "has no 'num_hidden_layers'" in r.output


def test_a_config_json_by_path(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "model_type": "mistral",
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "num_attention_heads": 32,
                "num_hidden_layers": 32,
                "num_key_value_heads": 8,
                "vocab_size": 32000,
                "max_position_embeddings": 32768,
            }
        )
    )
    r = invoke(str(tmp_path), "--infer", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["model"]["params"] == 7_241_732_096


def fake_measure(req: Any, device: str, search: bool, cap: int, **limits: Any) -> dict[str, Any]:
    """Stands in for trials.measure_in_worker, in the worker process."""
    return {
        "status": "ok",
        "device_name": "Fake GPU 80GB",
        "memory_total_bytes": 80 * 1024**3,
        "fits": True,
        "allocated_peak_bytes": 3 * 1024**3,
        "context_bytes": 512 * 1024**2,
        "context_source": "nvml",
        "max_batch": 40,
        "max_batch_capped": False,
        "trials": [(1, True, 3 * 1024**3), (64, False, None), (40, True, 70 * 1024**3)],
    }


def test_measure_runs_the_worker_and_stores_one_fit_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_fit, "MEASURE_TARGET", fake_measure)
    db = tmp_path / "fit.db"
    r = invoke("llama-3.2-1b", "--lora-rank", "16", "--seq-len", "1024", "--measure",
               "--db", str(db), "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout is JSON only; progress goes to stderr
    assert doc["measured"]["peak_bytes"] == 3 * 1024**3 + 512 * 1024**2
    from gpuscout.store import Store

    with Store.open(db) as store:
        run = store.get_run(doc["run_id"])
        assert run.kind == "fit" and run.status == "ok"
        results = {res.name.rsplit("/", 1)[1]: res for res in store.results(run.id)}
    assert set(results) == {"predicted", "measured"}
    assert results["predicted"].figure == doc["estimate"]["total_bytes"]
    measured = results["measured"]
    assert measured.figure == 3 * 1024**3 + 512 * 1024**2
    assert measured.extra["max_batch"] == 40
    assert measured.extra["error_pct"] == pytest.approx(
        (doc["estimate"]["total_bytes"] - measured.figure) / measured.figure * 100
    )


def test_the_text_output_of_a_measurement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_fit, "MEASURE_TARGET", fake_measure)
    r = invoke("mlp", "--measure", "--db", str(tmp_path / "fit.db"))
    assert r.exit_code == 0, r.output
    assert "measured on Fake GPU 80GB (cuda:0)" in r.output
    assert "largest batch that ran: 40" in r.output


def stopped_search(req: Any, device: str, search: bool, cap: int, **limits: Any) -> dict[str, Any]:
    out = fake_measure(req, device, search, cap)
    del out["max_batch"], out["trials"]
    return out | {"search_error": "RuntimeError: CUDA error: invalid configuration argument"}


def test_a_search_stopped_by_an_error_is_shown_with_the_measured_peak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_fit, "MEASURE_TARGET", stopped_search)
    r = invoke("mlp", "--measure", "--device", "cuda", "--db", str(tmp_path / "fit.db"))
    assert r.exit_code == 1, r.output  # part of what was asked did not run
    assert "measured on Fake GPU 80GB (cuda:0): peak 3.50 GiB" in r.output
    assert "search stopped: RuntimeError: CUDA error: invalid configuration" in r.output
    from gpuscout.store import Store

    with Store.open(tmp_path / "fit.db") as store:
        assert store.get_run(1).status == "failed"


def test_fit_works_without_torch() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any `import torch` now fails\n"
        "import typer\n"
        "from typer.testing import CliRunner\n"
        "from gpuscout.cli.fit import register\n"
        "app = typer.Typer()\n"
        "@app.callback()\n"
        "def main() -> None: pass\n"
        "register(app)\n"
        "r = CliRunner().invoke(app, ['fit', 'llama-3-8b', '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "import json; doc = json.loads(r.output)\n"
        "assert doc['estimate']['weights_bytes'] == 16060522496\n"
        "r = CliRunner().invoke(app, ['fit', 'resnet50', '--infer', '--all-gpus'])\n"
        "assert r.exit_code == 0, r.output\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


QLORA_FLAGS = ("advise", "--model", "llama-3-8b", "--lora-rank", "16", "--dtype", "nf4")


def test_advise_takes_fits_options_and_asks_the_same_question() -> None:
    import gpuscout.cli.advise as cli_advise

    app = make_app()
    cli_advise.register(app)
    advise = CliRunner().invoke(
        app,
        [*QLORA_FLAGS, "--budget", "500", "--json"],
    )
    assert advise.exit_code == 0, advise.output
    consumer = next(r for r in json.loads(advise.output)["rows"] if r["option"] == "consumer")
    gpu = consumer["gpu_id"]  # the card within $500 that holds it
    fit = invoke("llama-3-8b", "--lora-rank", "16", "--dtype", "nf4", "--gpu", gpu, "--json")
    assert fit.exit_code == 0, fit.output
    answer = json.loads(fit.output)["gpus"][0]
    assert answer["fits"] is consumer["fits"] is True
    usable = round(answer["usable_bytes"] / 2**30)
    assert f"needs {answer['need_bytes'] / 2**30:.1f} of {usable} GiB" in consumer["note"]
    alone = CliRunner().invoke(app, ["advise", "--dtype", "nf4"])
    assert alone.exit_code == 2 and "go with --model" in alone.output
