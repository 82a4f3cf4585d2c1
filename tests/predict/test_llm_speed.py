"""predict_llm_speed: the bytes a token reads, counted by hand; llama.cpp's partial offload
by hand; and the held-out error on the published llama.cpp speeds
(tests/predict/fixtures/llm_speed_published.toml)."""

from __future__ import annotations

import pytest

from gpuscout.catalog import find_gpu
from gpuscout.fit import load_model
from gpuscout.fit.spec import ModelSpec, finish_spec
from gpuscout.predict.llm_speed import (
    LLAMACPP_CPU,
    LLAMACPP_GDDR,
    cpu_device,
    efficiency_for,
    gpu_device,
    infer_request,
    predict_llm_speed,
    token_cost,
)
from gpuscout.validate.llm_speed_published import (
    calibration_devices,
    compare,
    fit,
    load_rows,
    median_abs,
)

# Llama 2 7B in llama.cpp's Q4_0 mix: every block linear in Q4_0 (18 bytes per 32
# weights), the output layer in Q6_K (210 bytes per 256), norms in F32; the token
# embedding (Q4_0, 73,728,000 bytes) is one row per token and not counted. With it the
# file is 3,825,065,984 bytes = 3.56 GiB, llama-bench's "3.56 GiB".
LINEARS = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)  # 6,476,005,376
Q4_0_BYTES = LINEARS * 18 // 32 + 32000 * 4096 * 210 // 256 + (2 * 32 * 4096 + 4096) * 4
LAYER_BYTES = (Q4_0_BYTES - 32000 * 4096 * 210 // 256 - 2 * 4096) / 32  # norms go with blocks


def test_llama2_7b_q4_0_bytes_per_token() -> None:
    assert Q4_0_BYTES == 3_751_337_984
    cost = token_cost(infer_request(load_model("llama-2-7b"), "q4_0"), 0)
    assert cost.total_bytes == pytest.approx(Q4_0_BYTES, rel=1e-9)
    # the KV cache read at 4,096 tokens: 2 x 32 layers x 4,096 x 4,096 x 2 bytes (f16)
    at_4k = token_cost(infer_request(load_model("llama-2-7b"), "q4_0"), 4096)
    assert at_4k.total_bytes - cost.total_bytes == pytest.approx(2 * 32 * 4096 * 4096 * 2)


def _tiny_moe() -> ModelSpec:
    return finish_spec(
        {
            "id": "tiny-moe", "name": "tiny MoE", "family": "moe-decoder", "source": "test",
            "layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "head_dim": 16,
            "intermediate": 32, "vocab": 100, "experts": 8, "experts_per_token": 2,
        }
    )  # fmt: skip


def test_moe_reads_only_its_routed_experts() -> None:
    spec = _tiny_moe()
    # per block in bf16 (2 bytes): q, k, v, o 64x64 + 64x32 + 64x32 + 64x64 = 12,288;
    # 2 of 8 experts x 3 x 64 x 32 = 12,288; router 64 x 8 and 2 norms of 64 = 640.
    block = 2 * (12_288 + 12_288 + 640)
    head, final_norm = 2 * 100 * 64, 2 * 64
    cost = token_cost(infer_request(spec, "bf16", "vllm"), 0)
    assert cost.total_bytes == pytest.approx(2 * block + head + final_norm)
    # prefill: 2 FLOPs per active weight (2 blocks x 24,576 linears + the 6,400 head)
    assert cost.flops == pytest.approx(2 * (2 * 24_576 + 6_400))
    # the cache at 10 tokens: 2 (k, v) x 2 heads x 16 x 2 layers x 10 x 2 bytes
    with_kv = token_cost(infer_request(spec, "bf16", "vllm", 10), 10)
    assert with_kv.total_bytes - cost.total_bytes == pytest.approx(2 * 2 * 16 * 2 * 10 * 2)


def test_partial_offload_adds_the_host_layers_at_ram_bandwidth() -> None:
    req = infer_request(load_model("llama-2-7b"), "q4_0", "llama.cpp", 0)
    gpu = gpu_device(find_gpu("rtx-3060-12gb"))
    host = cpu_device(bandwidth_gbs=80.0)
    speed = predict_llm_speed(req, gpu, context=0, gpu_layers=16, host=host)
    head = 32000 * 4096 * 210 / 256 + 2 * 4096  # the output layer stays with the host's last block
    on_gpu = 16 * LAYER_BYTES / (360e9 * LLAMACPP_GDDR.decode) + 16 * LLAMACPP_GDDR.layer_s
    on_host = (16 * LAYER_BYTES + head) / (80e9 * LLAMACPP_CPU.decode)
    assert 1 / speed.decode_tokens_per_s == pytest.approx(on_gpu + on_host, rel=1e-9)
    assert (speed.gpu_layers, speed.total_layers) == (16, 32)
    assert any("16 of 32 layers in system RAM at 80 GB/s" in n for n in speed.notes)
    whole = predict_llm_speed(req, gpu, context=0)
    assert 1 / whole.decode_tokens_per_s == pytest.approx(
        Q4_0_BYTES / (360e9 * LLAMACPP_GDDR.decode) + 32 * LLAMACPP_GDDR.layer_s, rel=1e-9
    )


def test_quantized_llama_cpp_prefill_runs_at_the_int8_rate_and_apple_at_fp32() -> None:
    req = infer_request(load_model("llama-2-7b"), "q4_0", "llama.cpp", 0)
    rtx = predict_llm_speed(req, gpu_device(find_gpu("rtx-4090")), context=0)
    flops = token_cost(req, 0).flops
    assert rtx.prefill_tokens_per_s == pytest.approx(660.6e12 * LLAMACPP_GDDR.prefill / flops)
    mac = gpu_device(find_gpu("apple-m4-max-40c"))
    assert (mac.kind, mac.tflops_16) == ("apple", 17.2)
    assert efficiency_for("vllm", "hbm") == efficiency_for("llama.cpp", "hbm")


ROWS = load_rows()


def test_the_calibration_rows_are_the_rules() -> None:
    assert calibration_devices(ROWS) == {
        "gddr": ("rtx-3060-12gb", "rtx-pro-6000-blackwell"),
        "hbm": ("v100-pcie-32gb", "h100-sxm5-80gb"),
        "apple": ("Apple M1 (7-core GPU)", "Apple M3 Ultra (80-core GPU)"),
        "cpu": ("Intel Core i9-13900K, DDR5-6400 (CPU, 8 threads)",),
    }


def test_the_constants_are_the_fit_on_the_calibration_rows() -> None:
    for kind, fitted in fit(ROWS).items():
        used = efficiency_for("llama.cpp", kind)
        assert used.decode == pytest.approx(fitted.decode, rel=2e-3)
        assert used.layer_s == pytest.approx(fitted.layer_s, rel=2e-3, abs=1e-9)
        if fitted.prefill:  # the CPU has no prompt row: its prefill is an assumption
            assert used.prefill == pytest.approx(fitted.prefill, rel=2e-3)


def test_held_out_median_error_meets_the_goal() -> None:
    held = [c for c in compare(ROWS) if not c.calibration]
    assert len(held) == 181
    # docs/predict-published.md: 5.5% over all held-out rows (goal: 20%)
    assert median_abs([c.error for c in held]) == pytest.approx(0.055, abs=0.001)
    assert median_abs([c.error for c in held]) <= 0.20
