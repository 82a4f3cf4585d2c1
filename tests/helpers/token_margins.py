"""Greedy tokens from two programs compared with a tolerance that holds: a token may
differ only where the exact computation nearly ties, by no more than the two programs'
rounding can move a logit.

Two correct programs (eager vs compiled, written-out attention vs a fused SDPA kernel,
fp32 vs bf16) round differently, so where the best two logits are closer than that
rounding, greedy decoding may pick either, and every later token follows from the pick.
So the sequences are compared up to each row's first difference; there, both programs
had the same context (prompt and the tokens so far), and the reference model is run
teacher-forced on that context in fp32 for its logits. The difference passes if the
other program's token is within ``flip_bound`` of the best logit there.

The bound. A logit is z_j = h . w_j, h the final normed hidden state (d values), w_j the
output row. A dot product of n terms computed with unit roundoff u (2^-24 for fp32, 2^-8
for bf16) errs by at most gamma_n sum|h_i w_ji| with gamma_n = n u / (1 - n u) (Higham,
Accuracy and Stability of Numerical Algorithms, 2nd ed., Thm 3.1); with rounding errors
independent and of mean zero, by lambda sqrt(n) u sum|h_i w_ji| with probability at
least 1 - 2 exp(-lambda^2 / 2) (Higham and Mary, SIAM J. Sci. Comput. 41(5), 2019), the
realistic size for the long sums of a GPU kernel. Rounding the operands to the
program's dtype adds u per product. Each of the L layers feeds h an error of the same
form, relative to |h|, over its longest sum K (the hidden size, the FFN width or the
context), and the residual stream adds the layers' errors up. With
sum|h_i w_ji| <= |h| |w_j| (Cauchy-Schwarz), one logit moves by at most

    u (L sqrt(K) + sqrt(d) + 1) |h| |w_j|

times lambda; a difference of two logits by twice that; and each program contributes
its own u. ``SAFETY`` = 8 stands for 2 x lambda (lambda = 4: the bound fails with
probability below 1e-3 per sum) and absorbs the few O(u) elementwise steps per layer
(RMSNorm, rotary, softmax, SiLU). For fp32 against fp32 this is a few 1e-5 of |h| |w|,
far below the usual gap between a random model's best two logits, so the check stays
strict; for bf16 it is loose (u is 65,536 times larger), which is what bf16 is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

SAFETY = 8.0


def unit_roundoff(dtype: Any) -> float:
    """u = 2^-p for a p-bit significand: half the machine epsilon (fp32 2^-24, bf16 2^-8)."""
    import torch

    return float(torch.finfo(dtype).eps) / 2


def flip_bound(hidden: Any, rows: Any, u: float, layers: int, longest: int) -> float:
    """How far rounding with unit roundoff ``u`` (both programs' summed) may move the
    difference of two logits, for the final hidden state ``hidden`` (d values) and the
    output rows ``rows`` of the two tokens (see the module's docstring)."""
    d = hidden.numel()
    scale = float(hidden.float().norm()) * float(rows.float().norm(dim=-1).max())
    return SAFETY * u * (layers * math.sqrt(longest) + math.sqrt(d) + 1) * scale


def check_greedy_tokens(
    want: Any,
    got: Any,
    prompt: Any,
    forced: Callable[[Any], tuple[Any, Any]],
    output_rows: Any,
    *,
    u: float,
    layers: int,
    longest: int,
) -> list[str]:
    """Where ``got`` differs from ``want`` (batch x new tokens, the reference's), why that
    is more than rounding; [] when every difference is a near-tie within the bound.

    ``forced(tokens)`` runs the reference teacher-forced on one row's context (1 x n)
    and returns the last position's logits (vocab) and final normed hidden state (d);
    ``output_rows`` is the output layer's weight (vocab x d).
    """
    import torch

    problems = []
    for r in range(want.shape[0]):
        differ = (want[r] != got[r]).nonzero()
        if len(differ) == 0:
            continue
        i = int(differ[0])
        context = torch.cat([prompt[r], want[r, :i]])[None]
        logits, hidden = forced(context)
        best = float(logits.max())
        a, b = int(want[r, i]), int(got[r, i])
        gap = best - float(logits[b])
        bound = flip_bound(hidden, output_rows[[a, b]], u, layers, longest)
        if gap > bound:
            problems.append(
                f"row {r}, token {i}: got {b}, the reference {a}; {b}'s logit is {gap:.3g} "
                f"below the best there, more than rounding moves it ({bound:.3g})"
            )
    return problems


def llama_forced(model: Any) -> Callable[[Any], tuple[Any, Any]]:
    """``forced`` for a gpuscout llama model (a fresh growing cache per call)."""
    import torch

    from gpuscout.workloads.llama import growing_cache

    def forced(tokens: Any) -> tuple[Any, Any]:
        seen: list[Any] = []
        hook = model.norm.register_forward_hook(lambda mod, args, out: seen.append(out))
        model.set_caches(growing_cache)
        try:
            with torch.no_grad():
                logits = model(tokens, torch.arange(tokens.shape[1], device=tokens.device))
        finally:
            hook.remove()
        return logits[0, -1].float(), seen[-1][0, -1].float()

    return forced


def llama_output_rows(model: Any) -> Any:
    return (model.output if model.output is not None else model.tok).weight.detach().float()
