"""What the llm workload's steps compute and move, counted on a meta-device model (no
memory, no arithmetic: even 8B parameters cost nothing to count): FLOPs of a prefill and
of one decoded token, prefill bytes, and the kernels each launches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpuscout.count.flops import attention_flops, count_forward_flops, count_traffic
from gpuscout.workloads.llama import LlamaShape, weight_bytes


def flops(shape: LlamaShape, prompt: int, context: float) -> tuple[int, float]:
    """(prefill FLOPs of one sequence, decode FLOPs of one token at mean ``context``),
    counted on a meta-device model, so even 8B parameters cost nothing to count."""
    meta, forward = _meta_forward(shape, prompt)
    pre = count_forward_flops(meta, lambda: forward(prompt))
    one = count_forward_flops(meta, lambda: forward(1))  # attention over 1 key per layer
    per_key = attention_flops(1, shape.heads, 1, 1, shape.head_dim)
    return pre, one + shape.layers * per_key * (context - 1)


def traffic(shape: LlamaShape, prompt: int, elem: int) -> dict[str, int]:
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
    from gpuscout.workloads.llama import _classes

    model = _classes().Llama(shape, False)
    model.init_weights(max_len)
    return model
