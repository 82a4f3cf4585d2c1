"""FLOPs counted from the model's layer shapes, the way MFU is counted.

Only matrix products count: a matmul of (m x k) by (k x n) is 2*m*n*k FLOPs, a
convolution is the matmul it lowers to. Bias adds, activations, norms and softmax are
left out (they are memory-bound and a few percent of the total, and leaving them out is
the convention of nanoGPT's and PaLM's MFU). Training is 3x the forward pass: the
backward computes a gradient for the input and one for the weights, each a matmul of
the forward's size.

The count runs the model once with forward hooks; building the model on the ``meta``
device makes that free even for an 8B-parameter model (no memory, no arithmetic).
A module that does matrix products outside ``nn.Linear``/``nn.Conv2d`` (attention's
Q.K^T and A.V) reports them through an ``extra_flops(inputs, output) -> int`` method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TRAIN_MULTIPLIER = 3


def matmul_flops(m: int, n: int, k: int) -> int:
    return 2 * m * n * k


def attention_flops(batch: int, heads: int, q_len: int, kv_len: int, head_dim: int) -> int:
    """Q.K^T and A.V: two matmuls of (q_len x head_dim) by (head_dim x kv_len) per head.

    Counted in full even when a causal mask makes half of it zeros: the eager path
    computes all of it, and flash attention's skipped blocks are its own merit.
    """
    return 2 * batch * heads * matmul_flops(q_len, kv_len, head_dim)


def count_forward_flops(model: Any, run: Callable[[], object]) -> int:
    """FLOPs of the matrix products ``run()`` makes through ``model``'s modules."""
    import torch

    total = 0

    def hook(module: Any, inputs: tuple[Any, ...], output: Any) -> None:
        nonlocal total
        if isinstance(module, torch.nn.Linear):
            rows = inputs[0].numel() // module.in_features
            total += matmul_flops(rows, module.out_features, module.in_features)
        elif isinstance(module, torch.nn.Conv2d):
            n, _, h, w = output.shape
            kh, kw = module.kernel_size
            per_out = (module.in_channels // module.groups) * kh * kw
            total += matmul_flops(n * h * w, module.out_channels, per_out)
        extra = getattr(module, "extra_flops", None)
        if callable(extra):
            total += int(extra(inputs, output))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return total
