"""Model shapes: every shipped row, the workloads' shapes, name lookup, config.json files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuscout.errors import CatalogError, UnknownNameError, UsageError
from gpuscout.fit import (
    ModelSpec,
    list_models,
    load_model,
    parse_models,
    read_hf_config,
)
from gpuscout.fit.models import PARAMS_TOLERANCE, find_model
from gpuscout.fit.spec import param_groups

MODELS = list_models()


def test_the_issue_s_models_are_all_there() -> None:
    ids = {m.id for m in MODELS}
    wanted = {
        "gpt2",
        "gpt2-medium",
        "gpt2-large",
        "gpt2-xl",
        "llama-3-8b",
        "llama-3-70b",
        "llama-3.2-1b",
        "llama-3.2-3b",
        "mistral-7b",
        "mixtral-8x7b",
        "qwen2.5-7b",
        "bert-base",
        "bert-large",
        "vit-b-16",
        "resnet50",
        "resnet18",
        "mlp",
        "encoder",
        "llama-1.1b",
        "llama-8b",
    }
    assert wanted <= ids


@pytest.mark.parametrize("spec", MODELS, ids=lambda m: m.id)
def test_every_row_has_a_source_and_a_count_near_the_published_one(spec: ModelSpec) -> None:
    assert spec.source.startswith(("https://", "src/gpuscout/"))
    assert spec.params == param_groups(spec).total > 0
    if spec.published_params is not None:
        off = abs(spec.params - spec.published_params) / spec.published_params
        assert off <= PARAMS_TOLERANCE, f"{spec.id}: {off:.2%}"


@pytest.mark.parametrize(
    ("model_id", "params"),
    [
        ("llama-3-8b", 8_030_261_248),  # Meta's 8.03B
        ("gpt2", 124_439_808),  # GPT-2 small's checkpoint
        ("resnet50", 25_557_032),  # torchvision
        ("resnet18", 11_689_512),
        ("vit-b-16", 86_567_656),  # timm vit_base_patch16_224
        ("mlp", 784 * 128 + 128 + 128 * 10 + 10),
    ],
)
def test_exact_counts_from_the_shapes(model_id: str, params: int) -> None:
    assert find_model(model_id).params == params


def test_workload_rows_are_the_shapes_the_workloads_build() -> None:
    """Each workload's shape classes read its model-table rows field for field (the
    torch models built from them are counted against the rows in tests/workloads)."""
    from gpuscout.workloads import registry
    from gpuscout.workloads.encoder import EncoderShape
    from gpuscout.workloads.llama import LlamaShape

    for name in registry.get("llm").models:
        spec = registry.workload_model("llm", name)
        shape = LlamaShape.from_spec(spec)
        got = (spec.layers, spec.hidden, spec.heads, spec.kv_heads, spec.intermediate)
        assert got == (shape.layers, shape.dim, shape.heads, shape.kv_heads, shape.ffn), name
        assert (spec.vocab, spec.tied_embeddings, spec.head_dim, spec.rope_theta) == (
            shape.vocab,
            shape.tie_embeddings,
            shape.head_dim,
            shape.rope_theta,
        )
    for name in registry.get("encoder").models:
        spec = registry.workload_model("encoder", name)
        eshape = EncoderShape.from_spec(spec)
        got = (spec.layers, spec.hidden, spec.heads, spec.intermediate, spec.vocab)
        assert got == (eshape.layers, eshape.hidden, eshape.heads, eshape.ffn, eshape.vocab)
        assert spec.positions == eshape.max_len and spec.fused_qkv and spec.head == "mlm"
    # The ResNets by name as the workload's --model takes them (its names are the ids).
    blocks = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3)}
    for name, stages in blocks.items():
        spec = registry.workload_model("cnn", name)
        assert (spec.resnet_stages, spec.resnet_width) == (stages, 64)
    assert registry.workload_model("cnn", "resnet-tiny").resnet_width == 8


def test_workload_defaults_are_what_each_workload_runs_on_a_gpu() -> None:
    from gpuscout.workloads.registry import workload_model as from_record

    assert from_record("mlp").mlp_dims == (784, 128, 10)
    assert from_record("mlp").default_dtype == "fp32"
    assert from_record("cnn").id == "resnet50"
    assert from_record("encoder").id == "encoder"
    assert from_record("llm").id == "llama-1.1b"
    with pytest.raises(UnknownNameError) as exc:
        from_record("llm", "llama-9b")
    assert "llama-8b" in exc.value.suggestions
    with pytest.raises(UnknownNameError):
        from_record("rnn")


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("Llama 3 8B", "llama-3-8b"),
        ("meta-llama/Meta-Llama-3-8B", "llama-3-8b"),
        ("LLAMA-3.2-1B", "llama-3.2-1b"),
        ("bert-base-uncased", "bert-base"),
        ("ResNet-50", "resnet50"),
        ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b"),
    ],
)
def test_names_are_matched_loosely(name: str, model_id: str) -> None:
    assert load_model(name).id == model_id


def test_an_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(UnknownNameError) as exc:
        load_model("llama-3-9b")
    assert exc.value.exit_code == 2
    assert "llama-3-8b" in exc.value.suggestions
    with pytest.raises(UnknownNameError) as exc:
        load_model("zzzzzz")
    assert "--list" in exc.value.hint


ROW = """
[[model]]
id = "tiny"
name = "Tiny"
family = "decoder"
layers = 2
hidden = 64
heads = 4
intermediate = 128
vocab = 100
source = "https://example.com/config.json"
"""


def test_parse_models_accepts_a_good_row_and_fills_defaults() -> None:
    (spec,) = parse_models(ROW)
    assert (spec.kv_heads, spec.head_dim) == (4, 16)
    assert spec.params == param_groups(spec).total


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("layers = 2", "layers = 0"), "layers"),
        (("layers = 2", "lyers = 2"), "unknown key"),
        (('family = "decoder"', 'family = "rnn"'), "family"),
        (("heads = 4", "heads = 5"), "multiple"),
        (("vocab = 100", "vocab = 100\npublished_params = 999"), "off the published"),
        (('id = "tiny"', 'id = "Tiny Model"'), "id"),
    ],
)
def test_parse_models_names_the_bad_row(change: tuple[str, str], message: str) -> None:
    with pytest.raises(CatalogError) as exc:
        parse_models(ROW.replace(*change))
    assert "row 1 (tiny" in exc.value.message or "row 1 (Tiny" in exc.value.message
    assert message in exc.value.message


def test_two_rows_answering_to_one_name_are_rejected() -> None:
    with pytest.raises(CatalogError, match="share"):
        parse_models(ROW + ROW.replace('id = "tiny"', 'id = "tiny2"'))


# -- Hugging Face config.json ---------------------------------------------------------

LLAMA_3_8B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": False,
    "_name_or_path": "meta-llama/Meta-Llama-3-8B",
}
CONFIGS = {
    "llama": (LLAMA_3_8B, "llama-3-8b"),
    "qwen2": (
        {
            "model_type": "qwen2",
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_attention_heads": 28,
            "num_hidden_layers": 28,
            "num_key_value_heads": 4,
            "vocab_size": 152064,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": False,
        },
        "qwen2.5-7b",
    ),
    "mixtral": (
        LLAMA_3_8B
        | {
            "model_type": "mixtral",
            "vocab_size": 32000,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
        },
        "mixtral-8x7b",
    ),
    "gpt2": (
        {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024}
        | {"vocab_size": 50257, "n_inner": None},
        "gpt2",
    ),
    "bert": (
        {
            "model_type": "bert",
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "vocab_size": 30522,
            "max_position_embeddings": 512,
            "type_vocab_size": 2,
        },
        "bert-base",
    ),
    "vit": (
        {
            "model_type": "vit",
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "image_size": 224,
            "patch_size": 16,
            "num_channels": 3,
            "id2label": {str(i): f"class{i}" for i in range(1000)},
        },
        "vit-b-16",
    ),
}


def write(tmp_path: Path, doc: object, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_a_config_json_gives_the_same_shape_as_the_shipped_row(tmp_path: Path, kind: str) -> None:
    doc, shipped_id = CONFIGS[kind]
    spec = load_model(str(write(tmp_path, doc)))
    shipped = find_model(shipped_id)
    assert spec.params == shipped.params
    assert spec.family == shipped.family
    assert spec.source.endswith("config.json")


def test_a_directory_holding_a_config_json_works(tmp_path: Path) -> None:
    write(tmp_path, LLAMA_3_8B)
    spec = load_model(str(tmp_path))
    assert spec.id == "meta-llama-3-8b" and spec.params == 8_030_261_248


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ({"model_type": "mamba", "hidden_size": 1}, "model_type 'mamba' is not supported"),
        ({k: v for k, v in LLAMA_3_8B.items() if k != "hidden_size"}, "no 'hidden_size'"),
        (LLAMA_3_8B | {"num_hidden_layers": "32"}, "positive integer"),
        (LLAMA_3_8B | {"num_key_value_heads": 5}, "multiple of kv_heads"),
        (LLAMA_3_8B | {"tie_word_embeddings": "no"}, "true or false"),
    ],
)
def test_malformed_configs_are_one_usage_error_line(
    tmp_path: Path, doc: object, message: str
) -> None:
    path = write(tmp_path, doc)
    with pytest.raises(UsageError) as exc:
        read_hf_config(path)
    assert message in exc.value.message
    assert "\n" not in exc.value.message
    assert exc.value.exit_code == 2


def test_a_missing_json_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_model(str(tmp_path / "nope" / "config.json"))


# -- rows of the current families, held to their published config.json ----------------

FIXTURE_CONFIGS = Path(__file__).parent / "fixtures" / "configs"
ROW_CONFIGS = {  # row id -> the published config.json it is the shape of
    "llama-3.1-8b": "llama-3.1-8b",
    "llama-3.2-1b": "llama-3.2-1b",
    "llama-3.3-70b": "llama-3.3-70b",
    "llama-2-7b": "llama-2-7b",
    "mistral-7b": "mistral-7b-v0.1",
    "mistral-7b-v0.3": "mistral-7b-v0.3",
    "mixtral-8x7b": "mixtral-8x7b",
    "qwen2.5-7b": "qwen2.5-7b",
    "qwen3-8b": "qwen3-8b",
    "qwen3-30b-a3b": "qwen3-30b-a3b",
    "gemma-2-9b": "gemma-2-9b",
    "gemma-3-12b": "gemma-3-12b-it",
    "phi-3-mini": "phi-3-mini-4k",
    "phi-4": "phi-4",
    "deepseek-v3": "deepseek-v3",
    "gpt2": "gpt2",
    "vit-b-16": "vit-base-patch16-224",
}


@pytest.mark.parametrize("model_id", list(ROW_CONFIGS))
def test_a_row_is_the_shape_of_its_published_config(model_id: str) -> None:
    from gpuscout.fit.spec import block_linears, kv_elements

    row = find_model(model_id)
    config = read_hf_config(FIXTURE_CONFIGS / f"{ROW_CONFIGS[model_id]}.json")
    assert param_groups(row) == param_groups(config)
    assert block_linears(row) == block_linears(config)
    assert (row.max_seq_len, row.family, row.experts_per_token) == (
        config.max_seq_len,
        config.family,
        config.experts_per_token,
    )
    for seq in (1, 4096, 32_768):
        assert kv_elements(row, seq) == kv_elements(config, seq)


def test_llama_3_1_has_its_own_rows() -> None:
    assert load_model("meta-llama/Llama-3.1-8B").id == "llama-3.1-8b"
    assert load_model("llama-3.1-70b").id == "llama-3.1-70b"
    assert find_model("llama-3-8b").max_seq_len == 8192
    assert find_model("llama-3.1-8b").max_seq_len == 131_072
    assert find_model("deepseek-v3").quant == "fp8-block128"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("sliding_window = 512", "sliding_window and sliding_layers"),
        ("dense_layers = 1", "describe experts"),
        ("kv_lora_rank = 64", "MLA attention (kv_lora_rank) needs"),
    ],
)
def test_rows_with_half_a_feature_are_rejected(change: str, message: str) -> None:
    with pytest.raises(CatalogError) as exc:
        parse_models(ROW.replace("vocab = 100", f"vocab = 100\n{change}"))
    assert message in exc.value.message
