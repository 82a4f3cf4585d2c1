"""Hugging Face config.json families: every published config in fixtures/configs counts
exactly what transformers counts for it (fixtures/transformers_counts.json, recorded by
scripts/record_transformers_counts.py on the meta device), and the defaults, windows and
caches each family implies, counted by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpuscout.errors import UsageError
from gpuscout.fit.families import SUPPORTED, parse_hf_config, read_hf_config
from gpuscout.fit.models import find_model
from gpuscout.fit.spec import ModelSpec, block_linears, kv_elements, param_groups

FIXTURES = Path(__file__).parent / "fixtures"
CONFIGS = FIXTURES / "configs"
RECORDED = json.loads((FIXTURES / "transformers_counts.json").read_text(encoding="utf-8"))
COUNTS: dict[str, dict[str, Any]] = RECORDED["counts"]

# What gpuscout counts beyond transformers' parameters(), and why.
BEYOND_TRANSFORMERS = {
    # DeepSeek V3's router keeps e_score_correction_bias (one fp32 value per routed expert)
    # as a buffer in transformers, a parameter in DeepSeek's own code; the checkpoint
    # stores it and memory holds it: 256 experts x 58 MoE layers.
    "deepseek-v3": 256 * 58,
}


def doc_of(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CONFIGS / f"{name}.json").read_text(encoding="utf-8"))
    return doc


def spec_of(name: str, **changes: Any) -> ModelSpec:
    return parse_hf_config(doc_of(name) | changes, f"{name}/config.json")


def test_every_fixture_is_recorded() -> None:
    assert sorted(p.stem for p in CONFIGS.glob("*.json")) == sorted(COUNTS)
    assert RECORDED["transformers"] and RECORDED["torch"]
    families = {doc_of(name)["model_type"] for name in COUNTS}
    assert families == set(SUPPORTED)  # a published config for every family read


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_a_published_config_counts_what_transformers_counts(name: str) -> None:
    spec = read_hf_config(CONFIGS / f"{name}.json")
    assert spec.params == COUNTS[name]["params"] + BEYOND_TRANSFORMERS.get(name, 0)
    assert spec.params == param_groups(spec).total
    assert spec.warnings == ()


# -- defaults the config classes fill in ----------------------------------------------


def test_gemma_2_ties_its_embeddings_by_default() -> None:
    """gemma-2-9b's config.json says nothing of tying (transformers leaves out a value
    equal to the default): read as a Llama it would have an untied output layer and two
    norms fewer per layer, 9.9% too many parameters."""
    gemma = spec_of("gemma-2-9b")
    as_llama = spec_of("gemma-2-9b", model_type="llama")
    assert "tie_word_embeddings" not in doc_of("gemma-2-9b")
    assert gemma.tied_embeddings and not as_llama.tied_embeddings
    assert gemma.sandwich_norm and not as_llama.sandwich_norm
    untied = 256_000 * 3584
    norms = 2 * 3584 * 42
    assert as_llama.params - gemma.params == untied - norms
    assert round((as_llama.params - gemma.params) / gemma.params, 3) == 0.099
    assert as_llama.warnings == ()  # llama is a known family


def test_families_fill_what_a_config_leaves_out() -> None:
    gemma = spec_of("gemma-7b")
    assert gemma.tied_embeddings and gemma.head_dim == 256
    phi3 = spec_of("phi-3-mini-4k")
    assert phi3.fused_qkv and [lin.role for lin in block_linears(phi3)][:2] == ["qkv", "o"]
    qwen2 = spec_of("qwen2.5-7b")
    assert qwen2.qkv_bias and not qwen2.o_bias
    qwen3 = spec_of("qwen3-8b")
    assert qwen3.qk_norm and not qwen3.qkv_bias
    mistral = parse_hf_config(
        {k: v for k, v in doc_of("mistral-7b-v0.1").items() if k != "sliding_window"}, "m"
    )
    assert mistral.sliding_window == 4096  # MistralConfig's default
    # a nested text_config leaves out every Gemma3TextConfig default, the standard keys too
    gemma3 = spec_of("gemma-3-12b-it")
    assert (gemma3.vocab, gemma3.head_dim, gemma3.max_seq_len) == (262_208, 256, 131_072)


def test_llama_3_1_reads_its_context_and_rope_scaling() -> None:
    spec = spec_of("llama-3.1-8b")
    assert spec.max_seq_len == 131_072 and spec.default_seq_len == 4096
    assert spec.rope_theta == 500_000.0
    assert spec.note == "rope scaling: llama3 x8 from 8,192 positions"
    assert spec_of("llama-2-7b").note == ""


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("llama-2-7b", "fp16"), ("gemma-2-9b", "fp32"), ("llama-3.1-8b", "bf16"), ("gpt2", "bf16")],
)
def test_torch_dtype_is_the_default_dtype(name: str, dtype: str) -> None:
    assert spec_of(name).default_dtype == dtype


def test_newer_files_say_dtype() -> None:
    doc = {k: v for k, v in doc_of("llama-2-7b").items() if k != "torch_dtype"}
    assert parse_hf_config(doc | {"dtype": "float32"}, "x").default_dtype == "fp32"
    assert parse_hf_config(doc, "x").default_dtype == "bf16"


def test_bert_s_masked_lm_class_has_no_pooler() -> None:
    masked_lm = spec_of("bert-base-uncased")
    no_class = parse_hf_config(
        {k: v for k, v in doc_of("bert-base-uncased").items() if k != "architectures"}, "b"
    )
    assert not masked_lm.pooler and no_class.pooler
    assert no_class.params - masked_lm.params == 768 * 768 + 768
    assert no_class.params == find_model("bert-base").params


# -- an unknown family, a broken config -----------------------------------------------


def test_an_unknown_model_type_is_counted_as_a_llama_with_a_warning() -> None:
    spec = spec_of("llama-3.1-8b", model_type="new_lm")
    assert spec.params == COUNTS["llama-3.1-8b"]["params"]
    (warning,) = spec.warnings
    assert "'new_lm'" in warning and "Llama" in warning


@pytest.mark.parametrize(
    ("changes", "dropped", "message"),
    [
        ({"model_type": "new_lm"}, "num_hidden_layers", "model_type 'new_lm' is not supported"),
        ({}, "vocab_size", "llama config has no 'vocab_size'"),
        ({"model_type": "qwen3"}, "intermediate_size", "qwen3 config has no 'intermediate_size'"),
    ],
)
def test_a_missing_standard_key_is_one_line_naming_it(
    changes: dict[str, Any], dropped: str, message: str
) -> None:
    doc = {k: v for k, v in doc_of("llama-3.1-8b").items() if k != dropped} | changes
    with pytest.raises(UsageError) as exc:
        parse_hf_config(doc, "cfg.json")
    assert message in exc.value.message and f"no {dropped!r}" in exc.value.message
    assert "\n" not in exc.value.message and exc.value.exit_code == 2


def test_a_bad_nested_value_names_the_key() -> None:
    doc = doc_of("gemma-3-12b-it")
    doc["vision_config"] = doc["vision_config"] | {"patch_size": "14"}
    with pytest.raises(UsageError, match="'patch_size' must be a positive integer"):
        parse_hf_config(doc, "g.json")


# -- KV cache: sliding windows and latent attention, counted by hand --------------------


def test_llama_3_1_8b_caches_65536_elements_per_token() -> None:
    spec = spec_of("llama-3.1-8b")
    assert kv_elements(spec, 1) == 32 * 8 * 128 * 2 == 65_536
    assert kv_elements(spec, 8192) == 65_536 * 8192
    assert kv_elements(spec, 1, tp=8) == 32 * 1 * 128 * 2
    assert kv_elements(spec, 1, tp=16) == 32 * 1 * 128 * 2  # a KV head is not split


def test_deepseek_v3_caches_its_latent_not_heads() -> None:
    spec = spec_of("deepseek-v3")
    assert kv_elements(spec, 1) == (512 + 64) * 61 == 35_136
    assert kv_elements(spec, 1, tp=8) == 35_136  # the latent is not split by tp
    assert kv_elements(spec, 4096) == 35_136 * 4096


def test_gemma_2_caps_half_its_layers_at_the_window() -> None:
    spec = spec_of("gemma-2-9b")
    assert (spec.sliding_window, spec.sliding_layers, spec.layers) == (4096, 21, 42)
    per_token_layer = 2 * 8 * 256
    assert kv_elements(spec, 8192) == per_token_layer * (21 * 4096 + 21 * 8192)
    assert kv_elements(spec, 2048) == per_token_layer * 42 * 2048  # under the window


def test_mistral_v0_1_windows_every_layer_and_v0_3_none() -> None:
    v01, v03 = spec_of("mistral-7b-v0.1"), spec_of("mistral-7b-v0.3")
    assert (v01.sliding_window, v01.sliding_layers) == (4096, 32)
    assert (v03.sliding_window, v03.sliding_layers) == (None, 0)
    assert kv_elements(v01, 32_768) == 32 * 2 * 8 * 128 * 4096
    assert kv_elements(v03, 32_768) == 32 * 2 * 8 * 128 * 32_768


def test_gemma_3_slides_five_layers_in_six() -> None:
    one, twelve = spec_of("gemma-3-1b-it"), spec_of("gemma-3-12b-it")
    assert (one.sliding_window, one.sliding_layers) == (512, 26 - 4)
    assert (twelve.sliding_window, twelve.sliding_layers) == (1024, 48 - 8)


def test_qwen_windows_only_with_use_sliding_window() -> None:
    assert spec_of("qwen2.5-7b").sliding_layers == 0
    on = spec_of("qwen2.5-7b", use_sliding_window=True, max_window_layers=20, sliding_window=4096)
    assert (on.sliding_window, on.sliding_layers) == (4096, 28 - 20)
    listed = spec_of("gemma-2-9b", layer_types=["full_attention"] * 42)
    assert (listed.sliding_window, listed.sliding_layers) == (None, 0)


def test_encoders_cache_nothing() -> None:
    assert kv_elements(spec_of("bert-base-uncased"), 512) == 0


# -- layers: latent attention, experts, vision -----------------------------------------


def test_deepseek_v3_s_layers() -> None:
    spec = spec_of("deepseek-v3")
    shapes = [(x.role, x.fan_in, x.fan_out, x.copies) for x in block_linears(spec)]
    assert shapes == [
        ("q_a", 7168, 1536, 1),
        ("q_b", 1536, 128 * (128 + 64), 1),
        ("kv_a", 7168, 512 + 64, 1),
        ("kv_b", 512, 128 * (128 + 128), 1),
        ("o", 128 * 128, 7168, 1),
        ("gate", 7168, 2048, 256),
        ("up", 7168, 2048, 256),
        ("down", 2048, 7168, 256),
        ("shared_gate", 7168, 2048, 1),
        ("shared_up", 7168, 2048, 1),
        ("shared_down", 2048, 7168, 1),
    ]
    dense = [(x.role, x.fan_out, x.copies) for x in block_linears(spec, layer=2)][-3:]
    assert dense == [("gate", 18432, 1), ("up", 18432, 1), ("down", 7168, 1)]
    assert block_linears(spec, layer=3) == block_linears(spec)


def test_deepseek_v2_lite_has_a_plain_q_proj() -> None:
    spec = spec_of("deepseek-v2-lite")
    roles = [x.role for x in block_linears(spec)]
    assert roles[:4] == ["q", "kv_a", "kv_b", "o"] and spec.q_lora_rank is None
    assert spec.shared_intermediate == 2 * 1408 and spec.dense_layers == 1


def test_qwen1_5_moe_gates_its_shared_expert() -> None:
    spec = spec_of("qwen1.5-moe-a2.7b")
    assert (spec.experts, spec.moe_intermediate, spec.shared_intermediate) == (60, 1408, 5632)
    assert spec.shared_expert_gate and spec.dense_layers == 0
    no_gate = spec_of("qwen1.5-moe-a2.7b", shared_expert_intermediate_size=0)
    assert spec.params - no_gate.params == 24 * (2048 + 3 * 2048 * 5632)


def test_qwen3_moe_dense_layers_follow_mlp_only_layers() -> None:
    spec = spec_of("qwen3-30b-a3b", mlp_only_layers=[0, 1])
    assert spec.dense_layers == 2
    every_other = spec_of("qwen3-30b-a3b", decoder_sparse_step=2)
    assert every_other.dense_layers == 24


def test_gemma_3_s_vision_tower_and_projector() -> None:
    """SigLIP at 896 px, 14 px patches (4,096 positions), 27 blocks of width 1152 and MLP
    4304, no pooling head; the projector is a 1152 x 3840 matrix and an RMSNorm."""
    h, i = 1152, 4304
    embeddings = 3 * 14 * 14 * h + h + 4096 * h
    block = 4 * (h * h + h) + (h * i + i + i * h + h) + 2 * 2 * h
    tower = embeddings + 27 * block + 2 * h
    projector = h * 3840 + h
    spec = spec_of("gemma-3-12b-it")
    assert spec.vision_params == tower + projector == 421_290_864
    assert param_groups(spec).vision == spec.vision_params


# -- the stored format ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "changes", "quant"),
    [
        ("deepseek-v3", {}, "fp8-block128"),  # quantization_config: fp8 in 128 x 128 blocks
        ("llama-2-7b", {}, "fp16"),  # no quantization_config: its torch_dtype
        ("gemma-3-12b-it", {}, "bf16"),  # the multimodal file's own torch_dtype
        ("gpt2", {}, None),  # neither
        (
            "llama-3.1-8b",
            {"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}},
            "awq-4bit-g128",
        ),
    ],
)
def test_the_format_a_config_stores_its_weights_in(
    name: str, changes: dict[str, Any], quant: str | None
) -> None:
    spec = spec_of(name, **changes)
    assert spec.quant == quant
    assert spec.params == spec_of(name).params  # the shape is the same whatever it stores
