"""Micro-benchmarks on a real CUDA GPU: each verifies and runs (no speed is asserted)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

from gpuscout.bench import launch, matmul, memory, runner, transfer  # noqa: E402
from gpuscout.bench.context import BenchContext, TimingPolicy  # noqa: E402
from gpuscout.timing import CudaEventClock, measure  # noqa: E402

FAST = TimingPolicy(warmup=1, min_iters=3, min_time_s=0.0, max_time_s=5.0)
DEV = "cuda:0"


def test_matmul_bf16_verifies_and_runs() -> None:
    results = matmul.run(DEV, True, BenchContext(timing=FAST), sizes=(256, 1024),
                         precisions=("bf16",))  # fmt: skip
    for r in results:
        assert r.status == "ok", r.error
        assert r.figure is not None and r.figure > 0
        assert r.extra["clock"] == "cuda_events"
        assert r.extra["rel_error"] <= matmul.REL_TOL["bf16"]


def test_every_precision_is_ok_or_skipped_and_tf32_flag_is_restored() -> None:
    before = torch.backends.cuda.matmul.allow_tf32
    results = matmul.run(DEV, True, BenchContext(timing=FAST), sizes=(512,))
    assert torch.backends.cuda.matmul.allow_tf32 == before
    by_status = {r.name: (r.status, r.error) for r in results}
    assert all(s in ("ok", "skipped") for s, _ in by_status.values()), by_status
    assert by_status["matmul/fp32/512"][0] == "ok"


def test_memory_transfer_launch_are_ok() -> None:
    ctx = BenchContext(timing=FAST)
    res = memory.run(DEV, True, ctx, array_bytes=256 * 2**20)
    res += transfer.run(DEV, True, ctx, sizes_bytes=(2**20, 16 * 2**20))
    res += launch.run(DEV, True, ctx)
    assert len(res) == 2 + 8 + 2
    for r in res:
        assert r.status == "ok", (r.name, r.error)
        assert r.figure is not None and r.figure > 0


def test_cuda_event_clock_times_device_work() -> None:
    clock = CudaEventClock(DEV)
    m = measure(lambda: torch.cuda._sleep(1_000_000), clock=clock, warmup=1, min_iters=5,
                min_time_s=0.0)  # fmt: skip
    assert m.clock == "cuda_events"
    assert len(m.samples_s) == m.stats.n >= 5
    assert all(s > 0 for s in m.samples_s)


def test_runner_samples_nvml_while_a_gpu_benchmark_runs() -> None:
    results = runner.run_micro(DEV, "launch", quick=True)
    assert {r.status for r in results} == {"ok"}
    nv = results[0].extra.get("nvml")
    assert nv is not None
    assert "samples" in nv
