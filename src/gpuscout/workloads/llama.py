"""A Llama-shaped decoder with random weights (RMSNorm, rotary embeddings, grouped-query
attention, SwiGLU), and the two KV caches the llm workload compares.

Shapes are data (gpt-fast's ``transformer_configs``); weights are never downloaded: a
model is built on the ``meta`` device, materialised on the target device in the target
dtype, and filled with N(0, 0.02), so an 8B model costs its memory and no download.

- ``GrowingCache``: what a first generate loop does, ``torch.cat`` of each new key and
  value onto the cache (a reallocation and a full copy per token).
- ``StaticCache``: preallocated to the final length, written in place at the token's
  position; registered as buffers, so torch.compile and CUDA graphs see fixed addresses.
  It takes a whole prompt at positions 0..n-1 once, then one token at a time.

How the tuned (SDPA) attention keeps PyTorch's fused kernels eligible on a GPU:

- prefill: ``is_causal=True`` over the prompt's own keys, no mask tensor, and
  ``enable_gqa=True`` (PyTorch >= 2.5) rather than copies of the KV heads: the flash
  kernel takes exactly that (it takes no mask, and supports grouped-query attention).
  In fp32, which flash does not take, a grouped model's prefill falls to the math
  kernel (memory-efficient has no grouped-query support); a prompt is short.
- decode: one query against the whole static cache, the positions after it masked out.
  Flash is out (it takes no mask; ``is_causal`` with one query aligns it to key 0), so
  the memory-efficient kernel is the one to keep. It takes the boolean mask but not
  differing head counts (PyTorch's sdp_utils: mem-efficient has no grouped-query
  support), so ``enable_gqa`` would leave only the math kernel, and ``repeat_interleave``
  would copy the cache ``heads / kv_heads`` times each token. Instead the query heads
  that share a KV head are folded into the query-length dimension, (b, heads, 1, d) ->
  (b, kv_heads, heads / kv_heads, d): equal head counts, the cache read once, the same
  mask for every row (all are the same position). Slicing the cache to ``pos + 1`` keys
  instead of masking would change a shape every token, which a CUDA graph cannot.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from gpuscout.count.flops import attention_flops, count_forward_flops, count_traffic
from gpuscout.fit.models import find_model
from gpuscout.fit.spec import ModelSpec


@dataclass(frozen=True)
class LlamaShape:
    layers: int
    dim: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> LlamaShape:
        """The shape of a Llama-shaped row of the model table (family "decoder")."""
        if spec.family != "decoder" or spec.layers is None or spec.hidden is None:
            raise ValueError(f"{spec.id} is not a decoder the Llama model can build")
        return cls(
            spec.layers,
            spec.hidden,
            spec.heads or 0,
            spec.kv_heads or 0,
            spec.intermediate or 0,
            spec.vocab or 0,
            rope_theta=spec.rope_theta,
            tie_embeddings=spec.tied_embeddings,
        )


def shape_of(model_id: str) -> LlamaShape:
    """The shape of the model-table row ``model_id`` (UnknownNameError if none)."""
    return LlamaShape.from_spec(find_model(model_id))


@functools.cache
def _basics() -> SimpleNamespace:
    """RMSNorm, rotary embedding and the two KV caches."""
    import torch
    from torch import Tensor, nn

    class RMSNorm(nn.Module):
        def __init__(self, dim: int, eps: float) -> None:
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(dim))

        def forward(self, x: Tensor) -> Tensor:
            xf = x.float()
            out: Tensor = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)
            return out * self.weight

    def rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        xf = x.float()
        half = xf.shape[-1] // 2
        rotated = torch.cat((-xf[..., half:], xf[..., :half]), dim=-1)
        return (xf * cos + rotated * sin).type_as(x)

    class GrowingCache:
        def __init__(self) -> None:
            self.k: Tensor | None = None
            self.v: Tensor | None = None

        def update(self, k: Tensor, v: Tensor, pos: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
            self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
            keys = torch.arange(self.k.shape[2], device=k.device)
            return self.k, self.v, keys[None, :] <= pos[:, None]

    class StaticCache(nn.Module):
        k: Tensor
        v: Tensor
        causal: Tensor

        def __init__(self, b: int, kv_heads: int, max_len: int, hd: int, dtype: Any) -> None:
            super().__init__()
            shape = (b, kv_heads, max_len, hd)
            self.register_buffer("k", torch.zeros(shape, dtype=dtype), persistent=False)
            self.register_buffer("v", torch.zeros(shape, dtype=dtype), persistent=False)
            causal = torch.ones(max_len, max_len, dtype=torch.bool).tril()
            self.register_buffer("causal", causal, persistent=False)

        def update(self, k: Tensor, v: Tensor, pos: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
            """The keys and values to attend over, and their mask; mask None: causal
            over exactly ``k`` and ``v`` (a prompt written at positions 0..n-1)."""
            self.k.index_copy_(2, pos, k)
            self.v.index_copy_(2, pos, v)
            if k.shape[2] > 1:  # the prompt: its keys are all the cache holds so far
                return k, v, None
            return self.k, self.v, self.causal[pos]

    return SimpleNamespace(
        RMSNorm=RMSNorm, rope=rope, GrowingCache=GrowingCache, StaticCache=StaticCache
    )


@functools.cache
def _attention() -> Any:
    """The attention layer's class (q, k, v and o projections, rotary, a KV cache)."""
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn

    gqa = _sdpa_has_gqa(torch, F)
    rope = _basics().rope

    def attend(
        s: LlamaShape, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, sdpa: bool
    ) -> Tensor:
        """Attention of ``q`` over ``k`` and ``v`` by the kernel each case keeps eligible
        (the module docstring says why); ``mask`` None: causal over exactly these keys."""
        b, _, n, _ = q.shape
        groups = s.heads // s.kv_heads
        if not sdpa:
            return written_out(s, q, k, v, mask, groups)
        if mask is None and gqa:  # prefill: the flash kernel's case
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        if mask is None:  # PyTorch < 2.5: no enable_gqa, so copies of the KV heads
            k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if n == 1:  # decode: the query heads of a KV head as its rows (see above)
            rows = q.reshape(b, s.kv_heads, groups, s.head_dim)
            a = F.scaled_dot_product_attention(rows, k, v, attn_mask=mask)
            return a.reshape(b, s.heads, 1, s.head_dim)
        # several queries and a mask (a growing cache under SDPA): never timed
        k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def written_out(
        s: LlamaShape, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, groups: int
    ) -> Tensor:
        """softmax(QK^T / sqrt(d)) V in fp32, as a first implementation writes it."""
        k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
        if mask is None:
            n = q.shape[2]
            mask = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
        scores = (q @ k.transpose(-2, -1)) * s.head_dim**-0.5
        scores = scores.masked_fill(~mask, float("-inf"))
        out: Tensor = scores.float().softmax(-1).type_as(q) @ v
        return out

    class Attention(nn.Module):
        def __init__(self, s: LlamaShape, sdpa: bool) -> None:
            super().__init__()
            self.s, self.sdpa = s, sdpa
            self.wq = nn.Linear(s.dim, s.heads * s.head_dim, bias=False)
            self.wk = nn.Linear(s.dim, s.kv_heads * s.head_dim, bias=False)
            self.wv = nn.Linear(s.dim, s.kv_heads * s.head_dim, bias=False)
            self.wo = nn.Linear(s.heads * s.head_dim, s.dim, bias=False)
            self.kv: Any = None
            self._kv_len = 0

        def forward(self, x: Tensor, cos: Tensor, sin: Tensor, pos: Tensor) -> Tensor:
            b, n, _ = x.shape
            s = self.s
            q = self.wq(x).view(b, n, s.heads, s.head_dim).transpose(1, 2)
            k = self.wk(x).view(b, n, s.kv_heads, s.head_dim).transpose(1, 2)
            v = self.wv(x).view(b, n, s.kv_heads, s.head_dim).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            mask: Tensor | None = None  # None: causal over exactly these n keys
            if self.kv is not None:
                k, v, mask = self.kv.update(k, v, pos)
            if x.is_meta:  # only FLOP counting reads it; compiled decoding never writes it
                self._kv_len = k.shape[2]
            a = attend(s, q, k, v, mask, self.sdpa)
            out: Tensor = self.wo(a.transpose(1, 2).reshape(b, n, -1))
            return out

        def extra_flops(self, inputs: tuple[Tensor, ...], output: Tensor) -> int:
            b, n, _ = inputs[0].shape
            return attention_flops(b, self.s.heads, n, self._kv_len, self.s.head_dim)

    return Attention


@functools.cache
def _classes() -> SimpleNamespace:
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn

    basics = _basics()
    RMSNorm = basics.RMSNorm
    Attention = _attention()

    class Block(nn.Module):
        def __init__(self, s: LlamaShape, sdpa: bool) -> None:
            super().__init__()
            self.attn_norm, self.ffn_norm = RMSNorm(s.dim, s.norm_eps), RMSNorm(s.dim, s.norm_eps)
            self.attn = Attention(s, sdpa)
            self.w1 = nn.Linear(s.dim, s.ffn, bias=False)  # gate
            self.w3 = nn.Linear(s.dim, s.ffn, bias=False)  # up
            self.w2 = nn.Linear(s.ffn, s.dim, bias=False)  # down

        def forward(self, x: Tensor, cos: Tensor, sin: Tensor, pos: Tensor) -> Tensor:
            x = x + self.attn(self.attn_norm(x), cos, sin, pos)
            h = self.ffn_norm(x)
            out: Tensor = x + self.w2(F.silu(self.w1(h)) * self.w3(h))
            return out

    class Llama(nn.Module):
        def __init__(self, s: LlamaShape, sdpa: bool) -> None:
            super().__init__()
            self.s = s
            self.tok = nn.Embedding(s.vocab, s.dim)
            self.layers = nn.ModuleList(Block(s, sdpa) for _ in range(s.layers))
            self.norm = RMSNorm(s.dim, s.norm_eps)
            self.output = None if s.tie_embeddings else nn.Linear(s.dim, s.vocab, bias=False)

        def init_weights(self, max_len: int) -> None:
            """N(0, 0.02) weights, unit norms, and the rotary tables up to ``max_len``."""
            with torch.no_grad():
                for name, p in self.named_parameters():
                    p.fill_(1.0) if name.endswith("norm.weight") else p.normal_(0.0, 0.02)
            dev = self.tok.weight.device
            hd = self.s.head_dim
            inv = 1.0 / self.s.rope_theta ** (torch.arange(0, hd, 2, device=dev).float() / hd)
            angles = torch.outer(torch.arange(max_len, device=dev).float(), inv)
            angles = torch.cat([angles, angles], dim=-1)
            self.register_buffer("cos", angles.cos(), persistent=False)
            self.register_buffer("sin", angles.sin(), persistent=False)

        def set_caches(self, make: Any) -> None:
            layer: Any
            for layer in self.layers:
                layer.attn.kv = make()

        cos: Tensor
        sin: Tensor

        def forward(self, tokens: Tensor, pos: Tensor) -> Tensor:
            """Logits for the last position only: generation needs nothing else."""
            x = self.tok(tokens)
            cos, sin = self.cos[pos], self.sin[pos]
            for layer in self.layers:
                x = layer(x, cos, sin, pos)
            x = self.norm(x[:, -1:])
            out = self.output(x) if self.output is not None else F.linear(x, self.tok.weight)
            logits: Tensor = out
            return logits

        def extra_flops(self, inputs: tuple[Tensor, ...], output: Tensor) -> int:
            # A tied output layer is F.linear on the embedding, invisible to Linear hooks.
            return 2 * inputs[0].shape[0] * self.s.dim * self.s.vocab if self.output is None else 0

    return SimpleNamespace(
        Llama=Llama,
        GrowingCache=basics.GrowingCache,
        StaticCache=basics.StaticCache,
        RMSNorm=RMSNorm,
    )


def _sdpa_has_gqa(torch: Any, F: Any) -> bool:
    """Whether this PyTorch's SDPA takes ``enable_gqa`` (2.5+): asked by calling it on a
    tiny input, not read from its docstring, which ``python -OO`` strips."""
    try:
        q, kv = torch.zeros(1, 2, 1, 8), torch.zeros(1, 1, 1, 8)
        F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
    except (TypeError, RuntimeError):
        return False
    return True


def make_llama(shape: LlamaShape, device: Any, dtype: Any, *, sdpa: bool, max_len: int) -> Any:
    """Random-weight model on ``device`` in ``dtype`` (call torch.manual_seed first)."""
    import torch

    with torch.device("meta"):
        model = _classes().Llama(shape, sdpa)
    model = model.to(dtype).to_empty(device=device)
    model.init_weights(max_len)
    return model.eval()


def growing_cache() -> Any:
    return _classes().GrowingCache()


def static_cache(shape: LlamaShape, b: int, max_len: int, dtype: Any, device: Any) -> Any:
    return _classes().StaticCache(b, shape.kv_heads, max_len, shape.head_dim, dtype).to(device)


def weight_bytes(model: Any) -> int:
    """Bytes one decode step must read: every weight, except an untied embedding table,
    of which a step reads only its tokens' rows."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    if model.output is not None:
        total -= model.tok.weight.numel() * model.tok.weight.element_size()
    return int(total)


# -- what its steps compute and move, counted on a meta-device model (no memory, no
# arithmetic: even 8B parameters cost nothing to count) -----------------------------------
def step_flops(shape: LlamaShape, prompt: int, context: float) -> tuple[int, float]:
    """(prefill FLOPs of one sequence, decode FLOPs of one token at mean ``context``),
    counted on a meta-device model, so even 8B parameters cost nothing to count."""
    meta, forward = _meta_forward(shape, prompt)
    pre = count_forward_flops(meta, lambda: forward(prompt))
    one = count_forward_flops(meta, lambda: forward(1))  # attention over 1 key per layer
    per_key = attention_flops(1, shape.heads, 1, 1, shape.head_dim)
    return pre, one + shape.layers * per_key * (context - 1)


def step_traffic(shape: LlamaShape, prompt: int, elem: int) -> dict[str, int]:
    """Prefill bytes (weights read once, activations written and read once) and the
    kernels a prefill and a one-token decode forward launch (meta device, nothing run)."""
    meta, forward = _meta_forward(shape, prompt)
    pre = count_traffic(meta, lambda: forward(prompt))
    one = count_traffic(meta, lambda: forward(1))
    weights = weight_bytes(meta) * elem // meta.tok.weight.element_size()
    return {
        "prefill_bytes": weights + 2 * pre.activation_elems * elem,
        "prefill_ops": pre.forward_ops,
        "decode_ops": one.forward_ops,
    }


def _meta_forward(shape: LlamaShape, prompt: int) -> tuple[Any, Callable[[int], Any]]:
    """The model on the meta device, and a forward pass of ``n`` tokens through it."""
    import torch

    with torch.device("meta"):
        meta = make_meta(shape, prompt)

    def forward(n: int) -> Any:
        return meta(
            torch.zeros(1, n, dtype=torch.long, device="meta"), torch.arange(n, device="meta")
        )

    return meta, forward


def make_meta(shape: LlamaShape, max_len: int) -> Any:
    model = _classes().Llama(shape, False)
    model.init_weights(max_len)
    return model
