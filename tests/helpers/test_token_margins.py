"""helpers/token_margins.py, the tolerance the GPU tests compare greedy tokens with,
checked on the CPU: equal sequences pass, a difference passes only at a near-tie within
the rounding bound, and the bound is strict in fp32 and loose in bf16."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from gpuscout.workloads import llm  # noqa: E402
from gpuscout.workloads.base import WorkloadConfig  # noqa: E402
from helpers import token_margins as tm  # noqa: E402

CPU = torch.device("cpu")
FP32 = 2.0**-24


def test_unit_roundoffs() -> None:
    assert tm.unit_roundoff(torch.float32) == FP32
    assert tm.unit_roundoff(torch.bfloat16) == 2.0**-8


def test_the_bound_is_strict_in_fp32_and_loose_in_bf16() -> None:
    """llama-tiny's shape (d 64, FFN 176, 2 layers), |h| = sqrt(d) (RMS-normed), rows of
    N(0, 0.02) weights: the best two logits of a random model are usually ~1e-2 apart."""
    hidden = torch.ones(64)
    rows = torch.full((2, 64), 0.02)
    fp32 = tm.flip_bound(hidden, rows, 2 * FP32, layers=2, longest=176)
    bf16 = tm.flip_bound(hidden, rows, FP32 + 2.0**-8, layers=2, longest=176)
    assert 1e-6 < fp32 < 1e-4
    assert bf16 / fp32 == pytest.approx((1 + 2**16) / 2)


def _fake_forced(logits: Any) -> Any:
    return lambda tokens: (logits, torch.ones(4))


def _check(want: Any, got: Any, logits: Any, u: float) -> list[str]:
    prompt = torch.zeros(want.shape[0], 3, dtype=torch.long)
    rows = torch.ones(logits.shape[0], 4)  # |h| |w| = 2 x 2 = 4
    problems: list[str] = tm.check_greedy_tokens(
        want, got, prompt, _fake_forced(logits), rows, u=u, layers=1, longest=4
    )
    return problems


def test_a_difference_passes_only_within_the_bound() -> None:
    want = torch.tensor([[1, 2, 3], [1, 2, 3]])
    got = torch.tensor([[1, 2, 3], [1, 0, 9]])  # row 1 differs at token 1 (then follows)
    bound = tm.flip_bound(torch.ones(4), torch.ones(2, 4), 2 * FP32, 1, 4)
    near = torch.tensor([1.0 - bound / 2, 0.0, 1.0, 0.0])  # token 0 within the bound
    assert _check(want, got, near, 2 * FP32) == []
    far = torch.tensor([1.0 - 3 * bound, 0.0, 1.0, 0.0])
    (problem,) = _check(want, got, far, 2 * FP32)
    assert problem.startswith("row 1, token 1: got 0, the reference 2")
    assert _check(want, got, far, 8 * FP32) == []  # a coarser program may flip it
    assert _check(want, want, far, 2 * FP32) == []  # equal sequences ask nothing


def test_a_real_model_teacher_forced_on_the_cpu() -> None:
    """The fp32 tuned program against the reference: equal, or near-ties only; a token
    swapped for the reference's worst choice is caught at its position."""
    # fp32 pinned: a CPU with AMX would run the tuned program in bf16.
    opts = {"new_tokens": 7, "dtype": "fp32"}
    kw: dict[str, Any] = {"model": "llama-tiny", "seq_len": 10, "options": opts}
    ref, prompt = llm.build(WorkloadConfig("llm", "cpu", "reference", **kw), CPU, 2)
    tuned, _ = llm.build(WorkloadConfig("llm", "cpu", "tuned", **kw), CPU, 2)
    want, _, _ = ref.generate(prompt)
    got, _, _ = tuned.generate(prompt)
    s = ref.model.s
    margins = {
        "u": 2 * FP32,
        "layers": s.layers,
        "longest": max(s.dim, s.ffn, prompt.shape[1] + want.shape[1]),
    }
    forced, rows = tm.llama_forced(ref.model), tm.llama_output_rows(ref.model)
    assert tm.check_greedy_tokens(want, got, prompt, forced, rows, **margins) == []
    logits, hidden = forced(torch.cat([prompt[1], want[1, :4]])[None])
    assert int(logits.argmax()) == int(want[1, 4])  # teacher-forced: the same choice
    assert hidden.shape == (s.dim,)
    bad = want.clone()
    bad[1, 4] = int(logits.argmin())
    (problem,) = tm.check_greedy_tokens(want, bad, prompt, forced, rows, **margins)
    assert problem.startswith("row 1, token 4:")
