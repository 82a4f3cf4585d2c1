"""Weight formats: bits per weight from each format's block layout (worked out by hand
here from the struct definitions, not read back from the code), which tensors stay
16-bit, llama.cpp's per-tensor mixes against llama.cpp's own sizes, and config.json
quantization blocks copied from real checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gpuscout.errors import UnknownNameError
from gpuscout.fit.families import read_hf_config
from gpuscout.fit.models import find_model
from gpuscout.fit.quant import (
    KV_DTYPES,
    format_from_hf_config,
    parse_format,
    parse_kv_dtype,
    weight_bytes,
)
from gpuscout.fit.spec import ModelSpec, count_params, finish_spec, param_groups


def _llama(**over: object) -> ModelSpec:
    """A small Llama-shaped decoder whose bytes can be counted by hand."""
    values: dict[str, object] = {
        "id": "tiny",
        "name": "tiny",
        "family": "decoder",
        "source": "test",
        "layers": 8,
        "hidden": 256,
        "heads": 4,
        "kv_heads": 1,
        "intermediate": 512,
        "vocab": 1000,
    }
    return finish_spec(values | over)


# -- bits per weight from the block layouts (ggml-common.h's block structs) -------------


@pytest.mark.parametrize(
    ("name", "bits"),
    [
        # block_q4_K: fp16 d + fp16 dmin + 12 bytes of 6-bit scales + 128 bytes of nibbles
        # = 144 bytes per 256 weights
        ("q4_k", 144 * 8 / 256),
        # block_q6_K: 128 bytes low bits + 64 high bits + 16 int8 scales + fp16 d = 210 / 256
        ("q6_k", 210 * 8 / 256),
        # block_q8_0: fp16 d + 32 int8 = 34 bytes / 32
        ("q8_0", 34 * 8 / 32),
        # block_q4_0: fp16 d + 16 bytes of nibbles = 18 / 32
        ("q4_0", 18 * 8 / 32),
        # block_iq4_xs: fp16 d + uint16 scales_h + 4 bytes scales_l + 128 bytes = 136 / 256
        ("iq4_xs", 136 * 8 / 256),
        # block_q2_K: 16 bytes scales + 64 bytes of 2-bit codes + 2 fp16 = 84 / 256
        ("q2_k", 84 * 8 / 256),
        # block_q5_K: 2 fp16 + 12 scales + 32 high bits + 128 low nibbles = 176 / 256
        ("q5_k", 176 * 8 / 256),
        # block_tq1_0: 48 + 4 bytes of base-3 codes + fp16 d = 54 / 256
        ("tq1_0", 54 * 8 / 256),
    ],
)
def test_gguf_bits_per_weight_follow_the_block_layout(name: str, bits: float) -> None:
    assert parse_format(name).linear_bits == pytest.approx(bits)


def test_bitsandbytes_4bit_with_and_without_double_quantization() -> None:
    # block of 64 weights: 4-bit codes + an fp32 absmax (QLoRA paper, section 2)
    assert parse_format("nf4").linear_bits == pytest.approx(4 + 32 / 64)
    assert parse_format("fp4").linear_bits == pytest.approx(4.5)
    # double quantization: 8-bit absmax + one fp32 constant per 256 absmax
    assert parse_format("nf4-dq").linear_bits == pytest.approx(4 + 8 / 64 + 32 / (64 * 256))
    assert parse_format("qlora").name == "nf4-dq"
    nf4 = parse_format("nf4")
    assert (nf4.embedding_bits, nf4.head_bits, nf4.other_bits) == (16, 16, 16)
    assert not nf4.trainable


def test_llm_int8_is_int8_plus_an_fp32_scale_per_row() -> None:
    fmt = parse_format("int8")
    assert (fmt.linear_bits, fmt.column_bytes) == (8, 4)


@pytest.mark.parametrize(
    ("name", "canonical", "bits", "row_bytes"),
    [
        # AWQ: 4-bit codes; per 128 inputs, each output has an fp16 scale and a 4-bit zero
        ("awq", "awq-4bit-g128", 4 + (16 + 4) / 128, 0),
        ("AWQ-4bit-g64", "awq-4bit-g64", 4 + (16 + 4) / 64, 0),
        # GPTQ: the same, with zeros packed at the code width, plus g_idx (int32 per input)
        ("gptq", "gptq-4bit-g128", 4 + (16 + 4) / 128, 4),
        ("gptq-8bit-g128", "gptq-8bit-g128", 8 + (16 + 8) / 128, 4),
        ("gptq-3bit-g32", "gptq-3bit-g32", 3 + (16 + 3) / 32, 4),
        ("int4", "awq-4bit-g128", 4 + 20 / 128, 0),  # the planner's old int4
    ],
)
def test_gptq_and_awq_count_scales_and_zeros(
    name: str, canonical: str, bits: float, row_bytes: float
) -> None:
    fmt = parse_format(name)
    assert (fmt.name, fmt.row_bytes) == (canonical, row_bytes)
    assert fmt.linear_bits == pytest.approx(bits)


def test_per_channel_gptq_has_one_scale_and_zero_per_output() -> None:
    fmt = parse_format("gptq-4bit-g-1")
    assert (fmt.name, fmt.linear_bits, fmt.column_bytes) == ("gptq-4bit-channel", 4, 20 / 8)


def test_exl2_is_its_average_with_a_6_bit_head() -> None:
    fmt = parse_format("exl2-4.65")
    assert (fmt.linear_bits, fmt.head_bits, fmt.embedding_bits) == (4.65, 6, 16)
    assert parse_format("exl2-6.0bpw-h8").name == "exl2-6-h8"


def test_fp8_keeps_embedding_and_head_16_bit() -> None:
    fmt = parse_format("fp8_e4m3")
    assert (fmt.name, fmt.linear_bits, fmt.embedding_bits, fmt.head_bits) == ("fp8", 8, 16, 16)


@pytest.mark.parametrize("name", ["q4_k_x", "gptq-5bit", "exl2-9.5", "awq-4bit-g0", "nf5"])
def test_unknown_formats_name_close_ones(name: str) -> None:
    with pytest.raises(UnknownNameError) as info:
        parse_format(name)
    assert "weight format" in info.value.message
    assert info.value.hint


def test_a_near_miss_suggests_the_mix() -> None:
    with pytest.raises(UnknownNameError) as info:
        parse_format("q4_k_x")
    assert "q4_k_m" in info.value.suggestions


# -- bytes ------------------------------------------------------------------------------


def test_float_formats_are_bytes_per_parameter() -> None:
    spec = _llama()
    n = count_params(spec)
    assert weight_bytes(spec, parse_format("bf16")) == 2 * n
    assert weight_bytes(spec, parse_format("fp32")) == 4 * n


CONFIGS = sorted((Path(__file__).parent / "fixtures" / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_family_in_16_bit_is_two_bytes_per_parameter(path: Path) -> None:
    """MLA, shared and routed experts, dense first layers, vision towers: whatever a
    family counts, a float format holds every parameter at its width, and a 4-bit one
    less than half of that."""
    spec = read_hf_config(path)
    n = count_params(spec)
    assert weight_bytes(spec, parse_format("bf16")) == 2 * n
    assert weight_bytes(spec, parse_format("fp32")) == 4 * n
    assert weight_bytes(spec, parse_format("q4_k_m")) < weight_bytes(spec, parse_format("q8_0"))
    assert weight_bytes(spec, parse_format("awq")) < n


def test_awq_quantizes_the_linears_and_leaves_the_rest_16_bit() -> None:
    spec = _llama()
    g = param_groups(spec)
    # 8 layers x (q 256x256, k 256x64, v 256x64, o 256x256, gate/up 256x512, down 512x256)
    linear = 8 * (2 * 256 * 256 + 2 * 256 * 64 + 3 * 256 * 512)
    assert g.linear == linear
    expected = linear * (4 + 20 / 128) / 8 + 2 * (1000 * 256 * 2 + 17 * 256)
    assert weight_bytes(spec, parse_format("awq")) == pytest.approx(expected)


def test_int8_adds_an_fp32_scale_per_output_row() -> None:
    spec = _llama(layers=1)
    outputs = 256 + 64 + 64 + 256 + 512 + 512 + 256  # q k v o gate up down
    linear = 2 * 256 * 256 + 2 * 256 * 64 + 3 * 256 * 512
    rest = 1000 * 256 * 2 + 3 * 256  # embedding, untied head, three norms
    assert weight_bytes(spec, parse_format("int8")) == linear + 4 * outputs + 2 * rest


def test_q4_k_m_by_hand_on_a_small_llama() -> None:
    """8 layers: llama.cpp's use_more_bits picks layers 0, 3, 6 and 7 (first eighth,
    last eighth, every third between) for Q6_K attn_v and ffn_down; the rest Q4_K (144
    bytes per 256 weights), output Q6_K (210 / 256), token_embd Q4_K, norms F32."""
    q4k, q6k = 144 / 256, 210 / 256
    base = (2 * 256 * 256 + 2 * 256 * 64 + 3 * 256 * 512) * q4k  # every linear Q4_K
    upgrade = 256 * 64 * (q6k - q4k) + 512 * 256 * (q6k - q4k)  # attn_v and ffn_down
    assert base == 313_344 and upgrade == 38_016
    total = 8 * base + 4 * upgrade + 1000 * 256 * q4k + 1000 * 256 * q6k + 17 * 256 * 4
    assert total == 3_030_224
    spec = _llama()
    fmt = parse_format("Q4_K_M")
    assert weight_bytes(spec, fmt) == total
    # two tensor-parallel ranks split every matrix and each keeps the norms
    assert weight_bytes(spec, fmt, tp=2) == (total - 17 * 256 * 4) / 2 + 17 * 256 * 4


def test_rows_that_do_not_split_into_blocks_fall_back() -> None:
    """hidden 64 is not a multiple of Q4_K's 256: llama.cpp's tensor_type_fallback makes
    Q4_K -> Q5_0 (22 bytes / 32) and Q6_K -> Q8_0 (34 / 32); the output layer is Q8_0.
    Two layers: use_more_bits picks layer 1 only (7 * 2 // 8 = 1)."""
    spec = _llama(layers=2, hidden=64, heads=4, kv_heads=4, intermediate=128, vocab=32)
    q50, q80 = 22 / 32, 34 / 32
    layer0 = (4 * 64 * 64 + 3 * 64 * 128) * q50
    layer1 = layer0 + 64 * 64 * (q80 - q50) + 128 * 64 * (q80 - q50)
    assert (layer0, layer1) == (28_160, 32_768)
    total = layer0 + layer1 + 32 * 64 * q50 + 32 * 64 * q80 + 5 * 64 * 4
    assert weight_bytes(spec, parse_format("q4_k_m")) == total == 65_792


LLAMA31_8B_BPW = {
    # llama.cpp tools/quantize/README.md, "meta-llama/Llama-3.1-8B" table, bits/weight:
    # https://github.com/ggml-org/llama.cpp/blob/master/tools/quantize/README.md
    # (model size over 8.03B parameters; Q4_K_M: "4.8944", 4.58 GiB)
    "IQ1_S": 2.0042,
    "IQ1_M": 2.1460,
    "IQ2_XXS": 2.3824,
    "IQ2_XS": 2.5882,
    "IQ2_S": 2.7403,
    "IQ2_M": 2.9294,
    "IQ3_XXS": 3.2548,
    "IQ3_XS": 3.4977,
    "IQ3_S": 3.6606,
    "IQ3_M": 3.7628,
    "IQ4_XS": 4.4597,
    "IQ4_NL": 4.6818,
    "Q2_K_S": 2.9697,
    "Q2_K": 3.1593,
    "Q3_K_S": 3.6429,
    "Q3_K_L": 4.2979,
    "Q4_K_S": 4.6672,
    "Q4_K_M": 4.8944,
    "Q5_K_S": 5.5704,
    "Q5_K_M": 5.7036,
    "Q6_K": 6.5633,
    "Q8_0": 8.5008,
}


@pytest.mark.parametrize(("mix", "bpw"), sorted(LLAMA31_8B_BPW.items()))
def test_llama_cpp_mixes_match_llama_cpp_sizes(mix: str, bpw: float) -> None:
    spec = find_model("llama-3-8b")  # the same shape as Llama 3.1 8B
    got = 8 * weight_bytes(spec, parse_format(mix)) / count_params(spec)
    assert got == pytest.approx(bpw, abs=0.00006)  # the table's four decimals


@pytest.mark.parametrize(
    ("model", "mix", "gib", "bpw"),
    [
        # llama.cpp's "llm_load_print_meta: model size = 4.58 GiB (4.89 BPW)" loading a
        # Llama 3 8B Q4_K_M (tests/fit/fixtures/published.toml, the Bllossom-8B log)
        ("llama-3-8b", "q4_k_m", 4.58, 4.89),
        # "model size = 37.22 GiB (4.53 BPW)", Llama 3.1 70B Q4_0:
        # https://github.com/ollama/ollama/pull/6279
        ("llama-3-70b", "q4_0", 37.22, 4.53),
        # "model size = 4.78 GiB (5.67 BPW)", Mistral 7B Instruct v0.2 Q5_K_M:
        # https://github.com/ggml-org/llama.cpp/issues/5619
        ("mistral-7b", "q5_k_m", 4.78, 5.67),
        # "model size = 4.36 GiB (4.91 BPW)", Qwen2.5 Coder 7B Instruct Q4_K_M (the
        # Qwen2.5 7B shape): https://github.com/ollama/ollama/issues/8509
        ("qwen2.5-7b", "q4_k_m", 4.36, 4.91),
    ],
)
def test_mixes_match_the_sizes_llama_cpp_prints(
    model: str, mix: str, gib: float, bpw: float
) -> None:
    spec = find_model(model)
    size = weight_bytes(spec, parse_format(mix))
    assert size / 2**30 == pytest.approx(gib, abs=0.005)
    assert 8 * size / count_params(spec) == pytest.approx(bpw, abs=0.005)


def test_stored_bytes_are_used_for_the_format_they_were_read_in() -> None:
    spec = dataclasses.replace(_llama(), quant="q4_k_m", stored_bytes=3_000_000)
    kept = 17 * 256 * 4  # F32 norms: every rank holds them
    assert weight_bytes(spec, parse_format("q4_k_m")) == 3_000_000
    assert weight_bytes(spec, parse_format("q4_k_m"), tp=2) == (3_000_000 - kept) / 2 + kept
    assert weight_bytes(spec, parse_format("q8_0")) != 3_000_000  # another format: the shape


# -- KV cache ---------------------------------------------------------------------------


def test_kv_dtypes() -> None:
    assert KV_DTYPES["q8_0"] == 34 / 32 and KV_DTYPES["q4_0"] == 18 / 32
    assert (KV_DTYPES["fp8"], KV_DTYPES["bf16"], KV_DTYPES["fp32"]) == (1, 2, 4)
    assert parse_kv_dtype("fp8_e5m2") == "fp8"
    assert parse_kv_dtype("F16") == "fp16"
    assert parse_kv_dtype("q8_0") == "q8_0"
    with pytest.raises(UnknownNameError) as info:
        parse_kv_dtype("q9_0")
    assert "q8_0" in info.value.suggestions


# -- config.json ------------------------------------------------------------------------

# TheBloke/zephyr-7B-alpha-AWQ config.json (as quoted in transformers' AWQ docs)
AWQ = {"quant_method": "awq", "zero_point": True, "group_size": 128, "bits": 4, "version": "gemm"}
# TheBloke/Llama-2-7B-Chat-GPTQ config.json
GPTQ = {
    "bits": 4,
    "group_size": 128,
    "damp_percent": 0.01,
    "desc_act": False,
    "sym": True,
    "true_sequential": True,
    "model_name_or_path": None,
    "model_file_base_name": "model",
    "quant_method": "gptq",
}
# unsloth/llama-3-8b-bnb-4bit config.json (transformers' BitsAndBytesConfig.to_dict)
BNB_4BIT = {
    "bnb_4bit_compute_dtype": "bfloat16",
    "bnb_4bit_quant_type": "nf4",
    "bnb_4bit_use_double_quant": True,
    "llm_int8_enable_fp32_cpu_offload": False,
    "llm_int8_has_fp16_weight": False,
    "llm_int8_skip_modules": None,
    "llm_int8_threshold": 6.0,
    "load_in_4bit": True,
    "load_in_8bit": False,
    "quant_method": "bitsandbytes",
}
# neuralmagic/Meta-Llama-3-8B-Instruct-FP8 config.json (AutoFP8)
FP8 = {"activation_scheme": "static", "ignored_layers": ["lm_head"], "quant_method": "fp8"}
# deepseek-ai/DeepSeek-V3 config.json
FP8_BLOCK = {
    "activation_scheme": "dynamic",
    "fmt": "e4m3",
    "quant_method": "fp8",
    "weight_block_size": [128, 128],
}
# neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8-dynamic config.json (llm-compressor)
COMPRESSED_FP8 = {
    "config_groups": {
        "group_0": {
            "input_activations": {
                "dynamic": True,
                "num_bits": 8,
                "strategy": "token",
                "symmetric": True,
                "type": "float",
            },
            "output_activations": None,
            "targets": ["Linear"],
            "weights": {
                "dynamic": False,
                "num_bits": 8,
                "observer": "minmax",
                "strategy": "channel",
                "symmetric": True,
                "type": "float",
            },
        }
    },
    "format": "float-quantized",
    "ignore": ["lm_head"],
    "quant_method": "compressed-tensors",
    "quantization_status": "compressed",
}
# turboderp's exllamav2 quants (e.g. turboderp/Llama-3-8B-Instruct-exl2, 4.0bpw branch)
EXL2 = {
    "quant_method": "exl2",
    "version": "0.0.19",
    "bits": 4.0,
    "head_bits": 6,
    "calibration": {"rows": 100, "length": 2048, "dataset": "(default)"},
}


@pytest.mark.parametrize(
    ("qc", "name"),
    [
        (AWQ, "awq-4bit-g128"),
        (GPTQ, "gptq-4bit-g128"),
        (GPTQ | {"bits": 8, "group_size": -1}, "gptq-8bit-channel"),
        (BNB_4BIT, "nf4-dq"),
        (BNB_4BIT | {"bnb_4bit_use_double_quant": False}, "nf4"),
        (BNB_4BIT | {"load_in_4bit": False, "load_in_8bit": True}, "int8"),
        (FP8, "fp8"),
        (FP8_BLOCK, "fp8-block128"),
        (COMPRESSED_FP8, "fp8-channel"),
        (EXL2, "exl2-4"),
        (EXL2 | {"bits": 6.5, "head_bits": 8}, "exl2-6.5-h8"),
        ({"quant_method": "hqq", "nbits": 4}, None),
    ],
)
def test_format_from_quantization_config(qc: dict[str, object], name: str | None) -> None:
    got = format_from_hf_config({"model_type": "llama", "quantization_config": qc})
    assert got == name
    if name is not None:
        assert parse_format(name).name == name


def test_format_from_torch_dtype() -> None:
    assert format_from_hf_config({"torch_dtype": "bfloat16"}) == "bf16"
    assert format_from_hf_config({"dtype": "float16"}) == "fp16"
    assert format_from_hf_config({"torch_dtype": "float32"}) == "fp32"
    assert format_from_hf_config({"model_type": "llama"}) is None
