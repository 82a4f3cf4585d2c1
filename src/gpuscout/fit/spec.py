"""One model's shape (``ModelSpec``) and what can be counted from it without a framework:
parameters, split into the groups that precision and parallelism treat differently.

A shape comes from the data file (models.toml) or from a Hugging Face config.json. The
parameter count is always *computed* from the shape, never copied, so a typo in a row
shows up as a count far from the published one (a test checks every row within 2%), and
each config.json family is held to the count transformers itself makes
(tests/fit/test_families.py).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gpuscout.errors import UsageError

FAMILIES: Final = ("decoder", "moe-decoder", "encoder", "vit", "cnn", "mlp")
TRANSFORMER_FAMILIES: Final = ("decoder", "moe-decoder", "encoder", "vit")
HEADS: Final = ("lm", "mlm", "classifier", "none")


@dataclass(frozen=True)
class ModelSpec:
    """A model's shape. Transformer fields are None for cnn and mlp models."""

    id: str
    name: str
    family: str  # one of FAMILIES
    params: int  # total parameters (every expert of an MoE), computed from the shape
    source: str  # where the shape comes from (a config.json URL or path)
    default_seq_len: int | None = None
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    intermediate: int | None = None  # per expert for MoE
    vocab: int | None = None
    max_seq_len: int | None = None
    tied_embeddings: bool = False
    rope_theta: float = 10_000.0  # rotary embeddings' base (Llama 3: 500,000)
    experts: int | None = None  # MoE: experts per layer
    experts_per_token: int | None = None  # MoE: experts each token is routed to
    mlp: str = "swiglu"  # "swiglu" (gate, up, down) or "gelu" (fc1, fc2)
    norm: str = "rmsnorm"  # "rmsnorm" or "layernorm"
    bias: bool = False  # every linear layer has a bias (GPT-2, BERT, ViT)
    qkv_bias: bool = False  # only q, k and v have biases (Qwen2)
    fused_qkv: bool = False  # one projection makes q, k and v (GPT-2, the gpuscout encoder)
    positions: int = 0  # rows of a learned position table; 0 with rotary embeddings
    type_vocab: int = 0  # BERT's token-type embeddings
    pooler: bool = False  # BERT's pooler (a dense layer on the first token)
    head: str = "lm"  # one of HEADS: what the training loss is computed on
    num_classes: int | None = None  # classifier heads (ViT, ResNet)
    image_size: int | None = None
    patch_size: int | None = None
    channels: int = 3
    resnet_block: str | None = None  # "basic" or "bottleneck"
    resnet_stages: tuple[int, ...] = ()  # blocks per stage
    resnet_width: int = 64  # stem width; stage k is width * 2**k wide
    mlp_dims: tuple[int, ...] = ()  # an MLP's layer widths, input first
    default_dtype: str = "bf16"  # what the model is usually run in (the mlp workload: fp32)
    default_batch_size: int | None = None  # a gpuscout workload's own batch size
    published_params: int | None = None  # the count its authors publish (for the check)
    aliases: tuple[str, ...] = ()
    note: str = ""
    # -- mixtures of experts (Qwen2/3-MoE, DeepSeek) --
    moe_intermediate: int | None = None  # width of each routed expert; None: `intermediate`
    shared_intermediate: int = 0  # total width of the shared expert(s), one MLP
    shared_expert_gate: bool = False  # Qwen2-MoE: Linear(hidden, 1) gating the shared expert
    dense_layers: int = 0  # layers with a dense MLP of `intermediate` (DeepSeek's first k)
    router_bias: bool = False  # DeepSeek V3: a per-expert score-correction bias by the router
    # -- multi-head latent attention (DeepSeek V2/V3) --
    kv_lora_rank: int | None = None  # compressed KV width; None: ordinary attention
    q_lora_rank: int | None = None  # compressed query width (None: a plain q_proj)
    qk_rope_head_dim: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None
    # -- per-layer details --
    qk_norm: bool = False  # RMSNorm on q and k per head (Qwen3, Gemma 3)
    sandwich_norm: bool = False  # norms before and after attention and MLP: 4 per layer
    o_bias: bool = False  # the attention output has a bias (Llama's attention_bias)
    mlp_bias: bool = False  # the dense MLP's linears have biases (Llama's mlp_bias)
    sliding_window: int | None = None  # tokens a sliding-window layer attends to
    sliding_layers: int = 0  # how many layers use the window
    vision_params: int = 0  # a multimodal checkpoint's vision tower and projector
    # -- what the checkpoint's files hold --
    quant: str | None = None  # the stored weight format (a gpuscout.fit.quant format name)
    stored_bytes: int | None = None  # exact bytes of all weights in the files
    stored_layer_bytes: tuple[int, ...] = ()  # bytes of each transformer block, in order
    stored_embedding_bytes: int = 0  # the token embedding's bytes in the file
    stored_head_bytes: int = 0  # the untied output layer's bytes in the file (0 when tied)
    warnings: tuple[str, ...] = ()  # said with every answer

    @property
    def is_transformer(self) -> bool:
        return self.family in TRANSFORMER_FAMILIES

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def expert_width(self) -> int:
        """Width of one routed expert's MLP (the dense width without experts)."""
        return self.moe_intermediate or _req(self.intermediate)

    @property
    def q_width(self) -> int:
        return _req(self.heads) * _req(self.head_dim)

    @property
    def kv_width(self) -> int:
        return _req(self.kv_heads) * _req(self.head_dim)

    @property
    def tokens_per_sample(self) -> int | None:
        """ViT: patches + the class token (its fixed sequence length)."""
        if self.family != "vit":
            return None
        return (_req(self.image_size) // _req(self.patch_size)) ** 2 + 1


@dataclass(frozen=True)
class ParamGroups:
    """Parameters by how precision and parallelism treat them.

    ``linear``: weights of the linear (and conv) layers in the body, the ones int8/int4/
    NF4 quantize and tensor parallelism splits. ``embedding`` and ``head`` (an untied
    output layer) stay in 16-bit under weight quantization, as bitsandbytes and GPTQ/AWQ
    leave them. ``other``: norms, biases, routers, poolers: small, kept in 16-bit.
    ``vision``: a multimodal checkpoint's vision encoder and projector, counted whole.
    """

    embedding: int
    head: int
    linear: int
    other: int
    vision: int = 0  # a multimodal model's vision tower and projector: 16-bit, replicated

    @property
    def total(self) -> int:
        return self.embedding + self.head + self.linear + self.other + self.vision


@dataclass(frozen=True)
class Linear:
    """One linear layer of a transformer block: its role, input and output widths."""

    # "q", "k", "v", "qkv", "o"; MLA: "q_a", "q_b", "kv_a", "kv_b"; "gate", "up", "down",
    # "fc1", "fc2"; a shared expert's "shared_gate", "shared_up", "shared_down"
    role: str
    fan_in: int
    fan_out: int
    copies: int = 1  # MoE: one per expert


def _req(value: int | None) -> int:
    if value is None:  # a loader bug: transformer rows are validated to have these
        raise ValueError("a transformer field is missing from the model shape")
    return value


def block_linears(spec: ModelSpec, layer: int | None = None) -> tuple[Linear, ...]:
    """The linear layers of transformer block ``layer`` in forward order; without a layer,
    the typical block (in a mixture of experts, a routed one, not one of the dense
    first ``dense_layers``)."""
    return _attention_linears(spec) + _mlp_linears(spec, _dense(spec, layer))


def _dense(spec: ModelSpec, layer: int | None) -> bool:
    """Whether block ``layer`` has a dense MLP (every block of a model without experts)."""
    return not spec.experts or (layer is not None and layer < spec.dense_layers)


def _attention_linears(spec: ModelSpec) -> tuple[Linear, ...]:
    h, heads = _req(spec.hidden), _req(spec.heads)
    if spec.is_mla:  # DeepSeek's multi-head latent attention
        rank, rope = _req(spec.kv_lora_rank), _req(spec.qk_rope_head_dim)
        qk, v = _req(spec.qk_nope_head_dim) + rope, _req(spec.v_head_dim)
        q: tuple[Linear, ...] = (Linear("q", h, heads * qk),)
        if spec.q_lora_rank:
            q = (Linear("q_a", h, spec.q_lora_rank), Linear("q_b", spec.q_lora_rank, heads * qk))
        kv = (Linear("kv_a", h, rank + rope), Linear("kv_b", rank, heads * (qk - rope + v)))
        return (*q, *kv, Linear("o", heads * v, h))
    qw, kvw = spec.q_width, spec.kv_width
    if spec.fused_qkv:
        return (Linear("qkv", h, qw + 2 * kvw), Linear("o", qw, h))
    return (Linear("q", h, qw), Linear("k", h, kvw), Linear("v", h, kvw), Linear("o", qw, h))


def _mlp_linears(spec: ModelSpec, dense: bool) -> tuple[Linear, ...]:
    h = _req(spec.hidden)
    n, i = (1, _req(spec.intermediate)) if dense else (_req(spec.experts), spec.expert_width)
    if spec.mlp != "swiglu":
        return (Linear("fc1", h, i, n), Linear("fc2", i, h, n))
    mlp: tuple[Linear, ...] = (Linear("gate", h, i, n), Linear("up", h, i, n))
    mlp += (Linear("down", i, h, n),)
    s = 0 if dense else spec.shared_intermediate
    if s:  # the shared expert(s): one MLP every token runs through
        mlp += (Linear("shared_gate", h, s), Linear("shared_up", h, s), Linear("shared_down", s, h))
    return mlp


def attention_widths(spec: ModelSpec) -> tuple[int, int, int]:
    """Per token, the widths of q, of k and of v as attention reads them (MLA's k and v
    are expanded to every head from the compressed cache)."""
    if spec.is_mla:
        heads = _req(spec.heads)
        qk = _req(spec.qk_nope_head_dim) + _req(spec.qk_rope_head_dim)
        return heads * qk, heads * qk, heads * _req(spec.v_head_dim)
    return spec.q_width, spec.kv_width, spec.kv_width


def _layer_kinds(spec: ModelSpec) -> tuple[tuple[int, int], ...]:
    """(how many layers, one of them) for each kind of block: routed and dense."""
    layers, dense = _req(spec.layers), spec.dense_layers if spec.experts else 0
    return tuple((n, first) for n, first in ((layers - dense, dense), (dense, 0)) if n)


def _block_other(spec: ModelSpec, layer: int) -> int:
    """Norm weights, biases and the MoE router of block ``layer``."""
    h = _req(spec.hidden)
    norms = (4 if spec.sandwich_norm else 2) * (2 * h if spec.norm == "layernorm" else h)
    if spec.qk_norm:
        norms += 2 * _req(spec.head_dim)
    if spec.is_mla:
        norms += (spec.q_lora_rank or 0) + _req(spec.kv_lora_rank)
    router = 0
    if not _dense(spec, layer):
        experts = _req(spec.experts)
        router = h * experts + (experts if spec.router_bias else 0)
        router += h if spec.shared_expert_gate else 0
    return norms + _block_bias(spec, layer) + router


_MLP_ROLES: Final = frozenset({"gate", "up", "down", "shared_gate", "shared_up", "shared_down"})


def _block_bias(spec: ModelSpec, layer: int) -> int:
    """Biases of block ``layer``: of every linear (GPT-2, BERT), or of q, k and v (MLA:
    of its two down-projections), of the attention output, of a dense or shared MLP."""
    lins = block_linears(spec, layer)
    if spec.bias:
        return sum(lin.fan_out * lin.copies for lin in lins)
    bias = 0
    if spec.qkv_bias:
        qkv = ("q_a", "kv_a") if spec.is_mla else ("q", "k", "v", "qkv")
        bias += sum(lin.fan_out for lin in lins if lin.role in qkv)
    if spec.o_bias:
        bias += _req(spec.hidden)
    if spec.mlp_bias:  # not on routed experts
        bias += sum(lin.fan_out for lin in lins if lin.role in _MLP_ROLES and lin.copies == 1)
    return bias


@functools.lru_cache(maxsize=256)
def param_groups(spec: ModelSpec) -> ParamGroups:
    """Count every parameter of ``spec`` from its shape."""
    if spec.family == "mlp":
        dims = spec.mlp_dims
        weights = sum(a * b for a, b in itertools.pairwise(dims))
        return ParamGroups(0, 0, weights, sum(dims[1:]))
    if spec.family == "cnn":
        conv = bn = 0
        for c in resnet_convs(spec, _req(spec.image_size)):
            conv += c.cin * c.cout * c.k * c.k
            bn += 2 * c.cout
        classes = _req(spec.num_classes)
        fc_in = resnet_out_channels(spec)
        return ParamGroups(0, 0, conv + fc_in * classes, bn + classes)
    return _transformer_groups(spec)


def _transformer_groups(spec: ModelSpec) -> ParamGroups:
    h = _req(spec.hidden)
    linear = other = 0
    for count, layer in _layer_kinds(spec):
        linear += count * sum(x.fan_in * x.fan_out * x.copies for x in block_linears(spec, layer))
        other += count * _block_other(spec, layer)
    norm = 2 * h if spec.norm == "layernorm" else h
    embedding = _req(spec.vocab) * h if spec.vocab else 0
    embedding += spec.positions * h + spec.type_vocab * h
    head = 0
    if spec.family == "vit":
        patch = spec.channels * _req(spec.patch_size) ** 2 * h
        embedding = patch + h + h * _req(spec.tokens_per_sample)  # conv, class token, positions
        other += h + norm  # the patch conv's bias, the final norm
    elif spec.family == "encoder":
        other += norm  # the embedding norm (BERT is post-norm: no final norm)
    else:
        other += norm  # the final norm
    if spec.pooler:
        linear += h * h
        other += h
    if spec.head == "lm" and not spec.tied_embeddings:
        head = _req(spec.vocab) * h
    elif spec.head == "mlm":  # transform (dense + norm) and the tied decoder's bias
        linear += h * h
        other += h + norm + _req(spec.vocab)
    elif spec.head == "classifier":
        classes = _req(spec.num_classes)
        head = h * classes
        other += classes
    return ParamGroups(embedding, head, linear, other, spec.vision_params)


def count_params(spec: ModelSpec) -> int:
    return param_groups(spec).total


# -- building a spec from a row or a config.json ---------------------------------------


def finish_spec(values: Mapping[str, Any]) -> ModelSpec:
    """Fill the derived fields (kv_heads, head_dim, params) and check the combination;
    UsageError (the caller adds where) for an impossible shape."""
    v = dict(values)
    family = v["family"]
    if family not in ("cnn", "mlp"):
        _finish_transformer(v)
        _check_layers(v)
    _check_family(v)
    _check_choices(v)
    v.pop("params_source", None)
    spec = ModelSpec(**(v | {"params": 0}))
    return dataclasses.replace(spec, params=count_params(spec))


def _finish_transformer(v: dict[str, Any]) -> None:
    """kv_heads and head_dim filled in, and the head counts checked."""
    v.setdefault("kv_heads", v["heads"])
    if v.get("kv_lora_rank") is not None:  # MLA: q and k heads are nope + rope wide
        missing = [k for k in _MLA_DIMS if k not in v]
        if missing:
            raise UsageError(f"MLA attention (kv_lora_rank) needs {', '.join(missing)}")
        v.setdefault("head_dim", v["qk_nope_head_dim"] + v["qk_rope_head_dim"])
    if "head_dim" not in v:
        if v["hidden"] % v["heads"]:
            raise UsageError(f"hidden {v['hidden']} is not a multiple of heads {v['heads']}")
        v["head_dim"] = v["hidden"] // v["heads"]
    if v["heads"] % v["kv_heads"]:
        raise UsageError(f"heads {v['heads']} is not a multiple of kv_heads {v['kv_heads']}")
    if v["family"] in ("decoder", "moe-decoder", "encoder") and "vocab" not in v:
        raise UsageError("a language model needs a vocab size")


_MLA_DIMS: Final = ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")
_EXPERT_KEYS: Final = (
    "moe_intermediate",
    "shared_intermediate",
    "shared_expert_gate",
    "dense_layers",
    "router_bias",
)


def _check_layers(v: dict[str, Any]) -> None:
    """Expert and sliding-window keys: only with what they describe, and within the layers."""
    layers = v["layers"]
    if not v.get("experts"):
        given = [k for k in _EXPERT_KEYS if v.get(k)]
        if given:
            raise UsageError(f"{', '.join(given)} describe experts, and the model has none")
    if v.get("dense_layers", 0) >= layers:
        raise UsageError(f"dense_layers {v['dense_layers']} leaves no layer with experts")
    sliding = v.get("sliding_layers", 0)
    if sliding > layers:
        raise UsageError(f"sliding_layers {sliding} is more than the {layers} layers")
    if bool(sliding) != bool(v.get("sliding_window")):
        raise UsageError("sliding_window and sliding_layers (how many layers use it) go together")


def _check_family(v: dict[str, Any]) -> None:
    """What each family needs beyond the required keys (defaults filled in for a cnn)."""
    family = v["family"]
    if family == "vit" and "image_size" not in v:
        raise UsageError("a ViT needs image_size")
    if family == "cnn":
        v.setdefault("image_size", 224)
        v.setdefault("num_classes", 1000)
        if v["resnet_block"] not in ("basic", "bottleneck"):
            raise UsageError(f"resnet_block {v['resnet_block']!r} is not basic or bottleneck")
    if family == "mlp" and len(v["mlp_dims"]) < 2:
        raise UsageError("an MLP needs at least an input and an output width")
    if family == "moe-decoder" and v["experts_per_token"] > v["experts"]:
        raise UsageError("experts_per_token is larger than experts")


def _check_choices(v: dict[str, Any]) -> None:
    """The keys that take one of a few words."""
    if v.get("head", "lm") not in HEADS:
        raise UsageError(f"head {v['head']!r} is not one of {', '.join(HEADS)}")
    if v.get("head") == "classifier" and not v.get("num_classes") and v["family"] != "mlp":
        raise UsageError("a classifier head needs num_classes")
    if v.get("mlp", "swiglu") not in ("swiglu", "gelu"):
        raise UsageError(f"mlp {v['mlp']!r} is not swiglu or gelu")
    if v.get("norm", "rmsnorm") not in ("rmsnorm", "layernorm"):
        raise UsageError(f"norm {v['norm']!r} is not rmsnorm or layernorm")


# -- ResNet layers (torchvision's layout, v1.5: the stride on the 3x3 of a bottleneck) --


@dataclass(frozen=True)
class Conv:
    """One conv + batch-norm pair of a ResNet, with the size of its output map."""

    cin: int
    cout: int
    k: int
    stride: int
    out_hw: int  # output height (= width)
    relu: bool  # a ReLU follows the batch norm directly (inside a block body, the stem)
    block_end: bool = False  # the last conv of a block body: its output meets the shortcut
    shortcut: bool = False  # a projection shortcut (1x1 conv + BN)
    block: int = -1  # which block it belongs to (-1: the stem)


def _out(hw: int, k: int, stride: int) -> int:
    return (hw + 2 * (k // 2) - k) // stride + 1


@functools.lru_cache(maxsize=64)
def resnet_convs(spec: ModelSpec, image: int) -> tuple[Conv, ...]:
    """Every conv of the network in forward order, for a square ``image``."""
    width = spec.resnet_width
    hw = _out(image, 7, 2)
    convs = [Conv(spec.channels, width, 7, 2, hw, relu=True)]
    hw = _out(hw, 3, 2)  # the max pool
    cin = width
    bottleneck = spec.resnet_block == "bottleneck"
    block = 0
    for stage, count in enumerate(spec.resnet_stages):
        w = width * 2**stage
        for j in range(count):
            stride = 2 if stage > 0 and j == 0 else 1
            out_hw = _out(hw, 3, stride)
            if bottleneck:
                cout = 4 * w
                convs += [
                    Conv(cin, w, 1, 1, hw, True, block=block),
                    Conv(w, w, 3, stride, out_hw, True, block=block),
                    Conv(w, cout, 1, 1, out_hw, False, block_end=True, block=block),
                ]
            else:
                cout = w
                convs += [
                    Conv(cin, w, 3, stride, out_hw, True, block=block),
                    Conv(w, w, 3, 1, out_hw, False, block_end=True, block=block),
                ]
            if stride != 1 or cin != cout:
                convs.append(Conv(cin, cout, 1, stride, out_hw, False, shortcut=True, block=block))
            cin, hw = cout, out_hw
            block += 1
    return tuple(convs)


def resnet_out_channels(spec: ModelSpec) -> int:
    last: int = spec.resnet_width * 2 ** (len(spec.resnet_stages) - 1)
    return last * (4 if spec.resnet_block == "bottleneck" else 1)


def resnet_pool_hw(spec: ModelSpec, image: int) -> int:
    """Side of the map after the stem's max pool."""
    return _out(_out(image, 7, 2), 3, 2)


_ATTENTION_ROLES: Final = frozenset({"q", "k", "v", "qkv", "o", "q_a", "q_b", "kv_a", "kv_b"})


def iter_lora_targets(spec: ModelSpec, targets: str, layer: int | None = None) -> Iterator[Linear]:
    """The linears of a block LoRA adapts: "attention" (q, k, v, o and MLA's
    projections) or "all" (every linear)."""
    for lin in block_linears(spec, layer):
        if targets == "all" or lin.role in _ATTENTION_ROLES:
            yield lin


def lora_params(spec: ModelSpec, rank: int, targets: str = "attention") -> int:
    """Trainable parameters of LoRA adapters: rank x (fan_in + fan_out) per adapted linear."""
    return sum(
        count * rank * (lin.fan_in + lin.fan_out) * lin.copies
        for count, layer in _layer_kinds(spec)
        for lin in iter_lora_targets(spec, targets, layer)
    )


def kv_elements(spec: ModelSpec, seq_len: int, tp: int = 1) -> int:
    """K and V elements cached for one sequence of ``seq_len`` tokens, over all layers, on
    one tensor-parallel rank: ``2 x kv_heads / tp (at least 1) x head_dim`` per token and
    layer; MLA's compressed cache (``kv_lora_rank + qk_rope_head_dim``) is not split by
    tp; a sliding-window layer holds at most ``sliding_window`` tokens. Models without a
    decoder's cache (encoders, ViTs, CNNs, MLPs) hold none."""
    if spec.family not in ("decoder", "moe-decoder"):
        return 0
    if spec.is_mla:
        per_token = _req(spec.kv_lora_rank) + _req(spec.qk_rope_head_dim)
    else:
        per_token = 2 * max(1, _req(spec.kv_heads) // tp) * _req(spec.head_dim)
    sliding = spec.sliding_layers if spec.sliding_window else 0
    window = min(seq_len, spec.sliding_window or seq_len)
    return per_token * (sliding * window + (_req(spec.layers) - sliding) * seq_len)
