"""How far two floating-point runs of one computation may differ: bounds derived from
the arithmetic, with a float64 run of the same model as the arbiter.

The rounding model (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3):
each fp32 operation is exact to a relative u = 2^-24 (about 6e-8), and a sum or dot
product of K terms, accumulated in any order (blocked, pairwise, with FMA, split across
threads), is within K*u*sum|a_i*b_i| of the exact value (gamma_K ~ K*u while K*u << 1).
Two programs that compute the same thing in another order (AVX-512 or AMX kernels,
oneDNN's choices, thread counts, channels_last, SDPA, a static KV cache) may each land
anywhere in that interval, so they are not compared with each other but each with a
float64 run, whose own rounding (2^-53) is negligible; that takes the machine out.

Through a network the first-order errors add: an op whose inputs are off by a relative
e and which reduces over K terms is off by at most (e + K*u) relative to the magnitude
of its terms. So a logit is off by at most S*u*sum_d|W_vd*h_d|, S the sum of the
reduction lengths on the way (the "path length" below) and the last factor the output
layer's magnitude for that logit. Assumed, and stated where each bound is used: no op
amplifies a relative error by much more than 1 (normalisation is scale-invariant,
residual sums and a batch norm's x - mean do not cancel catastrophically), and no value
sits within rounding of a kink (ReLU at 0, a max-pool tie) or of a tied argmax; the
greedy-token check below allows for ties.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

U32 = 2.0**-24  # fp32 unit roundoff
IMPL_FLAGS = {"foreach", "fused", "capturable", "differentiable"}  # kernels, not the rule


def fp32(kw: dict[str, Any]) -> dict[str, Any]:
    """Workload config keywords with ``dtype: fp32`` pinned. A tuned run autocasts to
    bf16 where the hardware does bf16 natively (a CPU with AMX, an Ampere+ GPU:
    workloads.base.amp_dtype): another computation, not another order of the same one."""
    return {**kw, "options": {**kw.get("options", {}), "dtype": "fp32"}}


def assert_same_optimizer(a: Any, b: Any) -> None:
    """The same update rule and hyperparameters (lr, momentum, betas, eps, weight
    decay, ...), only the kernel (fused, foreach) may differ: exactly, they are numbers
    copied from the same source, nothing is computed."""
    assert type(a) is type(b)
    keep = [
        {k: v for k, v in g.items() if k not in IMPL_FLAGS | {"params"}} for g in a.param_groups
    ]
    other = [
        {k: v for k, v in g.items() if k not in IMPL_FLAGS | {"params"}} for g in b.param_groups
    ]
    assert keep == other


# -- greedy decoding: teacher-forced against float64 ---------------------------------------


def llama_path_length(
    *, layers: int, dim: int, heads: int, head_dim: int, ffn: int, keys: int
) -> int:
    """S for one logit of a Llama-shaped decoder (workloads/llama.py) attending over at
    most ``keys`` keys, per layer: RMSNorm (a mean over dim), the q/k/v projections
    (dim), rotary (2 ops), the scores (head_dim), softmax (exp, a sum over keys), the
    weighted sum of V (keys), the output projection (heads*head_dim), a residual add,
    RMSNorm (dim), gate and up projections (dim), SiLU times up (3 ops), the down
    projection (ffn), a residual add; then the final RMSNorm and the output layer (dim
    each). q, k and v are parallel branches: the scores' error reaches the output
    multiplied by the scores themselves, which are << 1 at N(0, 0.02) weights."""
    per_layer = (
        dim
        + dim
        + 2
        + head_dim
        + (keys + 2)
        + keys
        + heads * head_dim
        + 1
        + dim
        + dim
        + 3
        + ffn
        + 1
    )
    return layers * per_layer + 2 * dim


class Float64Llama:
    """A float64 copy of a llama.py model with no KV cache: every call recomputes the
    whole prefix with causal attention, a path that neither cache takes. (It computes
    RMSNorm, rotary and softmax in fp32 where the model asks for ``.float()``: ops
    already in S, so its own error is within the same bound as an fp32 run's.)"""

    def __init__(self, model: Any) -> None:
        self.s = model.s
        self.model = copy.deepcopy(model).double()
        self.model.set_caches(lambda: None)
        out = self.model.output
        self.abs_weight = (out.weight if out is not None else self.model.tok.weight).detach().abs()
        self._h: Any = None
        self.model.norm.register_forward_hook(self._keep)

    def _keep(self, module: Any, inputs: Any, output: Any) -> None:
        self._h = output.detach()

    def logits(self, tokens: Any) -> tuple[Any, Any]:
        """The last position's logits (b x vocab) and its scale max_v sum_d |W_vd h_d| (b)."""
        with torch.no_grad():
            out = self.model(tokens, torch.arange(tokens.shape[1], device=tokens.device))
        h = self._h[:, -1].abs()
        return out[:, -1], (h @ self.abs_weight.T).amax(-1)


def assert_greedy_tokens(model: Any, prompt: Any, *runs: Any) -> None:
    """Each run (batch x new tokens from an fp32 generate with ``model``'s weights, by
    whatever path) is, at every position and given its own prefix (teacher forcing), a
    greedy choice of the float64 model up to fp32 rounding.

    Bound: an fp32 path's logits and the float64 copy's are each within
    eps = S*u*scale of the exact ones (module docstring; S = ``llama_path_length`` over
    the longest prefix, scale = max_v sum_d |W_vd h_d| at that position). A path picks
    token t over the exact argmax m only if its own logit_t >= logit_m, so in float64
    logit_m - logit_t <= 4*eps. A near-tie within that may flip, and the runs then go on
    from different prefixes, each checked on its own; a wrong cache slot, rotary angle
    or mask moves the logits by far more than 4*eps (~2e-4 for llama-tiny against logit
    gaps of ~5e-2), and fails here.
    """
    twin = Float64Llama(model)
    s, p = model.s, prompt.shape[1]
    for run in runs:
        assert run.shape[0] == prompt.shape[0] and run.dtype == prompt.dtype
        seq = torch.cat([prompt, run.to(prompt.device)], 1)
        length = llama_path_length(
            layers=s.layers,
            dim=s.dim,
            heads=s.heads,
            head_dim=s.head_dim,
            ffn=s.ffn,
            keys=seq.shape[1],
        )
        for i in range(run.shape[1]):
            logits, scale = twin.logits(seq[:, : p + i])
            tol = 4 * length * U32 * scale
            gap = logits.amax(-1) - logits.gather(-1, run[:, i : i + 1]).squeeze(-1)
            for row in (gap > tol).nonzero().flatten().tolist():
                raise AssertionError(
                    f"token {i} of row {row}: {int(run[row, i])}, whose float64 logit is "
                    f"{float(gap[row]):.3g} below the largest ({int(logits[row].argmax())}); "
                    f"fp32 rounding allows {float(tol[row]):.3g}"
                )


# -- training losses: a float64 run and each step's bound ----------------------------------


def _reduction_length(module: Any, inputs: tuple[Any, ...]) -> int:
    """K of the reductions a module does (2 for its own elementwise rounding besides)."""
    x = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
    if isinstance(module, nn.Conv2d):
        k = module.in_channels // module.groups * math.prod(module.kernel_size)
    elif isinstance(module, nn.Linear):
        k = module.in_features
    elif isinstance(module, nn.BatchNorm2d) and x is not None:
        k = 2 * (x.numel() // x.shape[1])  # mean, then variance, over N*H*W
    elif isinstance(module, nn.LayerNorm):
        k = 2 * math.prod(module.normalized_shape)
    elif isinstance(module, nn.AdaptiveAvgPool2d) and x is not None:
        k = x.shape[-1] * x.shape[-2]
    else:
        k = 0
    return k + 2


def adam_step_bound(step: int, beta1: float, beta2: float) -> float:
    """max |m_hat / (sqrt(v_hat) + eps)| at ``step`` (1-based), any gradients: by
    Cauchy-Schwarz, sum_k b1^k g_k <= sqrt(sum_k b1^2k / b2^k) * sqrt(sum_k b2^k g_k^2)."""
    ratio = sum(beta1 ** (2 * k) / beta2**k for k in range(step))
    return (1 - beta1) / (1 - beta1**step) * math.sqrt((1 - beta2**step) / (1 - beta2) * ratio)


def float64_training(
    wl: Any,
    steps: int,
    *,
    head: Callable[[Any], tuple[Any, str, Any, Any]],
    extra_length: Callable[[Any, tuple[Any, ...]], int] | None = None,
) -> list[tuple[float, float]]:
    """Train ``wl`` (a step workload as built in fp32, not yet stepped) for ``steps``
    steps in float64; per step, its loss and how far an fp32 run of the same program
    (same weights, batches and optimizer; any kernels and order) may be from it.

    ``head(model)``: the module whose input (``"input"``) or output (``"output"``) h
    feeds the logits, and the logits' weight W and bias b. ``extra_length(module,
    inputs)``: reductions a custom module does itself (attention's QK^T and AV).

    The bound at step t (first order; module docstring for the assumptions):
    - the forward at the step's weights: logits within S*u*M_t, M_t = max sum|W h| + |b|;
      cross-entropy's gradient in the logits has |.|_1 <= 2 per row (softmax - onehot),
      so the loss is within 2*S*u*M_t; its own log-sum-exp over V classes and mean over
      N rows add (V + N*L + 2)*u, counted twice (the float64 run's loss may be fp32 too);
    - the weights, off by D_i after t earlier steps, move the loss by sum_i |g_i|*D_i:
      SGD (momentum mu, weight decay wd): D = t*u*|w| (rounding each stored weight) +
      (3S + t + 2)*u*lr*sum_s A_s, A_s = mu*A_{s-1} + |g_s| + wd*|w_s| the momentum
      buffer's magnitude, 3S the gradient's path (forward, back, and the weight
      gradient's own reduction over the batch, each <= S) and no cancellation in it;
      Adam(W): |m_hat/(sqrt(v_hat)+eps)| <= c_s (``adam_step_bound``) whatever the
      gradients, so two runs' updates differ by <= 2*lr*c_s per step (a gradient near 0
      may flip sign: Adam's sensitivity there is lr/eps, so no smaller bound holds
      without per-element error terms), plus 2*u*|w| of rounding.
    """
    model = wl.eager.double()  # in place: the optimizer keeps the same Parameters
    params = [p for p in model.parameters() if p.requires_grad]
    lengths: dict[int, int] = {}
    scales: list[float] = []
    classes: list[int] = []
    module, side, weight, bias = head(model)

    def count(m: Any, inputs: tuple[Any, ...], output: Any) -> None:
        lengths[id(m)] = _reduction_length(m, inputs) + (
            extra_length(m, inputs) if extra_length else 0
        )

    def magnitude(m: Any, inputs: tuple[Any, ...], output: Any) -> None:
        h = (inputs[0] if side == "input" else output).detach().abs().flatten(0, -2)
        total = h @ weight.detach().abs().T + (0 if bias is None else bias.detach().abs())
        scales.append(float(total.max()))
        classes.append(weight.shape[0])

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    hooks.append(module.register_forward_hook(magnitude))
    grads: list[list[Any]] = []
    hooks.append(
        wl.opt.register_step_pre_hook(
            lambda opt, args, kwargs: grads.append(
                [torch.zeros_like(p) if p.grad is None else p.grad.detach().abs() for p in params]
            )
        )
    )
    losses, weights, rows = [], [], []
    try:
        for _ in range(steps):
            batch = tuple(
                t.double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t
                for t in wl.make_batch()
            )
            rows.append(int(batch[-1].numel()))
            weights.append([p.detach().abs().clone() for p in params])
            losses.append(float(wl.step(batch)))
    finally:
        for hook in hooks:
            hook.remove()

    opt = wl.opt
    group = opt.param_groups[0]
    lr, wd = float(group["lr"]), float(group.get("weight_decay", 0.0))
    path = sum(lengths.values())
    out = []
    buf = [torch.zeros_like(p) for p in params]  # SGD: sum_j mu^(s-j) (|g_j| + wd |w_j|)
    moved = [torch.zeros_like(p) for p in params]  # SGD: lr * sum_s buf_s
    adam_moved = 0.0  # Adam(W): sum_s 2 * lr * c_s
    for t in range(steps):
        forward = 2 * path * scales[t] + 2 * (classes[t] + rows[t] * abs(losses[t]) + 2)
        if isinstance(opt, torch.optim.SGD):
            drift = [t * w + (3 * path + t + 2) * m for w, m in zip(weights[t], moved, strict=True)]
        elif isinstance(opt, torch.optim.Adam | torch.optim.AdamW):
            drift = [2 * t * w + adam_moved / U32 for w in weights[t]]
        else:
            raise TypeError(f"no drift bound for {type(opt).__name__}")
        weighted = sum(float((g * d).sum()) for g, d in zip(grads[t], drift, strict=True))
        out.append((losses[t], U32 * (forward + weighted)))
        if isinstance(opt, torch.optim.SGD):
            mu = float(group.get("momentum", 0.0))
            for b, g, w, m in zip(buf, grads[t], weights[t], moved, strict=True):
                b.mul_(mu).add_(g + wd * w)
                m.add_(lr * b)
        else:
            beta1, beta2 = group["betas"]
            adam_moved += 2 * lr * adam_step_bound(t + 1, beta1, beta2)
    return out
