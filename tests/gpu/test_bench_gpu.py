"""Micro-benchmarks on a real CUDA GPU: each verifies and runs (no speed is asserted)."""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

from gpuscout.bench import launch, matmul, memory, record, runner, transfer  # noqa: E402
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


def _fp32_settings() -> tuple[object, ...]:
    # The legacy reading is refused when the legacy and new TF32 APIs disagree; the new
    # API's CUDA and oneDNN matmul settings are both written by the harness's switch.
    knobs = (torch.backends.cuda.matmul, getattr(torch.backends.mkldnn, "matmul", None))
    new = tuple(getattr(k, "fp32_precision", None) for k in knobs)
    return torch.get_float32_matmul_precision(), *new


def test_every_precision_is_ok_or_skipped_and_tf32_flag_is_restored() -> None:
    before = _fp32_settings()
    results = matmul.run(DEV, True, BenchContext(timing=FAST), sizes=(512,))
    assert _fp32_settings() == before
    by_status = {r.name: (r.status, r.error) for r in results}
    assert all(s in ("ok", "skipped") for s, _ in by_status.values()), by_status
    assert by_status["matmul/fp32/512"][0] == "ok"
    assert by_status["matmul/fp64/512"][0] == "ok"  # its check needs an fp64 reference
    if torch.cuda.get_device_capability(0) >= (8, 9):  # H100: every precision runs
        assert {s for s, _ in by_status.values()} == {"ok"}, by_status


def test_tf32_switch_really_changes_the_fp32_kernel() -> None:
    """TF32 rounds inputs to 10 mantissa bits: ~1e-4..1e-3 relative error against
    ~1e-6 for IEEE fp32. If the switch did nothing, "tf32" would time the fp32 kernel."""
    g = torch.Generator(device=DEV).manual_seed(0)
    a = torch.randn(1024, 1024, generator=g, device=DEV)
    b = torch.randn(1024, 1024, generator=g, device=DEV)
    ref = a.double() @ b.double()

    def rel_err(precision: str) -> float:
        with matmul._tf32(torch, DEV, precision):
            c = torch.mm(a, b)
        return float((c.double() - ref).norm() / ref.norm())

    assert rel_err("fp32") < 1e-5 < rel_err("tf32") < matmul.REL_TOL["tf32"]


def test_fp8_and_int8_verify_at_the_largest_size() -> None:
    if torch.cuda.get_device_capability(0) < (8, 9):
        pytest.skip("fp8 needs compute capability 8.9")
    n = max(matmul.GPU_SIZES)  # fp8 fast accumulation errs most at the largest K
    ctx = BenchContext(timing=FAST)
    for r in matmul.run(DEV, True, ctx, sizes=(n,), precisions=("fp8", "int8")):
        assert r.status == "ok", (r.name, r.error)
        assert r.extra["rel_error"] <= matmul.REL_TOL[r.extra["precision"]]


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


def test_cuda_event_clock_keeps_the_host_at_most_max_in_flight_calls_ahead() -> None:
    k, calls = 2, 8
    clock = CudaEventClock(DEV, max_in_flight=k)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        clock.start()
        torch.cuda._sleep(20_000_000)  # ~10 ms of GPU time per call
        clock.stop()
    host_s = time.perf_counter() - t0
    samples = clock.collect()
    # The host waited for all but the last k calls to finish before it got here.
    assert host_s >= 0.95 * sum(samples[: calls - k])


def test_runner_samples_nvml_while_a_gpu_benchmark_runs() -> None:
    # As the CLI does: the probed system maps torch's device to NVML's by UUID, which
    # also works when CUDA_VISIBLE_DEVICES renumbers the GPUs.
    system = record.probe_for_fingerprint()
    results = runner.run_micro(DEV, "launch", quick=True, system=system)
    assert {r.status for r in results} == {"ok"}
    nv = results[0].extra.get("nvml")
    assert nv is not None, "no NVML monitor: the GPU was not matched to NVML"
    assert nv.get("error") is None, nv
    assert nv["samples"] >= 1 and nv["sm_clock_median_mhz"], nv
