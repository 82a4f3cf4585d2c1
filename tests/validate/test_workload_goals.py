"""gpuscout.validate.workload_goals judges the workload goals as they are stated: made-up
results in the shape the workloads record, on the GPU and on the CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpuscout._types import Result
from gpuscout.validate import workload_goals as goals

GPU = "cuda:0"


def r(name: str, figure: float | None = 1.0, status: str = "ok", **extra: Any) -> Result:
    return Result(name, GPU, figure, "x", status, extra=extra)


def ok(name: str, figure: float | None, extra: dict[str, Any]) -> Result:
    return Result(name, GPU, figure, "x", "ok", extra=extra)


def mlp(ref_s: float, tuned_s: float, tuned_acc: float = 0.85, **tuned: Any) -> list[Result]:
    common = {"epochs": 5, "batch_size": 32}
    return [
        ok("mlp/reference", 1.0, {"time_s": ref_s, "accuracy": 0.85} | common),
        ok(
            "mlp/tuned",
            1.0,
            {"time_s": tuned_s, "accuracy": tuned_acc, "cuda_graphs": True} | common | tuned,
        ),
    ]


def test_mlp_on_the_gpu_needs_a_second_graphs_and_the_same_accuracy() -> None:
    assert goals.judge_mlp(mlp(18.6, 0.9), GPU)["met"] is True
    assert goals.judge_mlp(mlp(18.6, 1.2), GPU)["met"] is False
    assert goals.judge_mlp(mlp(18.6, 0.9, tuned_acc=0.80), GPU)["met"] is False
    assert goals.judge_mlp(mlp(18.6, 0.9, cuda_graphs=False), GPU)["met"] is False
    assert goals.judge_mlp(mlp(18.6, 0.9, batch_size=256), GPU)["met"] is False
    failed = [r("mlp/reference", time_s=1.0), r("mlp/tuned", None, "oom")]
    out = goals.judge_mlp(failed, GPU)
    assert out["met"] is False and "oom" in out["why"]


def test_mlp_on_a_cpu_is_judged_against_the_tutorial_loop() -> None:
    assert goals.judge_mlp(mlp(10.0, 8.0, cuda_graphs=False), "cpu")["met"] is True
    assert goals.judge_mlp(mlp(10.0, 8.5, cuda_graphs=False), "cpu")["met"] is False


def cnn(figure: float, **changes: Any) -> list[Result]:
    extra = {
        "model": "resnet50",
        "dtype": "bf16",
        "batch_size": 256,
        "channels_last": True,
        "compile": True,
    }
    return [ok("cnn/tuned", figure, extra | changes)]


def test_cnn_counts_only_the_compiled_bf16_channels_last_run() -> None:
    assert goals.judge_cnn(cnn(5700.0), GPU)["met"] is True
    assert goals.judge_cnn(cnn(5500.0), GPU)["met"] is False
    assert goals.judge_cnn(cnn(5700.0, compile=False), GPU)["met"] is False  # fell back to eager
    assert goals.judge_cnn(cnn(5700.0, dtype="fp32"), GPU)["met"] is False
    assert goals.judge_cnn(cnn(5700.0, channels_last=False), GPU)["met"] is False
    assert goals.judge_cnn(cnn(5700.0), "cpu")["goal"] is None


def llm(tokens_s: float, source: str = "measured (bench micro, run 3)", **changes: Any) -> Any:
    extra = {
        "model": "llama-1.1b",
        "dtype": "bf16",
        "weight_bytes": 2.0e9,
        "ceiling_kind": "memory bandwidth",
        "ceiling_value": 2800.0,  # GB/s: a bound of 1,400 tokens/s
        "ceiling_source": source,
    }
    return [ok("llm/tuned/decode-b1", tokens_s, extra | changes)]


def test_llm_is_judged_against_the_measured_bandwidth_bound() -> None:
    out = goals.judge_llm(llm(1100.0))
    assert out["bandwidth_bound_tokens_per_s"] == pytest.approx(1400.0)
    assert out["tuned_fraction_of_bound"] == pytest.approx(1100 / 1400)
    assert out["met"] is True and out["at_least_1000_tokens_per_s"] is True
    assert goals.judge_llm(llm(1000.0))["met"] is False  # 71%
    assert goals.judge_llm(llm(1100.0, dtype="fp32"))["met"] is False
    # Against a datasheet bound (higher than measured) a shortfall is not yet a miss.
    datasheet = goals.judge_llm(llm(1000.0, source="catalog datasheet (h100-sxm)"))
    assert datasheet["met"] is None and "bench micro" in datasheet["why"]
    assert goals.judge_llm(llm(1100.0, source="catalog datasheet (h100-sxm)"))["met"] is True
    assert goals.judge_llm(llm(1100.0, ceiling_kind=None))["met"] is None


def test_main_measures_each_goal_at_its_stated_size_and_writes_what_it_prints(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The workloads' runner replaced by made-up results: what is checked is which runs
    # each goal asks for and how the report is put together.
    calls: list[tuple[Any, ...]] = []

    def run_workloads(names: Any, device: str, impl: str, **kw: Any) -> list[Result]:
        calls.append((names, device, impl, kw))
        if names == "cnn":
            return cnn(6000.0 if kw.get("compile") else 4000.0, compile=kw.get("compile", True))
        made_up: dict[str, list[Result]] = {"mlp": mlp(18.6, 0.9), "llm": llm(1100.0)}
        return made_up.get(names, mlp(10.0, 8.0))

    monkeypatch.setattr(goals, "run_workloads", run_workloads)
    out = tmp_path / "goals.json"
    assert goals.main(["--only", "mlp,cnn,llm,quick", "--out", str(out), "--db", "x.db"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["device"] == GPU
    assert [printed[k]["met"] for k in ("mlp", "cnn", "llm")] == [True, True, True]
    assert printed["cnn"]["compile_speedup"] == pytest.approx(1.5)
    assert [r["name"] for r in printed["mlp"]["results"]] == ["mlp/reference", "mlp/tuned"]
    assert printed["quick"]["wall_s"] >= 0 and isinstance(printed["quick"]["verdict"], str)
    assert calls[0] == ("mlp", GPU, "both", {"epochs": 5, "batch_size": 32, "db": "x.db"})
    resnet = {"model": "resnet50", "batch_size": 256, "db": "x.db", "steps": 20}
    assert calls[1:4] == [
        ("cnn", GPU, "tuned", {"compile": False} | resnet),
        ("cnn", GPU, "tuned", {"compile": True} | resnet),
        ("cnn", GPU, "reference", resnet),
    ]
    llama = {"model": "llama-1.1b", "batch_size": 8, "db": "x.db"}
    assert calls[4] == ("llm", GPU, "both", llama)
    assert calls[5] == (("mlp", "cnn"), "all", "both", {"quick": True, "db": "x.db"})
