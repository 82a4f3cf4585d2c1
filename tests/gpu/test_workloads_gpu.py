"""Workloads on a real CUDA GPU: the tuned paths (CUDA graphs, bf16, compile, static KV
cache) compute what the tutorial-style paths compute. No speed is asserted."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

from gpuscout.report.verdict import verdict  # noqa: E402
from gpuscout.workloads import cnn, encoder, llm, mlp, run_workloads  # noqa: E402
from gpuscout.workloads.base import WorkloadConfig  # noqa: E402
from gpuscout.workloads.instruments import Instruments, nvml_reader_for  # noqa: E402
from helpers.token_margins import (  # noqa: E402
    check_greedy_tokens,
    llama_forced,
    llama_output_rows,
    unit_roundoff,
)

DEV = torch.device("cuda:0")


@pytest.fixture(autouse=True)
def _offline_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GPUSCOUT_OFFLINE", "1")


def cfg(name: str, impl: str, **kw: object) -> WorkloadConfig:
    return WorkloadConfig(name, "cuda:0", impl, **kw)  # type: ignore[arg-type]


def test_mlp_cuda_graph_training_matches_the_tutorial_loop() -> None:
    out = {}
    # 2,100 samples: 65 full batches (one 64-step graph, one 1-step graph replay) and a
    # short last batch run eagerly: every path of the tuned epoch is exercised.
    for impl in ("reference", "tuned"):
        with Instruments(DEV) as inst:
            out[impl] = mlp.run(cfg("mlp", impl, epochs=2, limit_samples=2100), inst)[0]["extra"]
    assert out["tuned"]["cuda_graphs"] is True
    assert abs(out["tuned"]["accuracy"] - out["reference"]["accuracy"]) <= 0.02
    assert out["tuned"]["loss"] == pytest.approx(out["reference"]["loss"], rel=2e-2)
    assert out["tuned"]["epoch_losses"][1] < out["tuned"]["epoch_losses"][0]
    assert out["tuned"]["peak_mem_bytes"] > 0


def test_mlp_graph_capture_leaves_the_model_untouched() -> None:
    wl = mlp.build(cfg("mlp", "tuned", limit_samples=512), DEV)
    before = [p.detach().clone() for p in wl.model.parameters()]
    wl._capture((4, 1))
    for p, b in zip(wl.model.parameters(), before, strict=True):
        assert torch.equal(p, b)
    assert all(float(v.abs().sum()) == 0 for s in wl.opt.state.values() for v in s.values())


def test_mlp_cuda_graph_epochs_train_exactly_as_the_same_steps_run_eagerly() -> None:
    """Graphs vs the very same tuned steps launched one by one (the fused Adam in both):
    any difference is the capture's (a grad rebound, a step count kept on the host)."""
    c = cfg("mlp", "tuned", limit_samples=2100)
    graphed = mlp.build(c, DEV)
    eager = mlp.build(c.replace(options={"cuda_graphs": False}), DEV)
    assert graphed.graphs and not eager.graphs
    orders = mlp.epoch_orders(2100, 2, 0)
    got = [graphed.train_epoch(o) for o in orders]
    want = [eager.train_epoch(o) for o in orders]
    assert sorted(graphed._captured) == [1, 64] and graphed.capture_s > 0
    assert got == pytest.approx(want, rel=1e-4)
    for a, b in zip(graphed.model.parameters(), eager.model.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_the_dtype_policy_follows_the_compute_capability() -> None:
    from gpuscout.workloads.base import amp_dtype

    major, _ = torch.cuda.get_device_capability(DEV)
    want = torch.bfloat16 if major >= 8 else None
    assert amp_dtype(cfg("cnn", "tuned")) == want


@pytest.mark.parametrize("compiled", [False, True])
def test_cnn_bf16_channels_last_matches_fp32_reference(compiled: bool) -> None:
    kw = {
        "model": "resnet-tiny",
        "batch_size": 8,
        "options": {"image_size": 64},
        "compile": compiled,
    }
    losses = {}
    for impl in ("reference", "tuned"):
        wl = cnn.build(cfg("cnn", impl, **kw), DEV)
        losses[impl] = [float(wl.step(wl.make_batch())) for _ in range(5)]
    assert wl.channels_last and wl.amp == torch.bfloat16 and wl.fused
    assert losses["tuned"] == pytest.approx(losses["reference"], rel=0.05)  # bf16 vs fp32


def test_encoder_sdpa_bf16_matches_fp32_reference() -> None:
    kw = {"model": "bert-tiny", "batch_size": 8, "seq_len": 64, "compile": False}
    losses = {}
    for impl in ("reference", "tuned"):
        wl = encoder.build(cfg("encoder", impl, **kw), DEV)
        losses[impl] = [float(wl.step(wl.make_batch())) for _ in range(4)]
    assert losses["tuned"] == pytest.approx(losses["reference"], rel=0.05)


def _margins(ref: Any, prompt: Any, want: Any, got: Any, dtype: Any) -> list[str]:
    """Token differences from the fp32 reference beyond what rounding explains."""
    model, s = ref.model, ref.model.s
    return check_greedy_tokens(
        want,
        got,
        prompt,
        llama_forced(model),
        llama_output_rows(model),
        u=unit_roundoff(torch.float32) + unit_roundoff(dtype),
        layers=s.layers,
        longest=max(s.dim, s.ffn, prompt.shape[1] + want.shape[1]),
    )


@pytest.mark.parametrize("compiled", [False, True])
def test_llm_tuned_decoding_generates_the_reference_tokens(compiled: bool) -> None:
    """fp32 on both sides, but other kernels (SDPA, inductor's): a token may differ only
    at a near-tie of the reference's logits (tests/helpers/token_margins.py)."""
    kw = {
        "model": "llama-tiny",
        "seq_len": 16,
        "compile": compiled,
        "options": {"new_tokens": 12, "dtype": "fp32"},
    }
    for b in (1, 4):
        ref, prompt = llm.build(cfg("llm", "reference", **kw), DEV, b)
        tuned, _ = llm.build(cfg("llm", "tuned", **kw), DEV, b)
        want, _, _ = ref.generate(prompt)
        first, _, _ = tuned.generate(prompt)  # compiles or captures
        again, _, _ = tuned.generate(prompt)  # replays
        assert torch.equal(again, first)  # one program, run twice: bit for bit
        assert _margins(ref, prompt, want, first, torch.float32) == []
        assert tuned.mode == ("compile" if compiled else "cuda_graph") or tuned.compile_error


def test_llm_bf16_decoding_differs_from_fp32_only_at_near_ties() -> None:
    """The tuned program as a bf16 GPU runs it, against the fp32 reference on the same
    weights rounded to bf16: differences only within bf16's rounding bound."""
    if torch.cuda.get_device_capability(DEV) < (8, 0):
        pytest.skip("bf16 needs compute capability 8.0")
    kw = {"model": "llama-tiny", "seq_len": 16, "options": {"new_tokens": 12}}
    ref, prompt = llm.build(cfg("llm", "reference", **kw), DEV, 4)
    model = copy.deepcopy(ref.model)
    for p in model.parameters():  # the weights only: the rotary tables stay fp32, as built
        p.data = p.data.to(torch.bfloat16)
    tuned, _ = llm.build(cfg("llm", "tuned", **kw), DEV, 4, model=model)
    assert tuned.model.tok.weight.dtype == torch.bfloat16
    want, _, _ = ref.generate(prompt)
    got, _, _ = tuned.generate(prompt)
    assert _margins(ref, prompt, want, got, torch.bfloat16) == []


def test_llm_compiled_decode_runs_in_cuda_graphs_without_skips() -> None:
    """mode="reduce-overhead" with the static cache's in-place writes: inductor must keep
    its CUDA graphs (a skip means a launch-bound decode; llm.run then falls back)."""
    kw = {"model": "llama-tiny", "seq_len": 16, "options": {"new_tokens": 12}}
    tuned, prompt = llm.build(cfg("llm", "tuned", **kw), DEV, 1)
    assert tuned.mode == "compile"
    before = llm.cudagraph_skips()
    first, _, _ = tuned.generate(prompt)
    again, _, _ = tuned.generate(prompt)
    assert tuned.mode == "compile", tuned.compile_error
    assert llm.cudagraph_skips() == before
    assert torch.equal(first, again)


def test_quick_suite_on_the_gpu_with_energy() -> None:
    results = run_workloads(
        ["mlp", "cnn"], "cuda:0", "both", quick=True, options={"min_time_s": 0.2}
    )
    assert all(r.status == "ok" for r in results), [(r.name, r.error) for r in results]
    for r in results:
        assert r.extra["peak_mem_bytes"] > 0
        assert r.extra["device_name"]
    with nvml_reader_for(0) as reader:
        if reader is not None and reader.energy_mj() is not None:
            assert all(r.extra["energy_j"] is not None for r in results)
    assert "on mlp" in verdict(results)
