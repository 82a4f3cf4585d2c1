"""Every rule of the plain-words verdict from workload results (``report/verdict.py``),
one table per rule, a row on each side of each boundary, with the words and numbers.

The rules, where they live:

- W1 ``verdict.py:_gpu_vs_cpu``: the best GPU against the CPU, "Nx faster" from a ratio
  of 1 up, "Nx slower" below; "no GPU was measured" with only the CPU; nothing with only
  a GPU.
- W2 ``verdict.py:_x``: a ratio under 10 to a tenth ("9.9x"), from 10 whole ("10x").
- W3 ``verdict.py:_tuned_vs_reference``: within 5% (strictly) the two run "at the same
  speed"; faster tuned: a tutorial-style program "leaves Nx on the table"; slower: "the
  tuned version is Nx slower".
- W4 ``verdict.py:_summary`` / ``_primary``: each device counts its best figure, the
  GPU with the best figure is the one named; only the workload's primary variant counts.
- W5 ``verdict.py:agreement``: the tuned and reference runs disagree when test accuracy
  differs by more than 0.02 (2 points), the generated tokens differ at the same dtype,
  or the loss differs by more than 5%; twice the tolerance when either ran below fp32.
- W6 ``verdict.py:_comparisons``: a third-party program's speed, and the tuned version
  "Nx faster" than it, or it "Nx faster than the tuned version".
- W7 ``verdict.py:_problems``: a run that failed is named with its error; implementations
  that disagree are named with why.
- W8 ``verdict.py:verdict``: a disturbed machine's line comes first unless the caller
  said it already; nothing to say: "no workload results."
- W9 ``verdict.py:stand_ins``: a workload trained on synthetic stand-in data for its
  named dataset says so.

Each expected string is worked out by hand in the comment beside it.
"""

from __future__ import annotations

from typing import Any

import pytest

from gpuscout._types import Result
from gpuscout.report.verdict import agreement, stand_ins, verdict


def res(device: str, figure: float, impl: str = "tuned", wl: str = "toy", **extra: Any) -> Result:
    """One figure of a workload the registry does not know (no primary variant)."""
    e = {"workload": wl, "impl": impl, "variant": None} | extra
    return Result(f"{wl}/{impl}", device, figure, "images/s", extra=e)


# -- W1, W2: the GPU against the CPU ------------------------------------------------------
@pytest.mark.parametrize(
    ("results", "said"),
    [
        # CPU 100/s. GPU 99/s: 100/99 = 1.01 -> "1.0x slower".
        pytest.param([res("cpu", 100.0), res("cuda:0", 99.0)],
                     "on toy: your GPU (cuda:0) is 1.0x slower than your CPU.",
                     id="W1-ratio-below-1-slower"),
        pytest.param([res("cpu", 100.0), res("cuda:0", 100.0)],
                     "on toy: your GPU (cuda:0) is 1.0x faster than your CPU.",
                     id="W1-ratio-at-1-faster"),
        pytest.param([res("cpu", 100.0), res("cuda:0", 300.0)],
                     "on toy: your GPU (cuda:0) is 3.0x faster than your CPU.",
                     id="W1-ratio-above-1-faster"),
        pytest.param([res("cpu", 100.0)], "on toy: no GPU was measured.", id="W1-cpu-only"),
        pytest.param([res("cuda:0", 100.0)], "no workload results.", id="W1-gpu-only-nothing"),
        # W2: 994/100 = 9.94 -> "9.9x"; 1,000/100 = 10 -> "10x"; 1,040/100 = 10.4 -> "10x".
        pytest.param([res("cpu", 100.0), res("cuda:0", 994.0)],
                     "on toy: your GPU (cuda:0) is 9.9x faster than your CPU.",
                     id="W2-below-10-tenths"),
        pytest.param([res("cpu", 100.0), res("cuda:0", 1000.0)],
                     "on toy: your GPU (cuda:0) is 10x faster than your CPU.",
                     id="W2-at-10-whole"),
        pytest.param([res("cpu", 100.0), res("cuda:0", 1040.0)],
                     "on toy: your GPU (cuda:0) is 10x faster than your CPU.",
                     id="W2-above-10-whole"),
        # W4: the best of each device (the CPU's reference 200 beats its tuned 100), the
        # best GPU (cuda:1 at 1,200): 1,200 / 200 = 6.0x. Tuned against tutorial-style is
        # asked of cuda:1, which ran no reference: nothing more.
        pytest.param([res("cpu", 100.0), res("cpu", 200.0, "reference"), res("cuda:0", 800.0),
                      res("cuda:1", 1200.0)],
                     "on toy: your GPU (cuda:1) is 6.0x faster than your CPU.",
                     id="W4-best-figure-best-gpu"),
        # W4: llm's primary variant is decode-b1; its prefill figure, listed first, does
        # not count: 100 / 10 = 10x (not 5,000 / 10).
        pytest.param([res("cuda:0", 5000.0, wl="llm", variant="prefill"),
                      res("cpu", 10.0, wl="llm", variant="decode-b1"),
                      res("cuda:0", 100.0, wl="llm", variant="decode-b1")],
                     "on llm: your GPU (cuda:0) is 10x faster than your CPU.",
                     id="W4-primary-variant-only"),
    ],
)  # fmt: skip
def test_w1_w2_w4_the_gpu_against_the_cpu(results: list[Result], said: str) -> None:
    assert verdict(results) == said


# -- W3: tuned against tutorial-style, on the GPU named (here the CPU alone) -----------
# Reference 100/s. 104 -> 4% apart: the same speed; 105 -> 5% apart (in floating point
# 0.05000000000000004), not within: "leaves 1.1x" (1.05 to a tenth); 96 -> 4% below: the
# same; 95 -> 5% below (0.05000000000000004): "1.1x slower" (100/95 = 1.05).
# No ratio of floats lands on 5% exactly, so whether 5% itself counts as the same speed
# cannot be seen; 4% and 5% on either side pin the constant. Equal speeds are the same
# speed, so which side of ``tuned >= ref`` equality falls on cannot be seen either.
@pytest.mark.parametrize(
    ("tuned", "words"),
    [
        pytest.param(104.0, "the tuned and tutorial-style versions run at the same speed there",
                     id="W3-4pct-above-same"),
        pytest.param(105.0, "a tutorial-style program leaves 1.1x on the table there",
                     id="W3-5pct-above-leaves"),
        pytest.param(200.0, "a tutorial-style program leaves 2.0x on the table there",
                     id="W3-2x-leaves"),
        pytest.param(96.0, "the tuned and tutorial-style versions run at the same speed there",
                     id="W3-4pct-below-same"),
        pytest.param(95.0, "the tuned version is 1.1x slower than tutorial-style there",
                     id="W3-5pct-below-slower"),
    ],
)  # fmt: skip
def test_w3_tuned_against_tutorial_style(tuned: float, words: str) -> None:
    results = [res("cpu", tuned), res("cpu", 100.0, "reference")]
    assert verdict(results) == f"on toy: no GPU was measured; {words}."


# -- W5: do the two implementations agree? ---------------------------------------------
def pair(ref: dict[str, Any], tuned: dict[str, Any]) -> str | None:
    return agreement(res("cpu", 1.0, "reference", **ref), res("cpu", 1.0, **tuned))


# Accuracy 0.02 against 0.04 differs by exactly 0.02 (0.04 is twice 0.02 in binary too):
# within. 0.0401: 0.0201 -> "2.0 points", beyond. In bf16 the tolerance is 0.04:
# 0.04 against 0.08 exactly within; 0.0801 (0.0401 -> "4.0 points") beyond.
# Loss 20 against 21: 1/20 = 0.05 exactly: within; 21.02: 5.1% beyond; in bf16 the
# tolerance is 10%: 22 is 2/20 = 0.1 exactly, within; 22.2 is 11.0%, beyond.
AGREEMENT = [
    pytest.param({"accuracy": 0.02}, {"accuracy": 0.035}, None, id="W5-accuracy-below"),
    pytest.param({"accuracy": 0.02}, {"accuracy": 0.04}, None, id="W5-accuracy-at"),
    pytest.param({"accuracy": 0.02}, {"accuracy": 0.0401}, "test accuracy differs by 2.0 points",
                 id="W5-accuracy-above"),
    pytest.param({"accuracy": 0.04}, {"accuracy": 0.08, "dtype": "bf16"}, None,
                 id="W5-accuracy-low-precision-at"),
    pytest.param({"accuracy": 0.04}, {"accuracy": 0.0801, "dtype": "bf16"},
                 "test accuracy differs by 4.0 points", id="W5-accuracy-low-precision-above"),
    pytest.param({"generated_digest": "aa"}, {"generated_digest": "aa"}, None,
                 id="W5-same-tokens"),
    pytest.param({"generated_digest": "aa"}, {"generated_digest": "bb"},
                 "generated different tokens from the same prompt and weights",
                 id="W5-different-tokens"),
    pytest.param({"generated_digest": "aa", "dtype": "fp32"},
                 {"generated_digest": "bb", "dtype": "bf16"}, None,
                 id="W5-different-tokens-other-dtype-not-compared"),
    pytest.param({"loss": 20.0}, {"loss": 20.9}, None, id="W5-loss-below"),
    pytest.param({"loss": 20.0}, {"loss": 21.0}, None, id="W5-loss-at"),
    pytest.param({"loss": 20.0}, {"loss": 21.02}, "the final loss differs by 5.1% (20 vs 21.02)",
                 id="W5-loss-above"),
    pytest.param({"loss": 20.0}, {"loss": 22.0, "dtype": "bf16"}, None,
                 id="W5-loss-low-precision-at"),
    pytest.param({"loss": 20.0}, {"loss": 22.2, "dtype": "bf16"},
                 "the final loss differs by 11.0% (20 vs 22.2)",
                 id="W5-loss-low-precision-above"),
    pytest.param({"loss": 9.0, "loss_check": 20.0}, {"loss": 9.0, "loss_check": 21.02},
                 "the loss after 3 steps differs by 5.1% (20 vs 21.02)",
                 id="W5-loss-check-before-final-loss"),
]  # fmt: skip


@pytest.mark.parametrize(("ref", "tuned", "why"), AGREEMENT)
def test_w5_the_two_implementations_agree_within_tolerance(
    ref: dict[str, Any], tuned: dict[str, Any], why: str | None
) -> None:
    assert pair(ref, tuned) == why


# -- W6: a third-party program beside the tuned version ----------------------------------
# mlp's comparison is the Keras tutorial program (impl "keras"), 1,000 images/s on cpu.
@pytest.mark.parametrize(
    ("tuned", "line"),
    [
        pytest.param(2000.0, "the tuned version is 2.0x faster", id="W6-tuned-above-faster"),
        pytest.param(1000.0, "the tuned version is 1.0x faster", id="W6-tuned-at-faster"),
        pytest.param(500.0, "it is 2.0x faster than the tuned version",
                     id="W6-tuned-below-it-faster"),
    ],
)  # fmt: skip
def test_w6_a_third_party_program_against_the_tuned_version(tuned: float, line: str) -> None:
    results = [res("cpu", tuned, wl="mlp"), res("cpu", 1000.0, "keras", wl="mlp")]
    assert verdict(results).splitlines()[1] == (
        f"mlp on cpu: the Keras tutorial program runs at 1,000 images/s; {line}."
    )


# -- W7, W8: problems, the disturbed lead, nothing at all -------------------------------
def failed() -> Result:
    r = res("cuda:0", 0.0)
    return Result(r.name, r.device, None, r.unit, status="failed", error="boom", extra=r.extra)


@pytest.mark.parametrize(
    ("results", "say_disturbed", "lines"),
    [
        pytest.param([res("cpu", 100.0), failed()], True,
                     ["on toy: no GPU was measured.", "toy: tuned on cuda:0 failed: boom"],
                     id="W7-failed-run-named"),
        # Accuracy 0.9 against 0.7: 20.0 points apart.
        pytest.param([res("cpu", 100.0, accuracy=0.7),
                      res("cpu", 100.0, "reference", accuracy=0.9)], True,
                     ["on toy: no GPU was measured; the tuned and tutorial-style versions run "
                      "at the same speed there.",
                      "toy on cpu: the two implementations disagree: test accuracy differs by "
                      "20.0 points."],
                     id="W7-disagreement-named"),
        pytest.param([res("cpu", 100.0, flags=["host-busy"])], True,
                     ["measurements disturbed: 1 of 1 ran beside busy processes. Rerun on a "
                      "quiet machine before trusting them.", "on toy: no GPU was measured."],
                     id="W8-disturbed-line-first"),
        pytest.param([res("cpu", 100.0, flags=["host-busy"])], False,
                     ["on toy: no GPU was measured."], id="W8-disturbed-already-said"),
        pytest.param([], True, ["no workload results."], id="W8-nothing"),
        pytest.param([res("cpu", 100.0, wl="mlp", synthetic_data=True)], True,
                     ["on mlp: no GPU was measured.",
                      "mlp trained on synthetic stand-in data (no Fashion-MNIST files): its "
                      "accuracy is not Fashion-MNIST's; pass --data-dir to use the real files."],
                     id="W9-stand-in-in-the-verdict"),
    ],
)  # fmt: skip
def test_w7_w8_problems_and_the_disturbed_lead(
    results: list[Result], say_disturbed: bool, lines: list[str]
) -> None:
    assert verdict(results, say_disturbed=say_disturbed).splitlines() == lines


# -- W9: synthetic stand-in data ---------------------------------------------------------
@pytest.mark.parametrize(
    ("results", "lines"),
    [
        pytest.param([res("cpu", 1.0, wl="mlp", synthetic_data=True)],
                     ["mlp trained on synthetic stand-in data (no Fashion-MNIST files): its "
                      "accuracy is not Fashion-MNIST's; pass --data-dir to use the real files."],
                     id="W9-named-dataset-stand-in"),
        pytest.param([res("cpu", 1.0, wl="mlp")], [], id="W9-real-data-nothing"),
        pytest.param([res("cpu", 1.0, wl="cnn", synthetic_data=True)], [],
                     id="W9-no-named-dataset-nothing"),
    ],
)  # fmt: skip
def test_w9_a_synthetic_stand_in_is_said(results: list[Result], lines: list[str]) -> None:
    assert stand_ins(results) == lines
