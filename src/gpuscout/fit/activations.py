"""Activation memory, counted from the layer shapes the way autograd keeps tensors.

Training keeps, until the backward pass reaches it, every tensor a layer's backward needs
(Korthikanti et al. 2022 count these for a GPT block; here they are counted for the
block at hand: RMSNorm or LayerNorm, SwiGLU or GELU, grouped-query attention, rotary or
learned positions, no dropout). Which tensors are kept depends on how the model runs:

- ``amp``: fp32 weights under torch autocast (mixed precision). The residual stream is
  fp32 (the embedding and the norms run in fp32); each linear layer keeps its own 16-bit
  copy of an fp32 input, so q, k and v projections keep three.
- pure 16-bit (LoRA's frozen base, inference) or fp32: a linear keeps its input itself,
  shared by every linear that reads it, and a frozen linear keeps nothing (it needs only
  its weight to pass the gradient on), unless a LoRA adapter or a bitsandbytes
  quantized layer reads it.

Attention through FlashAttention keeps q, k, v, its output and one fp32 log-sum-exp per
head and token; without it, the softmax probabilities (fp32, plus a 16-bit copy) are kept:
heads x seq_len per token. Counts are bytes per token (per sample for CNN and MLP).
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuscout.fit.spec import (
    Linear,
    ModelSpec,
    attention_widths,
    block_linears,
    resnet_convs,
    resnet_out_channels,
    resnet_pool_hw,
)

LOGITS_SPIKE_BYTES = 12  # per token x vocab: see logits_spike()


@dataclass(frozen=True)
class Regime:
    """How a training step keeps tensors (see the module docstring)."""

    a: int  # bytes of an activation (the compute dtype)
    amp: bool  # fp32 weights under autocast
    full: bool  # every weight is trained (False: LoRA's frozen base)
    lora_roles: frozenset[str] = frozenset()  # linears with an adapter
    lora_rank: int = 0
    base_saves: bool = False  # a quantized base layer (bitsandbytes) keeps its input

    @property
    def r(self) -> int:
        """Bytes of the residual stream."""
        return 4 if self.amp else self.a

    def saves_input(self, lin: Linear) -> bool:
        return self.full or self.base_saves or lin.role in self.lora_roles


def _norm_saved(spec: ModelSpec, g: Regime) -> int:
    """Bytes per element a norm keeps. RMSNorm written as in Llama (x.float(), x * rsqrt
    (mean(x^2)), cast back, times the weight) keeps the fp32 input and, when its weight
    trains, the normalised input; LayerNorm keeps only its input."""
    if spec.norm == "layernorm":
        return 4 if g.amp else g.a
    return 4 + ((4 if g.amp else g.a) if g.full else 0)


def _inputs_saved(width: int, consumers: tuple[Linear, ...], g: Regime, fp32_input: bool) -> int:
    """Bytes per token kept for one tensor read by ``consumers``: under autocast each
    saving consumer makes its own 16-bit copy of an fp32 input; otherwise the tensor is
    kept once."""
    saving = [c for c in consumers if g.saves_input(c)]
    if g.amp and fp32_input:
        return len(saving) * 2 * width
    return g.a * width if saving else 0


def layer_train_bytes(spec: ModelSpec, g: Regime, seq: int, flash: bool, tp: int = 1) -> float:
    """Bytes per token one transformer block keeps for its backward pass."""
    h = spec.hidden or 0
    lins = block_linears(spec)  # an MoE's routed block
    attn_in = tuple(x for x in lins if x.role in _READ_HIDDEN)
    mlp_in = tuple(x for x in lins if x.role in ("gate", "up", "fc1"))
    # Replicated on every tensor-parallel rank: the norms and the column-parallel inputs.
    replicated = 2 * _norm_saved(spec, g) * h
    replicated += _inputs_saved(h, attn_in, g, fp32_input=g.amp)
    # Split across ranks: attention internals, MLP internals, row-parallel inputs.
    k = spec.experts_per_token or 1
    split = _attention_saved(spec, g.a, seq, flash) + k * _mlp_saved(spec, g, lins)
    split += _latents_saved(spec, g, lins) + _shared_saved(spec, g, lins)
    if spec.experts:
        routed, router = _routing_saved(spec, g, mlp_in)
        split += routed
        replicated += router
    else:
        split += _inputs_saved(h, mlp_in, g, fp32_input=g.amp)
    if g.lora_roles:  # each adapter keeps its rank-wide middle
        split += g.a * g.lora_rank * sum(1 for x in lins if x.role in g.lora_roles)
    return replicated + split / tp


# the projections that read a block's normed input (MLA: its two down-projections)
_READ_HIDDEN = frozenset({"q", "k", "v", "qkv", "q_a", "kv_a"})


def _attention_saved(spec: ModelSpec, a: int, seq: int, flash: bool) -> int:
    """Bytes per token the attention keeps between its projections."""
    heads = spec.heads or 0
    q, k, v = attention_widths(spec)
    out = v * heads // (spec.kv_heads or heads or 1)  # one v-wide output per query head
    if flash:  # q, k, v, output; fp32 log-sum-exp
        return a * (q + k + v + out) + 4 * heads
    # eager: k and v expanded to every head, softmax kept in fp32 and 16-bit
    return a * (2 * q + 2 * out) + heads * seq * (4 + (a if a < 4 else 0))


def _latents_saved(spec: ModelSpec, g: Regime, lins: tuple[Linear, ...]) -> int:
    """MLA: the compressed query and KV (each normed, then read by its up-projection)."""
    saved = 0
    for lin in lins:
        if lin.role in ("q_b", "kv_b"):
            saved += _norm_saved(spec, g) * lin.fan_in
            saved += _inputs_saved(lin.fan_in, (lin,), g, fp32_input=False)
    return saved


def _mlp_saved(spec: ModelSpec, g: Regime, lins: tuple[Linear, ...]) -> int:
    """Bytes per token one MLP (one expert's) keeps, its output layer's input included."""
    i = spec.expert_width if spec.experts else spec.intermediate or 0
    by_role = {lin.role: lin for lin in lins}
    mlp_out = by_role["down"] if "down" in by_role else by_role["fc2"]
    # SwiGLU: silu keeps the gate, the product keeps silu(gate) and up; GELU its input.
    mlp = 3 * g.a * i if spec.mlp == "swiglu" else g.a * i
    return mlp + _inputs_saved(i, (mlp_out,), g, fp32_input=False)


def _shared_saved(spec: ModelSpec, g: Regime, lins: tuple[Linear, ...]) -> int:
    """The shared expert(s) every token runs through beside its routed ones: their
    inputs (under autocast, a 16-bit copy each), the gated product and the down input."""
    shared = {lin.role: lin for lin in lins if lin.role.startswith("shared_")}
    if not shared:
        return 0
    s, h = spec.shared_intermediate, spec.hidden or 0
    inputs = (shared["shared_gate"], shared["shared_up"])
    kept = _inputs_saved(h, inputs, g, fp32_input=g.amp) + 3 * g.a * s
    return kept + _inputs_saved(s, (shared["shared_down"],), g, fp32_input=False)


def _routing_saved(spec: ModelSpec, g: Regime, mlp_in: tuple[Linear, ...]) -> tuple[int, int]:
    """(split, replicated) bytes per token of a mixture of experts' routing. Each routed
    token's input is gathered for its expert, and each expert output is kept to be
    weighted; the router's fp32 probabilities are small."""
    h, experts = spec.hidden or 0, spec.experts or 0
    k = spec.experts_per_token or 1
    saving = any(g.saves_input(x) for x in mlp_in)
    routed = k * g.a * h * (2 if saving else 1) + 4 * experts
    return routed, _inputs_saved(h, (Linear("router", h, experts),), g, g.amp)


def model_extra_train_bytes(spec: ModelSpec, g: Regime) -> float:
    """Bytes per token kept outside the blocks: the final norm and what reads it (the
    output layer, BERT's masked-LM transform, a ViT's final norm), and the token ids."""
    h = spec.hidden or 0
    head_trains = g.full
    extra = 16.0  # int64 token ids and labels
    extra += _norm_saved(spec, g) * h
    if spec.head == "lm" and head_trains:
        extra += (2 if g.amp else g.a) * h
    elif spec.head == "mlm":
        # transform dense (input), GELU (input), LayerNorm (input, fp32 under autocast),
        # and the tied decoder's 16-bit input
        saves = 1 if head_trains else 0
        extra += saves * (2 if g.amp else g.a) * h + g.a * h + (4 if g.amp else g.a) * h
        extra += saves * (2 if g.amp else g.a) * h
    return extra


def logits_spike(tokens: int, vocab: int, tp: int = 1) -> float:
    """Bytes of the loss over a vocabulary at the start of the backward pass:
    cross-entropy keeps the fp32 log-probabilities (4 bytes per token and vocabulary
    entry); its backward makes their gradient (4) and the gradient of the fp32 logits
    (4) while they are still held: 12 bytes, split over tensor-parallel ranks."""
    return LOGITS_SPIKE_BYTES * tokens * vocab / tp


def layer_infer_bytes(spec: ModelSpec, a: int, tp: int = 1) -> float:
    """Bytes per token alive at once inside one block in a no-grad forward: the residual
    and the norm output, plus the largest working set (the SwiGLU product holds silu(gate),
    up and their product; RoPE holds q, k, v and three rotated pieces; RMSNorm holds two
    fp32 copies and a 16-bit one)."""
    h = spec.hidden or 0
    q, k, v = attention_widths(spec)
    base = 2 * a * h
    mlp = (3 if spec.mlp == "swiglu" else 2) * a * _widest_mlp(spec) / tp
    attn = a * (4 * q + k + v) / tp
    norm = 8 * h + a * h if spec.norm == "rmsnorm" else a * h  # x.float(), x * rsqrt(..)
    return base + max(mlp, attn, norm)


def _widest_mlp(spec: ModelSpec) -> int:
    """The widest MLP a layer has: an expert, the shared expert(s), or a dense layer's
    (every layer's without experts; an MoE's first ``dense_layers``)."""
    if not spec.experts:
        return spec.intermediate or 0
    dense = (spec.intermediate or 0) if spec.dense_layers else 0
    return max(spec.expert_width, spec.shared_intermediate, dense)


# -- CNN (ResNet) --------------------------------------------------------------------


def resnet_train_bytes(spec: ModelSpec, image: int, a: int, amp: bool) -> float:
    """Bytes per image kept for the backward pass of a ResNet (conv -> BN -> ReLU):
    each conv's output (BN keeps its input), each BN output a ReLU follows (the in-place
    ReLU keeps its result, which the next conv reads), each block's sum (kept by its
    ReLU), the max pool's int64 indices, and the input image (fp32) with its 16-bit
    copy under autocast."""
    return sum(_resnet_kept(spec, image, a, amp).values())


def _resnet_kept(spec: ModelSpec, image: int, a: int, amp: bool) -> dict[int, float]:
    """Bytes per image kept, by block (-1: the stem, the input and the max pool)."""
    kept: dict[int, float] = {}
    for c in resnet_convs(spec, image):
        out = c.cout * c.out_hw**2
        # the conv's output (kept by BN), and the ReLU's result after the BN or the sum
        kept[c.block] = kept.get(c.block, 0.0) + a * out * (2 if c.relu or c.block_end else 1)
    pool = spec.resnet_width * resnet_pool_hw(spec, image) ** 2
    pixels = spec.channels * image * image
    kept[-1] += 8 * pool + 4 * pixels + (2 * pixels if amp else 0)
    return kept


def resnet_train_peak(
    spec: ModelSpec, image: int, a: int, amp: bool, batch: int, grad_bytes: float
) -> float:
    """The largest activations-plus-new-gradients of a ResNet's backward pass, walked
    block by block from the last: the blocks not yet reached keep their tensors, the
    blocks passed have made their weight gradients (``grad_bytes`` per parameter, net of
    the 16-bit weight copies released), and the block at hand holds its incoming
    gradient, the shortcut's and its largest map's. Late blocks hold most parameters and
    few activations, so the peak can come after the backward pass starts."""
    convs = resnet_convs(spec, image)
    kept = _resnet_kept(spec, image, a, amp)
    maps: dict[int, list[float]] = {}
    params: dict[int, float] = {}
    for c in convs:
        maps.setdefault(c.block, []).append(c.cout * c.out_hw**2)
        params[c.block] = params.get(c.block, 0.0) + c.cin * c.cout * c.k * c.k + 2 * c.cout
    fc = (spec.num_classes or 0) * (resnet_out_channels(spec) + 1)
    peak = batch * sum(kept.values())  # the start: everything kept
    grads = grad_bytes * fc
    blocks = sorted(maps, reverse=True)
    for j in blocks:
        held = sum(kept[k] for k in kept if k <= j)
        grads += grad_bytes * params[j]
        out = maps[j][-1] if j == -1 else max(maps[j])
        working = a * (2 * out + max(maps[j]))
        peak = max(peak, batch * (held + working) + grads)
    return peak


def resnet_infer_bytes(spec: ModelSpec, image: int, a: int) -> float:
    """Bytes per image alive at once in a no-grad forward: a block's input (kept for the
    shortcut) plus its two largest maps, at the worst block; and the input image."""
    worst = 0.0
    convs = resnet_convs(spec, image)
    blocks: dict[int, list[int]] = {}
    for c in convs:
        blocks.setdefault(c.block, []).append(c.cout * c.out_hw**2)
    prev = spec.channels * image * image
    for _, outs in sorted(blocks.items()):
        two = sum(sorted(outs)[-2:])
        worst = max(worst, a * (prev + two))
        prev = outs[-1] if len(outs) == 1 else max(outs)
    return worst + 4 * spec.channels * image * image


# -- MLP -----------------------------------------------------------------------------


def mlp_train_bytes(spec: ModelSpec, a: int) -> float:
    """Bytes per sample: the input batch, each hidden layer's ReLU output (kept by the
    ReLU and the next linear), the loss over the classes, and the backward's gradients
    of the widest layer (incoming and outgoing)."""
    dims = spec.mlp_dims
    kept = 4 * dims[0] + 8 + a * sum(dims[1:-1]) + LOGITS_SPIKE_BYTES * dims[-1]
    return kept + 2 * a * max(dims[1:])


def mlp_infer_bytes(spec: ModelSpec, a: int) -> float:
    dims = spec.mlp_dims
    return 4 * dims[0] + a * 2 * max(dims[1:])
