"""Hugging Face ``config.json`` files, read as plain JSON (transformers is not needed),
one model family (``model_type``) at a time.

What a family's transformers config class fills in when a config.json leaves a key out,
and what its modeling code fixes (norms, biases, fused projections, which layers use the
sliding window), is data: ``FAMILIES``. A small function per family reads what the data
cannot say (experts, latent attention, a nested text config). The counts these give are
held to transformers' own for a published config of every family
(tests/fit/test_families.py).

config.json files written by transformers leave out a top-level key only when it equals
both the base config's default and the class's (``tie_word_embeddings``: true), and in a
nested config every key equal to the class's default: hence the defaults. The five
standard keys are still required at the top level: a config without them is not one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from gpuscout.errors import UsageError
from gpuscout.fit.quant import format_from_hf_config
from gpuscout.fit.spec import ModelSpec, finish_spec

STANDARD: Final = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
)
DTYPES: Final = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
_MISSING: Final = object()


class Reader:
    """``get(key, fallback, kind)``: one config value, checked. A key the file leaves out
    takes the family's default; a null one (or one with no default) takes ``fallback``,
    as the config class's own post-processing does; with no fallback, UsageError naming
    the file and the key. ``kind``: "int" (positive), "int0", "bool", "float", "list"."""

    def __init__(
        self, doc: Mapping[str, Any], origin: str, kind: str, defaults: Mapping[str, Any]
    ) -> None:
        self.doc, self.origin, self.kind, self.defaults = doc, origin, kind, defaults
        self.known = True  # False: an unknown model_type read as a Llama

    def __call__(self, key: str, fallback: Any = _MISSING, kind: str = "int") -> Any:
        value = self.doc[key] if key in self.doc else self.defaults.get(key)
        if value is None:
            if fallback is _MISSING:
                raise UsageError(self._missing(key), self._hint())
            return fallback
        if not _KINDS[kind][0](value):
            raise UsageError(f"{self.origin}: {key!r} must be {_KINDS[kind][1]}, not {value!r}")
        return value

    def _missing(self, key: str) -> str:
        if self.known:
            return f"{self.origin}: {self.kind} config has no {key!r}"
        return (
            f"{self.origin}: model_type {self.doc.get('model_type')!r} is not supported, "
            f"and its config has no {key!r} to read it as a Llama"
        )

    def _hint(self) -> str:
        return "" if self.known else f"supported model types: {', '.join(SUPPORTED)}"


def _whole(raw: Any, least: int) -> bool:
    return isinstance(raw, int) and not isinstance(raw, bool) and raw >= least


# kind -> (whether a value is one, what it must be)
_KINDS: Final[dict[str, tuple[Callable[[Any], bool], str]]] = {
    "int": (lambda raw: _whole(raw, 1), "a positive integer"),
    "int0": (lambda raw: _whole(raw, 0), "a whole number"),
    "bool": (lambda raw: isinstance(raw, bool), "true or false"),
    "float": (
        lambda raw: isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 0,
        "a positive number",
    ),
    "list": (lambda raw: isinstance(raw, list), "a list"),
}


# -- which layers attend through the sliding window ----------------------------------


def _layer_types(get: Reader) -> int | None:
    """Sliding layers a config lists in ``layer_types`` (newer files write it)."""
    types = get("layer_types", None, "list")
    return None if types is None else sum(t == "sliding_attention" for t in types)


def _no_window(get: Reader, layers: int) -> int:
    return 0


def _every_layer(get: Reader, layers: int) -> int:
    """Mistral, Mixtral, Phi-3: the attention reads config.sliding_window in every layer."""
    return layers


def _every_layer_if_used(get: Reader, layers: int) -> int:
    """Qwen3-MoE: every layer, only with use_sliding_window."""
    return layers if get("use_sliding_window", False, "bool") else 0


def _layers_above(get: Reader, layers: int) -> int:
    """Qwen2, Qwen3: with use_sliding_window, the layers from max_window_layers on."""
    listed = _layer_types(get)
    if listed is not None:
        return listed
    if not get("use_sliding_window", False, "bool"):
        return 0
    return max(0, layers - int(get("max_window_layers", 0, "int0")))


def _odd_layers_below(get: Reader, layers: int) -> int:
    """Qwen2-MoE: with use_sliding_window, every other layer below max_window_layers."""
    listed = _layer_types(get)
    if listed is not None:
        return listed
    if not get("use_sliding_window", False, "bool"):
        return 0
    below = min(layers, int(get("max_window_layers", 0, "int0")))
    return (below + 1) // 2


def _alternate(get: Reader, layers: int) -> int:
    """Gemma 2: the even layers (0, 2, ...) slide, the odd ones see everything."""
    listed = _layer_types(get)
    return (layers + 1) // 2 if listed is None else listed


def _pattern(get: Reader, layers: int) -> int:
    """Gemma 3: one full-attention layer in every ``sliding_window_pattern`` (6)."""
    listed = _layer_types(get)
    if listed is not None:
        return listed
    pattern = int(get("sliding_window_pattern", None) or get("_sliding_window_pattern", 6))
    return layers - layers // pattern


# -- what data cannot say ------------------------------------------------------------


def _mixtral(get: Reader) -> dict[str, Any]:
    return {"experts": get("num_local_experts"), "experts_per_token": get("num_experts_per_tok")}


def _qwen_moe(get: Reader) -> dict[str, Any]:
    """Qwen2-MoE and Qwen3-MoE: a layer is dense when listed in mlp_only_layers or off
    the decoder_sparse_step; Qwen2-MoE adds a gated shared expert."""
    layers, experts = get("num_hidden_layers"), get("num_experts")
    only = set(get("mlp_only_layers", [], "list"))
    step = get("decoder_sparse_step", 1)
    dense = sum(1 for i in range(layers) if i in only or not experts or (i + 1) % step)
    v: dict[str, Any] = {
        "experts": experts,
        "experts_per_token": get("num_experts_per_tok"),
        "moe_intermediate": get("moe_intermediate_size"),
        "dense_layers": dense,
    }
    shared = get("shared_expert_intermediate_size", 0, "int0") if get.kind == "qwen2_moe" else 0
    if shared:
        v |= {"shared_intermediate": shared, "shared_expert_gate": True}
    if get.kind == "qwen2_moe":
        v["qkv_bias"] = get("qkv_bias", True, "bool")
    return v


def _deepseek(get: Reader) -> dict[str, Any]:
    """DeepSeek V2/V3: multi-head latent attention, the first k layers dense, routed
    experts beside n_shared_experts fused into one MLP."""
    width = get("moe_intermediate_size")
    return {
        "experts": get("n_routed_experts"),
        "experts_per_token": get("num_experts_per_tok"),
        "moe_intermediate": width,
        "shared_intermediate": get("n_shared_experts", 0, "int0") * width,
        "dense_layers": get("first_k_dense_replace", 0, "int0"),
        "kv_lora_rank": get("kv_lora_rank"),
        "q_lora_rank": get("q_lora_rank", None),
        "qk_rope_head_dim": get("qk_rope_head_dim"),
        "qk_nope_head_dim": get("qk_nope_head_dim"),
        "v_head_dim": get("v_head_dim"),
        "kv_heads": get("num_attention_heads"),  # MLA: every head has its own k and v
        "head_dim": get("qk_nope_head_dim") + get("qk_rope_head_dim"),  # q and k heads
        "router_bias": get.kind == "deepseek_v3",  # e_score_correction_bias
    }


@dataclass(frozen=True)
class Family:
    """One model_type. ``defaults``: its transformers config class's values for the keys
    a config.json may leave out; ``shape``: the ModelSpec fields its modeling code fixes;
    ``sliding``: how many layers use ``sliding_window``; ``extra``: the rest, read."""

    defaults: Mapping[str, Any]
    shape: Mapping[str, Any] = field(default_factory=dict)
    sliding: Callable[[Reader, int], int] = _no_window
    extra: Callable[[Reader], dict[str, Any]] | None = None
    family: str = "decoder"


_QWEN_WINDOW: Final = {"sliding_window": 4096, "use_sliding_window": False, "max_window_layers": 28}
_GEMMA3_TEXT: Final = {
    "num_key_value_heads": 4,
    "head_dim": 256,
    "tie_word_embeddings": True,
    "max_position_embeddings": 131072,
    "attention_bias": False,
    "sliding_window": 4096,
}

FAMILIES: Final[dict[str, Family]] = {
    "llama": Family(
        {"tie_word_embeddings": False, "max_position_embeddings": 2048}
        | {"attention_bias": False, "mlp_bias": False}
    ),
    "mistral": Family(
        {"num_key_value_heads": 8, "tie_word_embeddings": False}
        | {"max_position_embeddings": 131072, "sliding_window": 4096},
        sliding=_every_layer,
    ),
    "mixtral": Family(
        {"num_key_value_heads": 8, "tie_word_embeddings": False, "max_position_embeddings": 131072}
        | {"sliding_window": None, "num_local_experts": 8, "num_experts_per_tok": 2},
        sliding=_every_layer,
        extra=_mixtral,
        family="moe-decoder",
    ),
    "qwen2": Family(
        {"num_key_value_heads": 32, "tie_word_embeddings": False, "max_position_embeddings": 32768}
        | _QWEN_WINDOW,
        shape={"qkv_bias": True},
        sliding=_layers_above,
    ),
    "qwen2_moe": Family(
        {"num_key_value_heads": 16, "tie_word_embeddings": False, "max_position_embeddings": 32768}
        | _QWEN_WINDOW
        | {"qkv_bias": True, "num_experts": 60, "num_experts_per_tok": 4}
        | {"moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632},
        sliding=_odd_layers_below,
        extra=_qwen_moe,
        family="moe-decoder",
    ),
    "qwen3": Family(
        {"num_key_value_heads": 32, "head_dim": 128, "tie_word_embeddings": False}
        | {"max_position_embeddings": 32768, "attention_bias": False}
        | _QWEN_WINDOW,
        shape={"qk_norm": True},
        sliding=_layers_above,
    ),
    "qwen3_moe": Family(
        {"num_key_value_heads": 4, "tie_word_embeddings": False, "max_position_embeddings": 32768}
        | {"attention_bias": False, "sliding_window": 4096, "use_sliding_window": False}
        | {"num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768},
        shape={"qk_norm": True},
        sliding=_every_layer_if_used,
        extra=_qwen_moe,
        family="moe-decoder",
    ),
    "gemma": Family(
        {"num_key_value_heads": 16, "head_dim": 256, "tie_word_embeddings": True}
        | {"max_position_embeddings": 8192, "attention_bias": False},
    ),
    "gemma2": Family(
        {"num_key_value_heads": 4, "head_dim": 256, "tie_word_embeddings": True}
        | {"max_position_embeddings": 8192, "attention_bias": False, "sliding_window": 4096},
        shape={"sandwich_norm": True},
        sliding=_alternate,
    ),
    "gemma3_text": Family(
        _GEMMA3_TEXT, shape={"sandwich_norm": True, "qk_norm": True}, sliding=_pattern
    ),
    "phi3": Family(
        {"tie_word_embeddings": False, "max_position_embeddings": 4096, "sliding_window": None},
        shape={"fused_qkv": True},  # qkv_proj and gate_up_proj: fused, counted the same
        sliding=_every_layer,
    ),
    "deepseek_v2": Family(
        {"tie_word_embeddings": False, "max_position_embeddings": 2048, "attention_bias": False}
        | {"mlp_bias": False, "moe_intermediate_size": 1407, "n_routed_experts": 64}
        | {"n_shared_experts": 2, "first_k_dense_replace": 0, "q_lora_rank": 1536}
        | {"kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128}
        | {"v_head_dim": 128},
        extra=_deepseek,
        family="moe-decoder",
    ),
    "deepseek_v3": Family(
        {"tie_word_embeddings": False, "max_position_embeddings": 4096, "attention_bias": False}
        | {"moe_intermediate_size": 2048, "n_routed_experts": 256, "num_experts_per_tok": 8}
        | {"n_shared_experts": 1, "first_k_dense_replace": 3, "q_lora_rank": 1536}
        | {"kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128}
        | {"v_head_dim": 128},
        extra=_deepseek,
        family="moe-decoder",
    ),
}
OTHER_FAMILIES: Final = ("gemma3", "gpt2", "bert", "vit")  # read by their own functions
SUPPORTED: Final = (*FAMILIES, *OTHER_FAMILIES)


# -- reading -------------------------------------------------------------------------


def read_hf_config(path: Path) -> ModelSpec:
    """Read a config.json as JSON and map it onto a ModelSpec."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(doc, dict):
        raise UsageError(f"{path} is not a config.json: expected a JSON object")
    return parse_hf_config(doc, str(path))


def parse_hf_config(doc: Mapping[str, Any], origin: str) -> ModelSpec:
    """A config.json's mapping as a ModelSpec; UsageError (one line) for a config that
    lacks what its family needs. An unknown model_type with the standard keys is read as
    a Llama, with a warning the answer carries."""
    kind = str(doc.get("model_type"))
    reader = _OWN_READERS.get(kind, _rotary_decoder)
    v = _identity(doc, origin) | reader(doc, origin, kind)
    if v.get("max_seq_len"):
        v["default_seq_len"] = min(v["max_seq_len"], 4096)
    elif v["family"] != "vit":
        v["default_seq_len"] = 4096
    v["default_dtype"] = DTYPES.get(str(doc.get("torch_dtype") or doc.get("dtype")), "bf16")
    v["quant"] = format_from_hf_config(doc)  # what the checkpoint stores its weights in
    try:
        return finish_spec({k: val for k, val in v.items() if val is not None})
    except UsageError as exc:
        raise UsageError(f"{origin}: {exc.message}") from exc


def _identity(doc: Mapping[str, Any], origin: str) -> dict[str, Any]:
    name = str(doc.get("_name_or_path") or Path(origin).parent.name or "config")
    ident = re.sub(r"[^a-z0-9.]+", "-", name.lower().rsplit("/", 1)[-1]).strip("-.") or "config"
    return {"id": ident, "name": name, "source": origin}


def _rotary_decoder(doc: Mapping[str, Any], origin: str, kind: str) -> dict[str, Any]:
    """Every family in FAMILIES, and an unknown model_type read as a Llama."""
    family = FAMILIES.get(kind)
    get = Reader(doc, origin, kind, (family or FAMILIES["llama"]).defaults)
    warnings: tuple[str, ...] = ()
    if family is None:
        get.known = False
        family = FAMILIES["llama"]
        warnings = (
            f"model_type {kind!r} is not one gpuscout knows: counted as a Llama (RMSNorm, "
            "gated MLP, no biases, full attention) from its standard keys",
        )
    v = _decoder_shape(get) | dict(family.shape) | {"family": family.family}
    if family.extra is not None:
        v |= family.extra(get)
    window = get("sliding_window", None)
    sliding = family.sliding(get, v["layers"]) if window else 0
    v |= {"sliding_window": window if sliding else None, "sliding_layers": sliding}
    return v | {"warnings": warnings, "note": _rope_note(doc)}


def _decoder_shape(get: Reader) -> dict[str, Any]:
    """The keys every rotary decoder's config has (Llama's)."""
    layers, hidden, heads = (get(key) for key in STANDARD[:3])  # in the order a reader names
    attention_bias = "attention_bias" in get.defaults and get("attention_bias", False, "bool")
    return {
        "layers": layers,
        "hidden": hidden,
        "heads": heads,
        "kv_heads": get("num_key_value_heads", heads),
        "head_dim": get("head_dim", None),
        "intermediate": get("intermediate_size"),
        "vocab": get("vocab_size"),
        "max_seq_len": get("max_position_embeddings", None),
        "tied_embeddings": get("tie_word_embeddings", False, "bool"),
        "rope_theta": float(get("rope_theta", _rope_theta(get.doc), "float")),
        "qkv_bias": attention_bias,
        "o_bias": attention_bias,
        "mlp_bias": "mlp_bias" in get.defaults and get("mlp_bias", False, "bool"),
    }


def _rope_theta(doc: Mapping[str, Any]) -> float:
    """rope_theta where newer files keep it (rope_parameters), else 10,000."""
    params = doc.get("rope_parameters")
    theta = params.get("rope_theta") if isinstance(params, dict) else None
    return float(theta) if isinstance(theta, (int, float)) and theta > 0 else 10_000.0


def _rope_note(doc: Mapping[str, Any]) -> str:
    """One line on a config's rope scaling (how a long context was reached), if any."""
    scaling = doc.get("rope_scaling") or doc.get("rope_parameters")
    if not isinstance(scaling, dict):
        return ""
    kind = scaling.get("rope_type") or scaling.get("type")
    if not kind or kind == "default":
        return ""
    factor, original = scaling.get("factor"), scaling.get("original_max_position_embeddings")
    note = f"rope scaling: {kind}"
    if isinstance(factor, (int, float)):
        note += f" x{factor:g}"
    if isinstance(original, int):
        note += f" from {original:,} positions"
    return note


# -- families read by their own function ---------------------------------------------


def _gemma3(doc: Mapping[str, Any], origin: str, kind: str) -> dict[str, Any]:
    """Gemma 3's multimodal checkpoint (Gemma3ForConditionalGeneration): the nested text
    config is the language model (a nested config leaves out every key equal to
    Gemma3TextConfig's default, the standard ones too), and its vision tower (SigLIP)
    and projector are counted from vision_config."""
    text = doc.get("text_config") or {}
    vision = doc.get("vision_config") or {}
    if not isinstance(text, dict) or not isinstance(vision, dict):
        raise UsageError(f"{origin}: gemma3 config's text_config and vision_config must be objects")
    text_doc = _GEMMA3_TEXT_STANDARD | text | {"model_type": "gemma3_text"}
    # the top-level flag ties the output layer (Gemma3ForConditionalGeneration's)
    if "tie_word_embeddings" in doc:
        text_doc["tie_word_embeddings"] = doc["tie_word_embeddings"]
    v = _rotary_decoder(text_doc, f"{origin} text_config", "gemma3_text")
    v["vision_params"] = siglip_params(vision, f"{origin} vision_config", v["hidden"])
    v["note"] = _rope_note(text_doc)
    return v


_GEMMA3_TEXT_STANDARD: Final = {
    "vocab_size": 262_208,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
}
_SIGLIP: Final = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 16,
    "vision_use_head": True,
}


def siglip_params(vision: Mapping[str, Any], origin: str, text_hidden: int) -> int:
    """Parameters of a SigLIP vision tower (SiglipVisionModel: patch conv, positions,
    pre-norm blocks with biases, final LayerNorm, the attention-pooling head when
    vision_use_head) and Gemma 3's projector (a vision x text matrix and an RMSNorm)."""
    get = Reader(vision, origin, "siglip_vision_model", _SIGLIP)
    h, i = int(get("hidden_size")), int(get("intermediate_size"))
    patch, channels = int(get("patch_size")), int(get("num_channels"))
    positions = (int(get("image_size")) // patch) ** 2
    embeddings = channels * patch * patch * h + h + positions * h
    attention = 4 * (h * h + h)
    mlp = 2 * h * i + i + h
    block = attention + mlp + 2 * 2 * h
    tower = embeddings + int(get("num_hidden_layers")) * block + 2 * h
    if get("vision_use_head", True, "bool"):  # probe, multi-head attention, LayerNorm, MLP
        tower += h + attention + 2 * h + mlp
    return tower + h * text_hidden + h


def _gpt2(doc: Mapping[str, Any], origin: str, kind: str) -> dict[str, Any]:
    get = Reader(doc, origin, kind, {"tie_word_embeddings": True})
    hidden = get("n_embd")
    return {
        "family": "decoder",
        "layers": get("n_layer"),
        "hidden": hidden,
        "heads": get("n_head"),
        "intermediate": get("n_inner", 4 * hidden),
        "vocab": get("vocab_size"),
        "positions": get("n_positions"),
        "max_seq_len": get("n_positions"),
        "tied_embeddings": get("tie_word_embeddings", True, "bool"),
        "mlp": "gelu",
        "norm": "layernorm",
        "bias": True,
        "fused_qkv": True,
    }


def _bert(doc: Mapping[str, Any], origin: str, kind: str) -> dict[str, Any]:
    """BERT with its masked-LM head; BertForMaskedLM (what bert-base-uncased's config
    names) has no pooler, BertModel and BertForPreTraining have one."""
    get = Reader(doc, origin, kind, {"type_vocab_size": 2})
    architectures = doc.get("architectures")
    masked_lm = isinstance(architectures, list) and "BertForMaskedLM" in architectures
    return {
        "family": "encoder",
        "layers": get("num_hidden_layers"),
        "hidden": get("hidden_size"),
        "heads": get("num_attention_heads"),
        "intermediate": get("intermediate_size"),
        "vocab": get("vocab_size"),
        "positions": get("max_position_embeddings"),
        "max_seq_len": get("max_position_embeddings"),
        "type_vocab": get("type_vocab_size", 2),
        "pooler": not masked_lm,
        "head": "mlm",
        "mlp": "gelu",
        "norm": "layernorm",
        "bias": True,
    }


def _vit(doc: Mapping[str, Any], origin: str, kind: str) -> dict[str, Any]:
    get = Reader(doc, origin, kind, {"num_channels": 3})
    labels = doc.get("id2label")
    classes = len(labels) if isinstance(labels, dict) and labels else None
    return {
        "family": "vit",
        "layers": get("num_hidden_layers"),
        "hidden": get("hidden_size"),
        "heads": get("num_attention_heads"),
        "intermediate": get("intermediate_size"),
        "image_size": get("image_size"),
        "patch_size": get("patch_size"),
        "channels": get("num_channels", 3),
        "num_classes": classes,
        "head": "classifier" if classes else "none",
        "mlp": "gelu",
        "norm": "layernorm",
        "bias": True,
    }


_OWN_READERS: Final[dict[str, Callable[[Mapping[str, Any], str, str], dict[str, Any]]]] = {
    "gemma3": _gemma3,
    "gpt2": _gpt2,
    "bert": _bert,
    "vit": _vit,
}
