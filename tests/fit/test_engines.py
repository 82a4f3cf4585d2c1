"""Serving engines' memory (transformers, vLLM, llama.cpp), the KV cache per format and
fit's band, pinned by literal values counted by hand (derivations beside each)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gpuscout.catalog import find_gpu
from gpuscout.errors import UnknownNameError, UsageError
from gpuscout.fit import FitRequest, estimate, fit_on, load_model
from gpuscout.fit.engines import llamacpp_compute_buffer, parse_engine, vllm_chunk

L8 = load_model("llama-3-8b")
GIB = 1024**3
MIB = 1024**2

# Llama 3 8B caches K and V for 32 layers x 8 KV heads x 128 dims: 65,536 elements per
# token, so 8,192 tokens hold 536,870,912 elements.
ELEMENTS_8K = 2 * 32 * 8 * 128 * 8192


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, ELEMENTS_8K * 2),  # bf16: 2 bytes = 1,073,741,824
        ({"dtype": "fp32"}, 2_147_483_648),  # an fp32 model caches fp32: 4 bytes
        ({"engine": "vllm", "kv_dtype": "fp8"}, 536_870_912),  # 1 byte
        ({"engine": "llama.cpp"}, 1_073_741_824),  # llama.cpp's default f16
        ({"engine": "llama.cpp", "kv_dtype": "q8_0"}, 570_425_344),  # 34 bytes per 32
        ({"engine": "llama.cpp", "kv_dtype": "q4_0"}, 301_989_888),  # 18 bytes per 32
    ],
)
def test_kv_cache_bytes_per_format(change: dict[str, Any], expected: int) -> None:
    req = dataclasses.replace(FitRequest(L8, mode="infer", seq_len=8192), **change)
    assert estimate(req).kv_cache_bytes == expected


def test_inference_terms_and_band_are_pinned() -> None:
    e = estimate(FitRequest(L8, mode="infer", seq_len=8192))
    assert e.weights_bytes == 16_060_522_496  # 8,030,261,248 parameters x 2 bytes
    assert e.kv_cache_bytes == 1_073_741_824
    assert e.overhead_bytes == 557_842_432  # 500 MiB CUDA context + 32 MiB cuBLAS workspace
    # One 8,192-token prefill: per token the residual (2 x 2 x 4096) plus the SwiGLU's
    # working set (3 x 2 x 14,336), 8 bytes of ids: 102,408 bytes; then the last
    # position's logits in bf16 and fp32 (6 x 128,256).
    assert e.activations_bytes == 8192 * 102_408 + 6 * 128_256 == 839_695_872
    assert e.total_bytes == 18_531_802_624
    # low: less 10% of the activations and 200 MiB of the context (300 MiB, not 500)
    assert e.low_bytes == 18_238_117_837
    # high: + 15% of the activations + 2 x 5% allocator margin on all but the overhead
    # + 524 MiB more context (1 GiB)
    assert e.high_bytes == 21_004_606_848


def test_vllm_takes_its_budget_and_turns_the_rest_into_kv_cache() -> None:
    m = dataclasses.replace(L8, max_seq_len=131_072)
    fit = fit_on(FitRequest(m, mode="infer", engine="vllm"), find_gpu("rtx-3090"))
    # 0.9 x 98.5% of 24 GiB
    assert fit.budget_bytes == round(0.9 * round(24 * GIB * 0.985))
    assert not fit.fits  # the model's whole 131,072-token context does not fit
    # what is left of the budget after weights (14.96 GiB), the profiled activations of a
    # 2,048-token chunk plus the sampler, and the cuBLAS workspace, at 128 KiB per token
    assert fit.max_seq_len is not None and 44_000 < fit.max_seq_len < 50_000
    smaller = fit_on(
        FitRequest(m, mode="infer", engine="vllm", gpu_memory_utilization=0.5),
        find_gpu("rtx-3090"),
    )
    assert smaller.max_seq_len is None  # 12 GiB cannot hold 15 GiB of weights


def test_vllm_chunk_follows_its_defaults() -> None:
    # vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults for `vllm serve`
    assert vllm_chunk(24 * GIB, "GeForce RTX 4090") == 2048
    assert vllm_chunk(80 * GIB, "H100 SXM5 80GB") == 8192
    assert vllm_chunk(80 * GIB, "A100 SXM4 80GB") == 2048


def test_llamacpp_compute_buffer_matches_its_log() -> None:
    # llama.cpp's log for a Llama 3 8B Q4_K_M at n_ctx 512, flash attention off:
    # "CUDA0 compute buffer size = 258.50 MiB" (tests/fit/fixtures/published.toml,
    # llamacpp-bllossom-llama3-8b-q4km-compute-buffer-512)
    buf = llamacpp_compute_buffer(
        hidden=4096, intermediate=14336, heads=32, vocab=128256, context=512, flash=False
    )
    assert buf.total == 258.50 * MIB


def test_llamacpp_offloads_what_fits_and_keeps_the_rest_in_ram() -> None:
    req = FitRequest(L8, mode="infer", engine="llama.cpp", dtype="q4_k_m", seq_len=8192)
    small = fit_on(req, find_gpu("rtx-4060-laptop"), usable_bytes=3 * GIB)
    assert small.gpu_layers is not None and 0 < small.gpu_layers < 32
    assert small.total_layers == 32 and not small.fits
    assert small.need_bytes <= 3 * GIB
    roomy = fit_on(req, find_gpu("rtx-4090"))
    assert roomy.fits and roomy.gpu_layers == 32
    # the token embedding stays in system RAM: 128,256 x 4096 weights at Q4_K's 4.5 bits
    assert roomy.host_bytes == pytest.approx(128_256 * 4096 * 4.5 / 8, rel=1e-6)
    assert small.host_bytes > roomy.host_bytes
    given = fit_on(dataclasses.replace(req, gpu_layers=10), find_gpu("rtx-4090"))
    assert given.gpu_layers == 10 and not given.fits


def test_every_answer_says_what_it_assumed() -> None:
    vllm = estimate(FitRequest(L8, mode="infer", engine="vllm", seq_len=4096))
    assert "vLLM, gpu_memory_utilization 0.90" in vllm.assumptions
    assert "prefill in chunks of 2,048 tokens" in vllm.assumptions
    cpp = estimate(FitRequest(L8, mode="infer", engine="ollama", kv_dtype="q8_0"))
    assert "llama.cpp" in cpp.assumptions and "KV cache q8_0" in cpp.assumptions
    assert "4,096-token context" in cpp.assumptions  # Ollama's default num_ctx
    hf = estimate(FitRequest(L8, mode="infer", flash_attention=False, seq_len=1024))
    assert "eager attention" in hf.assumptions and "prefilled at once" in hf.assumptions


def test_eager_attention_keeps_every_heads_scores() -> None:
    sdpa = estimate(FitRequest(L8, mode="infer", seq_len=4096))
    eager = estimate(FitRequest(L8, mode="infer", seq_len=4096, flash_attention=False))
    # 32 heads x 4096 x 4096 scores in fp32 and bf16 (6 bytes each)
    assert eager.activations_bytes - sdpa.activations_bytes == 32 * 4096 * 4096 * 6


def test_engines_refuse_what_they_cannot_do() -> None:
    with pytest.raises(UsageError, match="serves models; training runs in PyTorch"):
        estimate(FitRequest(L8, engine="vllm"))
    with pytest.raises(UsageError, match="has no q4_0 KV cache"):
        estimate(FitRequest(L8, mode="infer", engine="vllm", kv_dtype="q4_0"))
    with pytest.raises(UsageError, match="--gpu-layers"):
        estimate(FitRequest(L8, mode="infer", gpu_layers=3))
    with pytest.raises(UnknownNameError) as exc:
        parse_engine("vlm")
    assert exc.value.suggestions == ["vllm"]
    assert parse_engine("Ollama") == "llama.cpp"


def test_a_context_past_the_models_limit_is_a_warning() -> None:
    e = estimate(FitRequest(L8, mode="infer", seq_len=16_384))
    assert e.warnings == (
        "--seq-len 16,384 is longer than Llama 3 8B's 8,192-token context: past it the "
        "model was not trained (RoPE scaling changes that)",
    )
    assert estimate(FitRequest(L8, mode="infer", seq_len=8192)).warnings == ()


def test_apple_silicon_gives_the_gpu_three_quarters_of_unified_memory() -> None:
    mac = find_gpu("m3 max")
    fit = fit_on(FitRequest(L8, mode="infer", seq_len=1024), mac)
    # Metal's recommendedMaxWorkingSetSize: about 75% of the memory by default
    assert fit.usable_bytes == round(mac.memory_bytes * 0.75)
