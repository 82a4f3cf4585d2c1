"""gpuscout.validate.fit_against_measured: its cases, the transformers configs it hands
accelerate, and a whole run of one case, replayed on fake tensors and measured (on a
machine without CUDA the measured row says why it has no figure)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gpuscout.fit import FitRequest, load_model
from gpuscout.validate import fit_against_measured as fit
from gpuscout.workloads.registry import workload_model

pytest.importorskip("torch")  # the replay and the measuring worker build the model

GIB = 2**30


def test_the_cases_are_every_workload_and_the_llama_sizes() -> None:
    names = [name for name, _ in fit.cases()]
    assert len(names) == len(set(names)) == 18
    assert names[:6] == [
        "mlp workload",
        "cnn workload",
        "encoder workload s128",
        "encoder workload s512",
        "llm workload b1",
        "llm workload b8",
    ]
    assert sum(n.startswith("1B infer") for n in names) == 4
    assert sum(n.startswith("8B infer") for n in names) == 3
    assert sum("LoRA r16" in n for n in names) == 5


def test_llama_3_2_1b_becomes_its_transformers_config() -> None:
    # The values of meta-llama/Llama-3.2-1B's config.json.
    config = fit.hf_config(load_model("llama-3.2-1b"))
    assert config is not None
    assert config["model_type"] == "llama"
    assert config["architectures"] == ["LlamaForCausalLM"]
    expected = {
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "num_hidden_layers": 16,
        "vocab_size": 128256,
        "tie_word_embeddings": True,
    }
    assert {k: config[k] for k in expected} == expected


def test_the_encoder_workload_becomes_a_bert_config() -> None:
    # BERT-base's shape (google-bert/bert-base-uncased's config.json).
    config = fit.hf_config(workload_model("encoder"))
    assert config is not None
    assert config["model_type"] == "bert"
    got = {k: config[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads")}
    assert got == {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}
    assert config["intermediate_size"] == 3072 and config["max_position_embeddings"] == 512


def test_what_is_not_a_transformers_model_is_not_compared() -> None:
    mlp = FitRequest(workload_model("mlp"), batch_size=32)
    assert fit.hf_config(mlp.model) is None
    assert fit.accelerate_estimate(mlp) == (None, "not comparable (not a transformers model)")


def test_without_accelerate_the_column_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "accelerate", None)  # import fails as if not installed
    req = FitRequest(load_model("llama-3.2-1b"), mode="infer", batch_size=1, seq_len=2048)
    assert fit.accelerate_estimate(req) == (None, "not comparable (accelerate is not installed)")


def test_a_failed_measurement_shows_its_status_where_the_context_goes() -> None:
    row = {
        "case": "x",
        "predicted_bytes": 2 * GIB,
        "measured_bytes": None,
        "predicted_error_pct": None,
        "accelerate_bytes": 3 * GIB,
        "accelerate_error_pct": None,
        "accelerate_basis": "Adam, float16",
        "measurement": SimpleNamespace(
            status="oom", error="CUDA out of memory", context_bytes=None
        ),
    }
    assert fit.markdown_row(row) == (
        "| x | 2.00 | n/a | n/a | 3.00 | n/a | Adam, float16 | oom: CUDA out of memory |"
    )
    for line in fit.markdown_header("measured").splitlines():  # the columns line up
        assert line.count("|") == fit.markdown_row(row).count("|")


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[Any, str]:
    out = tmp_path / "fit.json"
    assert fit.main(["--only", "mlp", "--out", str(out), *args]) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def test_the_mlp_case_replayed_on_fake_tensors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, printed = _run(tmp_path, capsys, "--simulate")
    assert doc["kind"] == "simulated (allocator only)"
    (row,) = doc["rows"]
    assert row["case"] == "mlp workload" and row["kind"] == "simulated"
    assert row["measured_bytes"] > 0
    # the allocator's share: the prediction less the CUDA context it cannot see
    est = row["estimate"]
    assert row["predicted_bytes"] == est["total_bytes"] - est["overhead_bytes"]
    error = (row["predicted_bytes"] - row["measured_bytes"]) / row["measured_bytes"] * 100
    assert row["predicted_error_pct"] == pytest.approx(error)
    lines = printed.splitlines()
    assert lines[0].startswith("| case | fit predicted GiB | simulated (allocator only) GiB |")
    assert lines[2].startswith("| mlp workload |") and len(lines) == 3


def test_the_mlp_case_measured_in_a_worker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    doc, printed = _run(tmp_path, capsys, "--timeout", "120")
    (row,) = doc["rows"]
    assert doc["kind"] == "measured" and row["kind"] == "measured"
    m = row["measurement"]
    if torch.cuda.is_available():
        assert m["status"] == "ok" and row["measured_bytes"] == m["peak_bytes"] > 0
        return
    assert m["status"] == "no_cuda" and row["measured_bytes"] is None
    assert row["predicted_error_pct"] is None
    assert printed.splitlines()[2].endswith("| no_cuda: PyTorch sees no CUDA GPU on this machine |")
