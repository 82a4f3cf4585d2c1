"""One model's shape (``ModelSpec``) and what can be counted from it without a framework:
parameters, split into the groups that precision and parallelism treat differently.

A shape comes from the data file (models.toml) or from a Hugging Face config.json. The
parameter count is always *computed* from the shape, never copied, so a typo in a row
shows up as a count far from the published one (a test checks every row within 2%).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

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

    @property
    def is_transformer(self) -> bool:
        return self.family in TRANSFORMER_FAMILIES

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
    """

    embedding: int
    head: int
    linear: int
    other: int

    @property
    def total(self) -> int:
        return self.embedding + self.head + self.linear + self.other


@dataclass(frozen=True)
class Linear:
    """One linear layer of a transformer block: its role, input and output widths."""

    role: str  # "q", "k", "v", "qkv", "o", "gate", "up", "down", "fc1", "fc2"
    fan_in: int
    fan_out: int
    copies: int = 1  # MoE: one per expert


def _req(value: int | None) -> int:
    if value is None:  # a loader bug: transformer rows are validated to have these
        raise ValueError("a transformer field is missing from the model shape")
    return value


def block_linears(spec: ModelSpec) -> tuple[Linear, ...]:
    """The linear layers of one transformer block, in forward order."""
    h, qw, kvw, i = _req(spec.hidden), spec.q_width, spec.kv_width, _req(spec.intermediate)
    attn: tuple[Linear, ...] = (
        (Linear("qkv", h, qw + 2 * kvw),)
        if spec.fused_qkv
        else (Linear("q", h, qw), Linear("k", h, kvw), Linear("v", h, kvw))
    ) + (Linear("o", qw, h),)
    n = spec.experts or 1
    mlp: tuple[Linear, ...]
    if spec.mlp == "swiglu":
        mlp = (Linear("gate", h, i, n), Linear("up", h, i, n), Linear("down", i, h, n))
    else:
        mlp = (Linear("fc1", h, i, n), Linear("fc2", i, h, n))
    return attn + mlp


def _block_other(spec: ModelSpec) -> int:
    """Norm weights, biases and the MoE router of one block."""
    h = _req(spec.hidden)
    norms = 2 * (2 * h if spec.norm == "layernorm" else h)
    bias = 0
    if spec.bias:
        bias = sum(lin.fan_out * lin.copies for lin in block_linears(spec))
    elif spec.qkv_bias:
        bias = spec.q_width + 2 * spec.kv_width
    router = h * spec.experts if spec.experts else 0
    return norms + bias + router


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
    h, layers = _req(spec.hidden), _req(spec.layers)
    linear = layers * sum(lin.fan_in * lin.fan_out * lin.copies for lin in block_linears(spec))
    other = layers * _block_other(spec)
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
    return ParamGroups(embedding, head, linear, other)


def count_params(spec: ModelSpec) -> int:
    return param_groups(spec).total


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


def iter_lora_targets(spec: ModelSpec, targets: str) -> Iterator[Linear]:
    """The block linears LoRA adapts: "attention" (q, k, v, o) or "all" (every linear)."""
    for lin in block_linears(spec):
        if targets == "all" or lin.role in ("q", "k", "v", "qkv", "o"):
            yield lin


def lora_params(spec: ModelSpec, rank: int, targets: str = "attention") -> int:
    """Trainable parameters of LoRA adapters: rank x (fan_in + fan_out) per adapted linear."""
    per_layer = sum(
        rank * (lin.fan_in + lin.fan_out) * lin.copies for lin in iter_lora_targets(spec, targets)
    )
    return _req(spec.layers) * per_layer
