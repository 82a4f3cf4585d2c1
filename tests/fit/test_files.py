"""Models read from files: GGUF files written here with gguf's own writer (real Q8_0 /
Q4_0 / F16 tensor data) and read beside gguf's own reader, safetensors folders written by
hand, config.json files, the Hugging Face cache layout, and what is said when a repo is
not there."""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import (
    GGMLQuantizationType,
    GGUFEndian,
    GGUFReader,
    GGUFValueType,
    GGUFWriter,
    LlamaFileType,
    TokenType,
)
from gguf.quants import quantize

from gpuscout.errors import UnknownNameError, UsageError
from gpuscout.fit.files import GgufArray, GgufHeader, load_source, read_gguf_header
from gpuscout.fit.quant import parse_format, weight_bytes

HIDDEN, FFN, VOCAB, LAYERS, HEADS, KV_HEADS = 64, 128, 32, 2, 4, 2
KV = KV_HEADS * HIDDEN // HEADS  # k and v widths: 2 heads of 16


def _gguf(
    path: Path,
    qtype: GGMLQuantizationType = GGMLQuantizationType.Q8_0,
    ftype: LlamaFileType | None = LlamaFileType.MOSTLY_Q8_0,
    tied: bool = False,
    experts: int = 0,
    vocab: int = VOCAB,
    tokenizer: bool = False,
) -> dict[str, int]:
    """A tiny Llama GGUF; returns each tensor's bytes as written. ``tokenizer``: the
    metadata a real Llama 3 file carries besides (token types and scores, merges as many
    as the tokens, a chat template), one per-layer array and one nested array."""
    rng = np.random.default_rng(0)
    w = GGUFWriter(path, "llama")
    w.add_name("Tiny Llama")
    w.add_block_count(LAYERS)
    w.add_context_length(256)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv([KV_HEADS, 1] if tokenizer else KV_HEADS)
    w.add_rope_freq_base(500_000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_token_list([f"t{i}" for i in range(vocab)])
    if tokenizer:
        w.add_tokenizer_model("gpt2")
        w.add_token_types([TokenType.NORMAL] * vocab)
        w.add_token_scores([-float(i) for i in range(vocab)])
        w.add_token_merges([f"t{i} t{i + 1}" for i in range(vocab)])
        w.add_bos_token_id(1)
        w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
        w.add_array("general.nested", [[1, 2], [3]])
    if ftype is not None:
        w.add_file_type(ftype)
    if experts:
        w.add_expert_count(experts)
        w.add_expert_used_count(2)
    written: dict[str, int] = {}

    def matrix(name: str, rows: int, cols: int) -> None:
        data = quantize(rng.standard_normal((rows, cols), dtype=np.float32), qtype)
        w.add_tensor(name, data, raw_dtype=qtype)
        written[name] = data.nbytes

    def vector(name: str, n: int) -> None:
        data = np.ones(n, dtype=np.float32)
        w.add_tensor(name, data)
        written[name] = data.nbytes

    matrix("token_embd.weight", vocab, HIDDEN)
    for i in range(LAYERS):
        vector(f"blk.{i}.attn_norm.weight", HIDDEN)
        matrix(f"blk.{i}.attn_q.weight", HIDDEN, HIDDEN)
        matrix(f"blk.{i}.attn_k.weight", KV, HIDDEN)
        matrix(f"blk.{i}.attn_v.weight", KV, HIDDEN)
        matrix(f"blk.{i}.attn_output.weight", HIDDEN, HIDDEN)
        vector(f"blk.{i}.ffn_norm.weight", HIDDEN)
        if experts:
            vector(f"blk.{i}.ffn_gate_inp.weight", HIDDEN * experts)
            for part, shape in (
                ("gate", (FFN, HIDDEN)),
                ("up", (FFN, HIDDEN)),
                ("down", (HIDDEN, FFN)),
            ):
                data = np.zeros((experts, *shape), dtype=np.float16)
                w.add_tensor(f"blk.{i}.ffn_{part}_exps.weight", data)
                written[f"blk.{i}.ffn_{part}_exps.weight"] = data.nbytes
        else:
            matrix(f"blk.{i}.ffn_gate.weight", FFN, HIDDEN)
            matrix(f"blk.{i}.ffn_up.weight", FFN, HIDDEN)
            matrix(f"blk.{i}.ffn_down.weight", HIDDEN, FFN)
    vector("output_norm.weight", HIDDEN)
    if not tied:
        matrix("output.weight", vocab, HIDDEN)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written


def test_a_gguf_file_is_read_and_costed_exactly(tmp_path: Path) -> None:
    path = tmp_path / "tiny-Q8_0.gguf"
    written = _gguf(path)
    # Q8_0: 34 bytes per 32 weights, so the 64x64 attn_q is 64 rows x 2 blocks x 34 bytes
    assert written["blk.0.attn_q.weight"] == 64 * 2 * 34
    spec = load_source(str(path))
    assert (spec.family, spec.layers, spec.hidden, spec.heads, spec.kv_heads) == (
        "decoder",
        LAYERS,
        HIDDEN,
        HEADS,
        KV_HEADS,
    )
    assert (spec.intermediate, spec.vocab, spec.tied_embeddings) == (FFN, VOCAB, False)
    assert spec.max_seq_len == 256
    assert spec.quant == "q8_0"
    assert spec.stored_bytes == sum(written.values())
    per_layer = tuple(
        sum(b for n, b in written.items() if n.startswith(f"blk.{i}.")) for i in range(LAYERS)
    )
    assert spec.stored_layer_bytes == per_layer
    assert spec.stored_embedding_bytes == written["token_embd.weight"]
    assert spec.stored_head_bytes == written["output.weight"]
    assert weight_bytes(spec, parse_format("q8_0")) == sum(written.values())


def test_the_q8_0_mix_counted_from_the_shape_matches_the_file(tmp_path: Path) -> None:
    """Every matrix Q8_0 (llama.cpp keeps Q8_0 for the output too), norms F32: the
    shape-based count of the mix is the file's bytes."""
    path = tmp_path / "tiny.gguf"
    written = _gguf(path)
    spec = dataclasses.replace(load_source(str(path)), stored_bytes=None)
    assert weight_bytes(spec, parse_format("q8_0")) == sum(written.values())


def test_a_tied_q4_0_gguf(tmp_path: Path) -> None:
    path = tmp_path / "tied.gguf"
    written = _gguf(path, GGMLQuantizationType.Q4_0, LlamaFileType.MOSTLY_Q4_0, tied=True)
    assert written["blk.0.attn_q.weight"] == 64 * 2 * 18  # Q4_0: 18 bytes per 32 weights
    spec = load_source(str(path))
    assert spec.tied_embeddings and spec.stored_head_bytes == 0
    assert (spec.quant, spec.stored_bytes) == ("q4_0", sum(written.values()))


def test_a_gguf_without_file_type_takes_its_commonest_type(tmp_path: Path) -> None:
    path = tmp_path / "untyped.gguf"
    _gguf(path, GGMLQuantizationType.Q4_0, ftype=None)
    assert load_source(str(path)).quant == "q4_0"


def test_a_moe_gguf(tmp_path: Path) -> None:
    path = tmp_path / "moe.gguf"
    written = _gguf(path, ftype=LlamaFileType.MOSTLY_F16, experts=4)
    spec = load_source(str(path))
    assert (spec.family, spec.experts, spec.experts_per_token) == ("moe-decoder", 4, 2)
    assert spec.quant == "fp16"
    assert spec.stored_bytes == sum(written.values())


def test_a_deepseek2_gguf_reads_its_latent_attention(tmp_path: Path) -> None:
    """llama.cpp's deepseek2 keys (a V2-Lite-like shape: no q_lora_rank, the absorbed
    key width in key_length and the per-head widths in key_length_mla/value_length_mla)."""
    path = tmp_path / "ds.gguf"
    w = GGUFWriter(path, "deepseek2")
    arch = "deepseek2"
    for key, value in {
        "block_count": 2,
        "embedding_length": 64,
        "feed_forward_length": 256,
        "attention.head_count": 4,
        "attention.head_count_kv": 1,
        "attention.kv_lora_rank": 32,
        "attention.key_length": 32 + 8,
        "attention.key_length_mla": 24,
        "attention.value_length_mla": 16,
        "rope.dimension_count": 8,
        "expert_count": 8,
        "expert_used_count": 2,
        "expert_shared_count": 1,
        "expert_feed_forward_length": 32,
        "leading_dense_block_count": 1,
        "context_length": 512,
    }.items():
        w.add_uint32(f"{arch}.{key}", value)
    w.add_token_list([f"t{i}" for i in range(VOCAB)])
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    w.add_tensor("token_embd.weight", np.zeros((VOCAB, 64), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    spec = load_source(str(path))
    assert (spec.family, spec.kv_lora_rank, spec.q_lora_rank) == ("moe-decoder", 32, None)
    assert (spec.qk_rope_head_dim, spec.qk_nope_head_dim, spec.v_head_dim) == (8, 16, 16)
    assert (spec.experts, spec.experts_per_token, spec.moe_intermediate) == (8, 2, 32)
    assert (spec.shared_intermediate, spec.dense_layers, spec.intermediate) == (32, 1, 256)
    assert (spec.quant, spec.stored_bytes) == ("fp16", VOCAB * 64 * 2)


def test_a_folder_holding_one_gguf(tmp_path: Path) -> None:
    _gguf(tmp_path / "only.gguf")
    assert load_source(str(tmp_path)).quant == "q8_0"


def test_a_broken_gguf_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + b"\xff" * 64)
    with pytest.raises(UsageError, match="not a readable GGUF file"):
        load_source(str(path))


def _as_gguf_reads(reader: GGUFReader) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """What gguf's GGUFReader reads: each scalar, each array's element type and length
    (and its numbers), each tensor's name, shape, type and bytes."""
    fields: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):  # the reader's own entries for the file's header
            continue
        if field.types[0] == GGUFValueType.ARRAY:
            numbers = field.types[-1] != GGUFValueType.STRING
            values = field.contents() if numbers else None
            fields[key] = (field.types[-1], len(field.data), values)
        else:
            fields[key] = field.contents()
    tensors = [
        (t.name, tuple(int(d) for d in t.shape), t.tensor_type, int(t.n_bytes))
        for t in reader.tensors
    ]
    return fields, tensors


def _as_read(header: GgufHeader) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    fields = {
        k: (v.type, v.count, list(v.values) if v.values is not None else None)
        if isinstance(v, GgufArray)
        else v
        for k, v in header.fields.items()
    }
    return fields, [(t.name, t.shape, t.type, t.n_bytes) for t in header.tensors]


def test_llama_3_sized_metadata_reads_as_gguf_reads_it(tmp_path: Path) -> None:
    """A Llama 3 file's metadata (its 128,256 tokens cut to 20,000): every scalar, array
    length and tensor as gguf's GGUFReader reads them. The tokenizer's arrays are only
    counted; a per-layer array keeps its numbers; a nested array is stepped over (the
    reader flattens it, so only its length is compared)."""
    path = tmp_path / "llama3-like.gguf"
    written = _gguf(path, vocab=20_000, tokenizer=True)
    fields, tensors = _as_read(read_gguf_header(path))
    expected, expected_tensors = _as_gguf_reads(GGUFReader(path))
    assert fields.pop("general.nested") == (GGUFValueType.ARRAY, 2, None)
    assert expected.pop("general.nested")[2] == [1, 2, 3]
    tokenizer = {k for k in expected if k.startswith("tokenizer.") and isinstance(fields[k], tuple)}
    assert tokenizer == {
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.scores",
        "tokenizer.ggml.merges",
    }
    for key in tokenizer:  # counted, never read
        assert fields[key][2] is None and expected[key][1] == 20_000
        fields[key] = expected[key] = fields[key][:2]
    assert fields["llama.attention.head_count_kv"] == (GGUFValueType.INT32, 2, [KV_HEADS, 1])
    assert fields == expected
    assert tensors == expected_tensors
    spec = load_source(str(path))
    assert (spec.vocab, spec.kv_heads, spec.quant) == (20_000, KV_HEADS, "q8_0")
    assert spec.stored_bytes == sum(written.values())


def _one_line_error(path: Path) -> str:
    with pytest.raises(UsageError) as info:
        load_source(str(path))
    message = info.value.message
    assert message.startswith(f"{path} is not a readable GGUF file: ") and "\n" not in message
    return message


@pytest.mark.parametrize(
    ("cut", "said"),
    [
        ("everything", "it is empty"),
        ("inside the version", "it ends inside its header"),
        ("inside the token list", "it ends inside its header"),
        ("inside the tensor table", "it ends inside its header"),
        ("the last byte of tensor data", "tensors end at byte"),  # an unfinished download
    ],
)
def test_a_truncated_gguf_is_one_line(tmp_path: Path, cut: str, said: str) -> None:
    whole = tmp_path / "whole.gguf"
    _gguf(whole)
    raw = whole.read_bytes()
    reader = GGUFReader(whole)  # where each part starts, by gguf's own reader
    at = {
        "everything": 0,
        "inside the version": 6,
        "inside the token list": reader.fields["tokenizer.ggml.tokens"].offset + 60,
        "inside the tensor table": reader.tensors[3].field.offset + 10,
        "the last byte of tensor data": len(raw) - 1,
    }[cut]
    path = tmp_path / "cut.gguf"
    path.write_bytes(raw[:at])
    assert said in _one_line_error(path)


def test_a_file_without_the_gguf_magic_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ggml.gguf"
    _gguf(path)
    path.write_bytes(b"GGML" + path.read_bytes()[4:])
    assert "does not start with the GGUF magic" in _one_line_error(path)


def test_a_big_endian_gguf_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "be.gguf"
    w = GGUFWriter(path, "llama", endianess=GGUFEndian.BIG)
    w.add_block_count(LAYERS)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert "big-endian" in _one_line_error(path)


def _header(version: int, key: bytes, value_type: int) -> bytes:
    """A GGUF header as the spec lays it out: magic, u32 version, u64 tensor and key
    counts, then one key (u64 length, bytes) and its u32 value type."""
    return (
        b"GGUF"
        + struct.pack("<IQQQ", version, 0, 1, len(key))
        + key
        + struct.pack("<I", value_type)
    )


def test_an_unknown_value_type_or_version_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "odd.gguf"
    path.write_bytes(_header(3, b"general.odd", 13) + bytes(8))
    assert "general.odd has the unknown value type 13" in _one_line_error(path)
    path.write_bytes(_header(1, b"general.odd", 4) + bytes(8))
    assert "GGUF version 1 (gpuscout reads versions 2 and 3)" in _one_line_error(path)


def test_a_missing_part_of_a_split_gguf(tmp_path: Path) -> None:
    path = tmp_path / "big-00001-of-00002.gguf"
    _gguf(path)
    with pytest.raises(UsageError, match=r"missing big-00002-of-00002\.gguf"):
        load_source(str(path))


# -- safetensors ------------------------------------------------------------------------

CONFIG: dict[str, Any] = {
    "_name_or_path": "org/tiny",
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": HIDDEN,
    "intermediate_size": FFN,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "num_hidden_layers": LAYERS,
    "vocab_size": VOCAB,
    "max_position_embeddings": 256,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def _tensors() -> dict[str, list[int]]:
    shapes = {"model.embed_tokens.weight": [VOCAB, HIDDEN], "lm_head.weight": [VOCAB, HIDDEN]}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes |= {
            p + "input_layernorm.weight": [HIDDEN],
            p + "self_attn.q_proj.weight": [HIDDEN, HIDDEN],
            p + "self_attn.k_proj.weight": [KV, HIDDEN],
            p + "self_attn.v_proj.weight": [KV, HIDDEN],
            p + "self_attn.o_proj.weight": [HIDDEN, HIDDEN],
            p + "post_attention_layernorm.weight": [HIDDEN],
            p + "mlp.gate_proj.weight": [FFN, HIDDEN],
            p + "mlp.up_proj.weight": [FFN, HIDDEN],
            p + "mlp.down_proj.weight": [HIDDEN, FFN],
        }
    return shapes | {"model.norm.weight": [HIDDEN]}


def _safetensors(path: Path, shapes: dict[str, list[int]], itemsize: int = 2) -> int:
    """A .safetensors file as the format defines it: u64 little-endian header length,
    the JSON header, then the tensors' bytes. Returns the tensor bytes."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        size = math.prod(shape) * itemsize
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return offset


def _checkpoint(folder: Path, config: dict[str, Any] = CONFIG) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return _safetensors(folder / "model.safetensors", _tensors())


def test_a_checkpoint_folder_costs_its_safetensors_bytes(tmp_path: Path) -> None:
    total = _checkpoint(tmp_path / "ckpt")
    params = sum(math.prod(s) for s in _tensors().values())
    assert total == 2 * params  # bf16
    spec = load_source(str(tmp_path / "ckpt"))
    assert (spec.quant, spec.stored_bytes) == ("bf16", total)
    layer = 2 * (2 * HIDDEN + 2 * HIDDEN * HIDDEN + 2 * KV * HIDDEN + 3 * FFN * HIDDEN)
    assert spec.stored_layer_bytes == (layer, layer)
    assert spec.stored_embedding_bytes == spec.stored_head_bytes == 2 * VOCAB * HIDDEN
    assert weight_bytes(spec, parse_format("bf16")) == total
    assert spec.params == params  # the shape read from config.json counts the same


def test_sharded_safetensors_add_up(tmp_path: Path) -> None:
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(CONFIG))
    shapes = list(_tensors().items())
    half = len(shapes) // 2
    a = _safetensors(folder / "model-00001-of-00002.safetensors", dict(shapes[:half]))
    b = _safetensors(folder / "model-00002-of-00002.safetensors", dict(shapes[half:]))
    assert load_source(str(folder / "config.json")).stored_bytes == a + b


def test_an_index_without_shards_gives_the_total(tmp_path: Path) -> None:
    folder = tmp_path / "index-only"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(CONFIG))
    index = {"metadata": {"total_size": 123_456}, "weight_map": {}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    spec = load_source(str(folder))
    assert (spec.stored_bytes, spec.stored_layer_bytes) == (123_456, ())


def test_a_config_json_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    spec = load_source(str(path))
    assert (spec.layers, spec.quant, spec.stored_bytes) == (LAYERS, "bf16", None)


def test_a_quantized_checkpoint_names_its_format(tmp_path: Path) -> None:
    qc = {"quant_method": "awq", "zero_point": True, "group_size": 128, "bits": 4}
    _checkpoint(tmp_path / "awq", CONFIG | {"quantization_config": qc, "torch_dtype": "float16"})
    assert load_source(str(tmp_path / "awq")).quant == "awq-4bit-g128"


def test_an_unknown_quantization_method_is_a_warning(tmp_path: Path) -> None:
    config = CONFIG | {"quantization_config": {"quant_method": "hqq"}}
    _checkpoint(tmp_path / "hqq", config)
    spec = load_source(str(tmp_path / "hqq"))
    assert (spec.quant, spec.stored_bytes) == (None, None)
    assert any("'hqq'" in w for w in spec.warnings)


def test_a_broken_safetensors_header_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 10) + b"not json!!")
    with pytest.raises(UsageError, match="not a safetensors file"):
        load_source(str(folder))


# -- the Hugging Face cache -------------------------------------------------------------


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf" / "hub"


def test_a_repo_id_in_the_cache(hf_home: Path) -> None:
    repo = hf_home / "models--org--tiny"
    total = _checkpoint(repo / "snapshots" / "abc123")
    _checkpoint(repo / "snapshots" / "old999", CONFIG | {"num_hidden_layers": 1})
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    spec = load_source("org/tiny")
    assert (spec.layers, spec.stored_bytes) == (LAYERS, total)


def test_hf_hub_cache_wins_over_hf_home(
    hf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _checkpoint(tmp_path / "hub2" / "models--org--tiny" / "snapshots" / "r1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub2"))
    assert load_source("org/tiny").layers == LAYERS


def test_a_repo_missing_from_the_cache_says_what_to_download(hf_home: Path) -> None:
    with pytest.raises(UsageError) as info:
        load_source("org/missing")
    assert "org/missing" in info.value.message and str(hf_home) in info.value.message
    assert "huggingface-cli download org/missing config.json" in info.value.hint


def test_a_missing_repo_that_is_a_shipped_preset(hf_home: Path) -> None:
    assert load_source("meta-llama/Meta-Llama-3-8B").id == "llama-3-8b"


def test_other_names_are_shipped_presets() -> None:
    assert load_source("llama-3-8b").id == "llama-3-8b"
    with pytest.raises(UnknownNameError) as info:
        load_source("llama-3-9b")
    assert info.value.suggestions


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_source(str(tmp_path / "nope.gguf"))
