"""matmul on the CPU at tiny sizes: verified before timed, figures and % of peak right."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from gpuscout._types import Ceiling  # noqa: E402
from gpuscout.bench import matmul  # noqa: E402
from gpuscout.bench.context import (  # noqa: E402
    BenchContext,
    CaseOutput,
    TimingPolicy,
    VerificationError,
    run_case,
)

FAST = TimingPolicy(warmup=1, min_iters=3, min_time_s=0.0, max_time_s=2.0)


def _ctx(**kw: Any) -> BenchContext:
    return BenchContext(timing=FAST, **kw)


def test_cpu_matmul_gives_plausible_tflops_and_peak_fraction() -> None:
    ctx = _ctx(ceiling=Ceiling(tflops={"fp32": 1.0, "bf16": 4.0}, source="test"))
    results = matmul.run("cpu", True, ctx, sizes=(64, 128))
    assert [r.name for r in results] == [
        "matmul/fp32/64",
        "matmul/fp32/128",
        "matmul/bf16/64",
        "matmul/bf16/128",
    ]
    for r in results:
        assert r.status == "ok", r.error
        assert r.device == "cpu"
        assert r.unit == "TFLOPS"
        assert r.figure is not None and r.figure > 0
        assert r.stats is not None and r.stats.n >= 3
        # the figure is 2 n^3 / median time, and % of peak divides by the given peak
        n = r.extra["size"]
        assert r.figure == pytest.approx(2 * n**3 / r.stats.median_s / 1e12)
        peak = 1.0 if "fp32" in r.name else 4.0
        assert r.peak_fraction == pytest.approx(r.figure / peak)
        assert r.extra["rel_error"] <= matmul.REL_TOL[r.extra["precision"]]
        assert r.extra["ceiling_source"] == "test"


def test_no_peak_means_no_fraction() -> None:
    (r,) = matmul.run("cpu", True, _ctx(), sizes=(64,), precisions=("fp32",))
    assert r.status == "ok"
    assert r.peak_fraction is None


@pytest.mark.parametrize(
    "broken",
    [
        lambda a, b: torch.mm(a, b) * 1.01,  # 1% off: beyond fp32's bound
        lambda a, b: torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype),
        lambda a, b: torch.mm(a, b.t()),  # transposed operand
        lambda a, b: torch.full((a.shape[0], b.shape[1]), float("nan"), dtype=a.dtype),
    ],
)
def test_wrong_matmul_is_reported_failed_and_not_timed(broken: Any) -> None:
    calls = [0]

    def mm(a: Any, b: Any) -> Any:
        calls[0] += 1
        return broken(a, b)

    (r,) = matmul.run("cpu", False, _ctx(), sizes=(96,), precisions=("fp32",), mm=mm)
    assert r.status == "failed"
    assert r.figure is None and r.stats is None and r.peak_fraction is None
    assert r.error is not None and "wrong result" in r.error
    assert calls[0] == 1  # run once for the check, never in a timing loop


def test_correct_injected_matmul_passes() -> None:
    (r,) = matmul.run("cpu", True, _ctx(), sizes=(64,), precisions=("fp32",), mm=lambda a, b: a @ b)
    assert r.status == "ok"


def test_one_failing_size_does_not_stop_the_others() -> None:
    def mm(a: Any, b: Any) -> Any:
        if a.shape[0] == 64:
            raise RuntimeError("kernel exploded")
        return a @ b

    results = matmul.run("cpu", True, _ctx(), sizes=(64, 96), precisions=("fp32",), mm=mm)
    assert [r.status for r in results] == ["failed", "ok"]
    assert "RuntimeError: kernel exploded" in (results[0].error or "")


def test_precision_the_cpu_does_not_run_is_skipped() -> None:
    (r,) = matmul.run("cpu", True, _ctx(), sizes=(64,), precisions=("fp8",))
    assert r.status == "skipped"
    assert r.name == "matmul/fp8"
    assert r.unit == "TFLOPS"


def test_verify_bounds_per_precision() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(128, 128, generator=g)
    b = torch.randn(128, 128, generator=g)
    assert matmul.verify(torch, a, b, a @ b, "fp32", g) < 1e-6
    ab, bb = a.bfloat16(), b.bfloat16()
    err = matmul.verify(torch, ab, bb, ab @ bb, "bf16", g)
    assert 0 < err < matmul.REL_TOL["bf16"]
    with pytest.raises(VerificationError):
        matmul.verify(torch, ab, bb, ab @ bb, "fp32", g)  # bf16 error is not fp32's
    ai = torch.randint(-128, 128, (32, 32), generator=g, dtype=torch.int8)
    bi = torch.randint(-128, 128, (32, 32), generator=g, dtype=torch.int8)
    exact = ai.int() @ bi.int()
    assert matmul.verify(torch, ai, bi, exact, "int8", g) == 0.0
    off_by_one = exact.clone()
    off_by_one[-1, -1] += 1  # the corner block is always checked
    with pytest.raises(VerificationError):
        matmul.verify(torch, ai, bi, off_by_one, "int8", g)


def test_inputs_are_random_and_seeded() -> None:
    g1 = torch.Generator().manual_seed(7)
    g2 = torch.Generator().manual_seed(7)
    a1, b1 = matmul._make_inputs(torch, "bf16", 32, "cpu", g1)
    a2, _ = matmul._make_inputs(torch, "bf16", 32, "cpu", g2)
    assert torch.equal(a1, a2)
    assert not torch.equal(a1, b1)
    assert int((a1 == 0).sum()) < 5  # never time zeros


def test_buffer_rotation_counts() -> None:
    assert matmul.buffer_sets(set_bytes=100 * 2**20, cache_bytes=32 * 2**20) == 1
    assert matmul.buffer_sets(set_bytes=16 * 2**20, cache_bytes=32 * 2**20) == 4
    assert matmul.buffer_sets(set_bytes=1024, cache_bytes=32 * 2**20) == matmul.MAX_BUFFER_SETS


def test_run_case_classifies_exceptions() -> None:
    ctx = _ctx()

    def oom() -> CaseOutput:
        raise MemoryError("no room")

    def torch_oom() -> CaseOutput:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def inf() -> CaseOutput:
        return CaseOutput(figure=float("inf"))

    assert run_case("x", "cpu", "GB/s", ctx, oom).status == "oom"
    assert run_case("x", "cpu", "GB/s", ctx, torch_oom).status == "oom"
    assert run_case("x", "cpu", "GB/s", ctx, inf).status == "failed"


def test_figure_above_the_ceiling_is_flagged() -> None:
    r = run_case("x", "cpu", "TFLOPS", _ctx(), lambda: CaseOutput(figure=2.0, peak=1.0))
    assert r.status == "ok"
    assert r.peak_fraction == pytest.approx(2.0)
    assert "above-peak" in r.extra["flags"]
