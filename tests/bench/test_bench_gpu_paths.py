"""The GPU-only branches of the micro-benchmarks, run without a GPU.

Each test drives code that only a CUDA device reaches: the TF32 switch, the fp8 and
int8 calls (their shape rules checked by PyTorch's meta kernels, which apply the CUDA
rules), the fp64 check, the CUDA event clock (over a stand-in for torch.cuda's events),
the capability gates and the GPU buffer sizes; and that the plain-PyTorch reference
script measures what the harness measures.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from gpuscout.bench import matmul, memory, transfer
from gpuscout.bench.context import FULL_TIMING, BenchContext, SkipCase, TimingPolicy
from gpuscout.timing import CudaEventClock, measure
from helpers import REPO

torch = pytest.importorskip("torch")

FAST = TimingPolicy(warmup=0, min_iters=2, min_time_s=0.0, max_time_s=1.0)


# -- TF32 --------------------------------------------------------------------------


def _new_api_settings() -> tuple[object, ...]:
    # What set_float32_matmul_precision writes besides the legacy flag (torch >= 2.9):
    # CUDA's and oneDNN's matmul settings, each "none" (inherit) until written.
    knobs = (torch.backends.cuda.matmul, getattr(torch.backends.mkldnn, "matmul", None))
    return tuple(getattr(k, "fp32_precision", None) for k in knobs)


@pytest.fixture
def restore_fp32_settings() -> Iterator[None]:
    knobs = (torch.backends.cuda.matmul, getattr(torch.backends.mkldnn, "matmul", None))
    new = _new_api_settings()
    legacy = torch.get_float32_matmul_precision()
    yield
    torch.set_float32_matmul_precision(legacy)
    for knob, value in zip(knobs, new, strict=True):
        if value is not None:
            knob.fp32_precision = value


def _tf32_state() -> tuple[bool, str]:
    # Both readings go through the check that raises on a mix of the two APIs.
    return bool(torch.backends.cuda.matmul.allow_tf32), torch.get_float32_matmul_precision()


@pytest.mark.usefixtures("restore_fp32_settings")
def test_tf32_switch_sets_both_apis_and_restores_them() -> None:
    knobs = torch.backends.cuda.matmul
    before = (_tf32_state(), _new_api_settings())
    with matmul._tf32(torch, "cuda:0", "tf32"):
        assert _tf32_state() == (True, "high")
        if hasattr(knobs, "fp32_precision"):
            assert knobs.fp32_precision == "tf32"
    # Every setting as it was, oneDNN's "none" (inherit) too, not an explicit "ieee".
    assert (_tf32_state(), _new_api_settings()) == before
    with matmul._tf32(torch, "cuda:0", "fp32"):
        assert _tf32_state() == (False, "highest")
    assert (_tf32_state(), _new_api_settings()) == before
    with matmul._tf32(torch, "cuda:0", "bf16"), matmul._tf32(torch, "cpu", "tf32"):
        assert _tf32_state() == before[0]  # neither touches the setting


@pytest.mark.usefixtures("restore_fp32_settings")
def test_tf32_switch_works_after_someone_set_only_the_new_api() -> None:
    knobs = torch.backends.cuda.matmul
    if not hasattr(knobs, "fp32_precision"):
        pytest.skip("this PyTorch predates fp32_precision")
    knobs.fp32_precision = "tf32"  # legacy flag untouched: the two now disagree
    try:
        _ = knobs.allow_tf32  # torch 2.13 refuses this, as a cuBLAS call may
    except RuntimeError as exc:
        assert "mix of" in str(exc)
    with matmul._tf32(torch, "cuda:0", "fp32"):
        assert _tf32_state() == (False, "highest")
    with matmul._tf32(torch, "cuda:0", "tf32"):
        assert _tf32_state() == (True, "high")
    assert knobs.fp32_precision == "tf32"  # the caller's setting is back


# -- fp64, fp8 and int8 -------------------------------------------------------------


def test_fp64_is_checked_against_an_fp64_reference() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 64, generator=g, dtype=torch.float64)
    b = torch.randn(64, 64, generator=g, dtype=torch.float64)
    # Through float32 the reference itself was off by ~4e-8, 400x the fp64 bound.
    assert matmul.verify(torch, a, b, a @ b, "fp64", g) < 1e-13


@pytest.mark.parametrize("precision", ["fp64", "fp8", "int8", "fp16"])
def test_gpu_precisions_verify_on_the_cpu_kernels(precision: str) -> None:
    if precision == "fp8":
        try:
            one = torch.ones(())
            x = torch.zeros(32, 32).to(torch.float8_e4m3fn)
            torch._scaled_mm(x, x.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        except (RuntimeError, NotImplementedError):
            pytest.skip("this PyTorch has no CPU kernel for _scaled_mm")
    ctx = BenchContext(timing=FAST)
    out = matmul._case(torch, "cpu", precision, 64, True, ctx, None)
    assert out.extra["rel_error"] <= matmul.REL_TOL[precision]
    assert out.figure > 0


def _meta_inputs(precision: str, n: int) -> tuple[Any, Any]:
    """n x n meta tensors laid out as ``_make_inputs`` lays them out (read off a small
    real pair, so the big sizes cost nothing)."""
    a, b = matmul._make_inputs(torch, precision, 32, "cpu", torch.Generator().manual_seed(0))

    def like(x: Any) -> Any:
        assert x.is_contiguous() or x.t().is_contiguous()
        stride = (n, 1) if x.is_contiguous() else (1, n)
        return torch.empty_strided((n, n), stride, dtype=x.dtype, device="meta")

    return like(a), like(b)


@pytest.mark.parametrize("n", sorted({*matmul.GPU_SIZES, *matmul.GPU_QUICK_SIZES}))
def test_fp8_call_meets_scaled_mm_cuda_rules(n: int) -> None:
    """Meta tensors go through _scaled_mm's CUDA checks: row-major A, column-major B,
    sizes divisible by 16, float32 tensor-wise scales; one tensor comes back."""
    a, b = _meta_inputs("fp8", n)
    assert a.dtype == b.dtype == torch.float8_e4m3fn
    assert a.stride() == (n, 1) and b.stride() == (1, n)
    op = matmul._make_op(torch, "fp8", "meta")
    c = op(a, b, None)
    assert isinstance(c, torch.Tensor)
    assert c.dtype == matmul._out_dtype(torch, a, "fp8") == torch.bfloat16
    assert tuple(c.shape) == (n, n)
    with pytest.raises(RuntimeError, match="col_major"):
        op(a, b.contiguous(), None)  # the check is live


@pytest.mark.parametrize("n", sorted({*matmul.GPU_SIZES, *matmul.GPU_QUICK_SIZES}))
def test_int8_call_meets_int_mm_rules(n: int) -> None:
    a, b = _meta_inputs("int8", n)
    assert a.dtype == b.dtype == torch.int8
    assert a.stride() == (n, 1) and b.stride() == (1, n)  # the "TN" layout cuBLASLt wants
    # The CUDA kernel's own checks (not in the meta kernel): m > 16, k and n % 8 == 0.
    assert a.shape[0] > 16 and a.shape[1] % 8 == 0 and b.shape[1] % 8 == 0
    assert matmul.size_problem("int8", n) is None and matmul.size_problem("fp8", n) is None
    c = matmul._make_op(torch, "int8", "meta")(a, b, None)
    assert c.dtype == torch.int32 == matmul._out_dtype(torch, a, "int8")


def test_sizes_the_fp8_and_int8_kernels_refuse_are_skipped_with_the_reason() -> None:
    assert "multiples of 16" in (matmul.size_problem("fp8", 100) or "")
    assert "above 16" in (matmul.size_problem("int8", 16) or "")
    assert "multiples of 8" in (matmul.size_problem("int8", 100) or "")
    assert matmul.size_problem("bf16", 100) is None
    with pytest.raises(SkipCase):
        matmul._case(torch, "cuda:0", "fp8", 100, True, BenchContext(), None)


def _gpu_torch(cc: tuple[int, int], **missing: bool) -> Any:
    fake = SimpleNamespace(
        cuda=SimpleNamespace(get_device_capability=lambda device: cc),
        _scaled_mm=torch._scaled_mm,
        float8_e4m3fn=torch.float8_e4m3fn,
        _int_mm=torch._int_mm,
    )
    for name in missing:
        delattr(fake, name)
    return fake


def test_precisions_are_gated_by_compute_capability() -> None:
    def runs(cc: tuple[int, int], precision: str, **missing: bool) -> bool:
        return matmul.supported(_gpu_torch(cc, **missing), "cuda:0", precision) is None

    assert all(runs((9, 0), p) for p in matmul.GPU_PRECISIONS)  # H100: everything
    assert runs((8, 9), "fp8") and not runs((8, 6), "fp8")  # fp8 from Ada on
    assert runs((8, 0), "bf16") and not runs((7, 5), "bf16")
    assert runs((8, 0), "tf32") and not runs((7, 0), "tf32")
    assert runs((7, 0), "fp16") and runs((6, 0), "fp64")
    assert not runs((9, 0), "fp8", _scaled_mm=True)
    assert not runs((9, 0), "int8", _int_mm=True)
    why = matmul.supported(_gpu_torch((8, 6)), "cuda:0", "fp8")
    assert why == "needs compute capability 8.9, this GPU has 8.6"


# -- the CUDA event clock -------------------------------------------------------------


class _FakeCuda:
    """torch.cuda's events on a simulated GPU: each recorded event gets the next
    timestamp (1.5 ms apart); ``synchronize`` calls are logged."""

    def __init__(self) -> None:
        self.recorded: list[Any] = []
        self.event_waits: list[Any] = []
        self.device_syncs: list[Any] = []
        self.streams: list[Any] = []
        cuda = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                assert enable_timing, "timing events need enable_timing=True"
                self.t_ms: float | None = None

            def record(self, stream: Any = None) -> None:
                cuda.streams.append(stream)
                self.t_ms = 1.5 * len(cuda.recorded)
                cuda.recorded.append(self)

            def synchronize(self) -> None:
                cuda.event_waits.append(self)

            def elapsed_time(self, end: Any) -> float:
                assert self.t_ms is not None and end.t_ms is not None
                return float(end.t_ms - self.t_ms)

        self.Event = Event

    def current_stream(self, device: Any) -> str:
        return f"stream of {device}"

    def synchronize(self, device: Any = None) -> None:
        self.device_syncs.append(device)


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> _FakeCuda:
    fake = _FakeCuda()
    monkeypatch.setattr(torch.cuda, "Event", fake.Event)
    monkeypatch.setattr(torch.cuda, "current_stream", fake.current_stream)
    monkeypatch.setattr(torch.cuda, "synchronize", fake.synchronize)
    return fake


def test_cuda_clock_bounds_how_far_the_host_runs_ahead(fake_cuda: _FakeCuda) -> None:
    clock = CudaEventClock("cuda:1", max_in_flight=3)
    ends = []
    for i in range(10):
        clock.start()
        clock.stop()
        ends.append(fake_cuda.recorded[-1])
        # After call i, the host has waited for call i-3 and none later.
        assert fake_cuda.event_waits == ends[: max(0, i + 1 - 3)]
    samples = clock.collect()
    assert samples == [pytest.approx(0.0015)] * 10  # ms from elapsed_time, s out
    assert fake_cuda.device_syncs == [torch.device("cuda:1")]  # one full sync
    assert set(fake_cuda.streams) == {"stream of cuda:1"}


def test_cuda_clock_without_a_bound_waits_only_at_collect(fake_cuda: _FakeCuda) -> None:
    clock = CudaEventClock("cuda:0", max_in_flight=None)
    m = measure(lambda: None, clock=clock, warmup=2, min_iters=25, min_time_s=0.0)
    assert m.stats.n == len(m.samples_s) == 25 and m.clock == "cuda_events"
    assert fake_cuda.event_waits == []
    with pytest.raises(ValueError):
        CudaEventClock("cuda:0", max_in_flight=0)


def test_measure_with_the_default_cuda_clock(fake_cuda: _FakeCuda) -> None:
    m = measure(lambda: None, clock=CudaEventClock("cuda:0"), warmup=1, min_iters=20, min_time_s=0)
    assert m.stats.median_s == pytest.approx(0.0015) and m.cold_s == pytest.approx(0.0015)
    assert len(fake_cuda.event_waits) == 20 - 8  # the default bound: 8 calls in flight


# -- buffer sizes -----------------------------------------------------------------------


def _memory_torch(free: int, total: int = 80 * 10**9) -> Any:
    return SimpleNamespace(
        cuda=SimpleNamespace(mem_get_info=lambda device: (free, total)), device=str
    )


def test_gpu_memory_buffers_on_an_80gb_gpu_and_a_busy_one() -> None:
    gib = 2**30
    h100 = _memory_torch(free=79 * 10**9)
    assert memory.gpu_buffer_bytes(h100, "cuda:0", quick=False) == 2 * gib
    assert memory.gpu_buffer_bytes(h100, "cuda:0", quick=True) == 1 * gib
    # 50 MiB of L2: three 2 GiB arrays are 40x it, STREAM's 4x rule with room to spare.
    assert memory.GPU_BUFFER_BYTES >= 4 * 50 * 2**20
    busy = _memory_torch(free=3 * gib + 12345)
    size = memory.gpu_buffer_bytes(busy, "cuda:0", quick=False)
    assert size == (3 * gib // 8) // 2**20 * 2**20 and size % 2**20 == 0


# -- the plain-PyTorch reference measures what the harness measures ---------------------


def _plain() -> ModuleType:
    """scripts/plain_torch_reference.py, loaded by path: it is no part of the package on
    purpose (the baseline that uses no gpuscout code), so it is not imported from it."""
    path = REPO / "scripts" / "plain_torch_reference.py"
    spec = importlib.util.spec_from_file_location("plain_torch_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_reference_uses_the_harness_sizes_and_timing() -> None:
    plain = _plain()
    harness = {
        "MATMUL_N": max(matmul.GPU_SIZES),  # the size bench micro --quick also runs
        "MEMORY_BYTES": memory.GPU_BUFFER_BYTES,  # per array, full run
        "TRANSFER_BYTES": max(transfer.SIZES_BYTES),
        "WARMUP": FULL_TIMING.warmup,
        "MIN_ITERS": FULL_TIMING.min_iters,
        "MIN_TIME_S": FULL_TIMING.min_time_s,
    }
    assert {name: getattr(plain, name) for name in harness} == harness
    assert max(matmul.GPU_QUICK_SIZES) == harness["MATMUL_N"]
    lines = (REPO / "scripts" / "plain_torch_reference.py").read_text().splitlines()
    assert max(len(line) for line in lines) <= 100


@pytest.mark.usefixtures("restore_fp32_settings")
def test_plain_reference_tf32_switch_matches_the_harness() -> None:
    plain = _plain()
    plain.set_tf32(True)
    with_plain = _tf32_state()
    plain.set_tf32(False)
    with matmul._tf32(torch, "cuda:0", "tf32"):
        assert _tf32_state() == with_plain == (True, "high")
    assert _tf32_state() == (False, "highest")
