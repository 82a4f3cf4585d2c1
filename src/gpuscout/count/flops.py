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
from dataclasses import dataclass
from typing import Any, NamedTuple

TRAIN_MULTIPLIER = 3


class StepTraffic(NamedTuple):
    """What one training step moves and launches (``training_traffic``)."""

    bytes_per_step: int  # activations at the width the step ran in
    host_ops_per_step: int
    # The same step under bf16 autocast (activations 2 bytes; weights, gradients and
    # optimizer state stay fp32): what an fp32 run's program moves on a GPU with bf16.
    bytes_per_step_bf16: int


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


# -- bytes and kernel launches, for the predictor ----------------------------------------
#
# The fewest bytes a training step must move to and from device memory:
#   weights read in forward and again in backward       2 W
#   gradients written                                    1 W
#   optimizer: reads weights, grads and its states,      (3 + 2 s) W   (s states per weight:
#     writes weights and states                                        SGD 0, momentum 1, Adam 2)
#   activations written in forward, read in backward     2 A
# W counts the weights as stored (fp32 master weights under autocast), A the outputs of the
# leaf modules (views excluded) and of the model itself, at the autocast element size.
# Anything re-read from cache, and the temporaries a kernel writes and reads back (BN
# statistics, softmax), is left out: this is a floor, as FLOPs are.
#
# Host ops are the kernel launches a step makes: the non-view ATen ops of one forward and
# one backward, counted on the meta device with a dispatch mode (no profiler, no device),
# plus the optimizer's (below). A fused kernel in a compiled program launches fewer.

OPTIMIZER_STATES = {"sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}
# ATen ops one update applies per weight tensor (torch's for-loop implementations);
# "foreach" applies each of them once to all tensors, "fused" is one kernel.
OPTIMIZER_OPS = {"sgd": 1, "sgd-momentum": 3, "adam": 10, "adamw": 11}


_NO_KERNEL = frozenset({"empty", "empty_like", "empty_strided", "new_empty"})


@dataclass(frozen=True)
class Traffic:
    activation_elems: int  # written by one forward (leaf-module outputs and the model's)
    forward_ops: int  # kernels one forward launches
    backward_ops: int  # kernels its backward launches (0 when not counted)


def count_traffic(model: Any, run: Callable[[], Any], backward: bool = False) -> Traffic:
    """Activation elements and kernel launches of ``run()`` (a forward through
    ``model`` that returns the output); with ``backward`` also the backward's launches.
    Meant for a model on the ``meta`` device: nothing is computed."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    def dispatch(self: Any, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        # A view launches no kernel, and neither does an allocation.
        if not func.is_view and func.overloadpacket.__name__ not in _NO_KERNEL:
            self.count += 1
        return func(*args, **(kwargs or {}))

    # Built with type(): torch's mode class is untyped, and strict mypy forbids
    # subclassing it in a class statement.
    ops = type("_Ops", (TorchDispatchMode,), {"__torch_dispatch__": dispatch, "count": 0})

    # Counted tensors are kept alive until the count is done: a freed tensor's id() is
    # reused by the next one allocated, which would then pass for an in-place op's
    # output and go uncounted (a third of a Llama prefill's activations, without grad).
    counted: dict[int, Any] = {}

    def add(out: Any) -> None:
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t._base is None:
                counted.setdefault(id(t), t)

    def hook(module: Any, inputs: tuple[Any, ...], output: Any) -> None:
        if next(module.children(), None) is None:
            add(output)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    fwd, bwd = ops(), ops()
    try:
        with torch.set_grad_enabled(backward), fwd:
            out = run()
        add(out)
        if backward:
            loss = (out[0] if isinstance(out, (tuple, list)) else out).float().sum()
            with bwd:
                loss.backward()
    finally:
        for h in handles:
            h.remove()
    return Traffic(sum(t.numel() for t in counted.values()), fwd.count, bwd.count)


def training_traffic(
    model: Any,
    run: Callable[[], Any],
    *,
    optimizer: str,
    optimizer_impl: str,
    activation_bytes_per_elem: int,
) -> StepTraffic:
    """Bytes and host ops of one training step of ``model`` (meta).

    ``optimizer_impl`` is "fused", "foreach" or "loop" (torch's per-tensor loop, its
    default on the CPU).
    """
    t = count_traffic(model, run, backward=True)
    params = list(model.parameters())
    weights = sum(p.numel() * p.element_size() for p in params)
    states = OPTIMIZER_STATES[optimizer]
    fixed = (2 + 1 + 3 + 2 * states) * weights  # fp32 weights, grads, optimizer states

    def at(width: int) -> int:
        return int(fixed + 2 * t.activation_elems * width)

    per_tensor = OPTIMIZER_OPS[optimizer]
    opt_ops = {"fused": 1, "foreach": per_tensor}.get(optimizer_impl, per_tensor * len(params))
    return StepTraffic(
        at(activation_bytes_per_elem), t.forward_ops + t.backward_ops + opt_ops, at(2)
    )


def optimizer_impl(kwargs: Any, device: Any) -> str:
    """Which implementation torch uses given the constructor's ``fused``/``foreach``
    keywords: with neither, foreach on CUDA and the per-tensor loop elsewhere."""
    if kwargs.get("fused"):
        return "fused"
    if kwargs.get("foreach") or getattr(device, "type", str(device)) == "cuda":
        return "foreach"
    return "loop"
