"""The predictor on synthetic measurements: exact where it was measured, bandwidth-bound
work moves with bandwidth, compute-bound with peak, host-bound not at all; ranges,
memory fit, precision, the CPU-only path, and a stored run. No torch needed."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from gpuscout._types import Result, Stats
from gpuscout.catalog import find_gpu
from gpuscout.errors import UsageError
from gpuscout.predict import Prediction, Projection, predict_results, predict_run
from gpuscout.predict import defaults as d
from gpuscout.store import Store

H100: dict[str, Any] = {
    "device_name": "NVIDIA H100 80GB HBM3",
    "memory_total_bytes": 85_520_809_984,
}


def wl(
    workload: str,
    device: str,
    step_s: float,
    *,
    flops: float,
    nbytes: float,
    ops: float,
    impl: str = "tuned",
    variant: str | None = None,
    batch: int = 32,
    dtype: str = "bf16",
    unit: str = "samples/s",
    **extra: Any,
) -> Result:
    name = f"{workload}/{impl}" + (f"/{variant}" if variant else "")
    e = {
        "workload": workload,
        "impl": impl,
        "variant": variant,
        "batch_size": batch,
        "flops_per_step": flops,
        "bytes_per_step": nbytes,
        "host_ops_per_step": ops,
        "dtype": dtype,
        "step_time_s": step_s,
    } | extra
    return Result(name, device, batch / step_s, unit, extra=e)


def cnn_h100(step_s: float = 256 / 2790, **kw: Any) -> Result:
    return wl("cnn", "cuda:0", step_s, flops=3 * 8.178e9 * 256, nbytes=29.4e9, ops=459,
              batch=256, unit="images/s", params=25_557_032, model="resnet50", compile=True,
              **(H100 | kw))  # fmt: skip


def decode_h100(step_s: float = 0.002, ops: float = 10, **kw: Any) -> Result:
    return wl("llm", "cuda:0", step_s, flops=2.2e9, nbytes=2.2e9 + 5e6, ops=ops,
              variant="decode-b1", batch=1, unit="tokens/s", model="llama-1.1b",
              prompt_len=128, new_tokens=128, **(H100 | kw))  # fmt: skip


def by_gpu(pred: Prediction, gpu_id: str, gpus: int = 1) -> Projection:
    return next(p for p in pred.projections if p.gpu_id == gpu_id and p.gpus == gpus)


GPUS = [find_gpu(g) for g in ("h100-sxm5-80gb", "h200-sxm-141gb", "b200", "t4", "rtx-3060-12gb")]


@pytest.mark.parametrize("make", [cnn_h100, decode_h100])
def test_exact_on_the_measured_gpu(make: Any) -> None:
    r = make()
    p = by_gpu(predict_results([r], None, GPUS), "h100-sxm5-80gb")
    assert p.step_s == pytest.approx(r.extra["step_time_s"], rel=0.01)
    assert p.speedup == pytest.approx(1.0, rel=0.01)


def test_exact_with_measured_ceilings_too() -> None:
    micro = [
        Result("matmul/bf16/8192", "cuda:0", 790.0, "TFLOPS"),
        Result("memory/copy", "cuda:0", 2900.0, "GB/s"),
        Result("launch/launches", "cuda:0", 150_000.0, "launches/s"),
    ]
    pred = predict_results([cnn_h100(), *micro], None, GPUS)
    assert by_gpu(pred, "h100-sxm5-80gb").step_s == pytest.approx(256 / 2790, rel=0.01)
    assert "measured" in pred.calibrations[0].ceiling_source
    assert pred.calibrations[0].host_op_s == pytest.approx(1 / 150_000)


def test_memory_bound_work_scales_with_bandwidth() -> None:
    pred = predict_results([decode_h100()], None, GPUS)
    h100, h200 = by_gpu(pred, "h100-sxm5-80gb"), by_gpu(pred, "h200-sxm-141gb")
    assert h100.bound == "memory"
    assert h100.step_s / h200.step_s == pytest.approx(4800 / 3350, rel=0.02)


def test_compute_bound_work_scales_with_peak() -> None:
    prefill = wl("llm", "cuda:0", 0.05, flops=3e13, nbytes=1e8, ops=10, variant="prefill",
                 batch=1, unit="tokens/s", prompt_len=512, model="llama-1.1b", **H100)  # fmt: skip
    pred = predict_results([prefill], None, GPUS)
    h100, b200 = by_gpu(pred, "h100-sxm5-80gb"), by_gpu(pred, "b200")
    assert h100.bound == "compute"
    ratio = find_gpu("b200").peak_tflops("bf16") / find_gpu("h100-sxm5-80gb").peak_tflops("bf16")  # type: ignore[operator]
    assert h100.step_s / b200.step_s == pytest.approx(ratio, rel=0.02)


def test_each_part_moves_with_its_own_ceiling_by_hand() -> None:
    # ResNet-50 on an H100, projected on a B200: compute shrinks by the bf16 peaks
    # (2,250 / 989.5), memory by the bandwidths (7,700 / 3,350); the rest stays.
    pred = predict_results([cnn_h100()], None, GPUS)
    cal = pred.calibrations[0]
    assert cal.compute_s + cal.memory_s + cal.other_s + cal.kernels_s == pytest.approx(256 / 2790)
    want = cal.compute_s * 989.5 / 2250 + cal.memory_s * 3350 / 7700 + cal.other_s + cal.kernels_s
    b200 = by_gpu(pred, "b200")
    assert b200.step_s == pytest.approx(want)
    assert b200.throughput == pytest.approx(256 / want)
    assert b200.speedup == pytest.approx((256 / 2790) / want)
    # On the B200 the part neither ceiling shortens is the largest: not "memory-bound".
    assert cal.other_s > max(cal.compute_s * 989.5 / 2250, cal.memory_s * 3350 / 7700)
    assert b200.bound == "mixed"


def test_host_bound_work_does_not_speed_up_on_a_faster_gpu() -> None:
    # 100 eagerly launched ops at a measured 10 us each: 1 ms of host time per step,
    # while the device work (a tiny MLP) takes microseconds.
    r = wl("mlp", "cuda:0", 0.001, flops=2e7, nbytes=4e6, ops=100, impl="reference",
           dtype="fp32", **H100)  # fmt: skip
    launch = Result("launch/launches", "cuda:0", 100_000.0, "launches/s")
    pred = predict_results([r, launch], None, GPUS)
    for gpu in ("h200-sxm-141gb", "b200"):
        p = by_gpu(pred, gpu)
        assert p.bound == "host"
        assert p.step_s == pytest.approx(0.001, rel=1e-6)
        # Another machine's host cost is no better known than its efficiencies: a
        # host-bound step still gets a range, not a point.
        assert p.step_low_s < p.step_s < p.step_high_s
    assert by_gpu(pred, "t4").step_s >= 0.001


def test_ranges_contain_the_point_and_widen_away_from_the_measured_gpu() -> None:
    stats = Stats(20, 0.1, 0.1, 0.09, 0.12, 0.095, 0.11, 0.01, 0.05, False)
    r = cnn_h100()
    r = Result(r.name, r.device, r.figure, r.unit, stats=stats, extra=r.extra)
    pred = predict_results([r], None, None)
    for p in pred.projections:
        assert p.step_low_s <= p.step_s <= p.step_high_s, p.gpu_id
    own = by_gpu(pred, "h100-sxm5-80gb")
    assert own.step_low_s == pytest.approx(own.step_s * 0.95)  # the measured p10 / median
    h200 = by_gpu(pred, "h200-sxm-141gb")  # same architecture: the narrower band
    a100 = by_gpu(pred, "a100-sxm4-80gb")
    assert h200.step_high_s / h200.step_low_s < a100.step_high_s / a100.step_low_s


def test_a_gpu_too_small_says_it_does_not_fit() -> None:
    big = wl("llm", "cuda:0", 0.01, flops=1.6e10, nbytes=1.6e10, ops=10, variant="decode-b1",
             batch=1, unit="tokens/s", model="llama-8b", prompt_len=128, new_tokens=128,
             **H100)  # fmt: skip
    pred = predict_results([big], None, GPUS)
    small = by_gpu(pred, "rtx-3060-12gb")
    assert small.fits is False and "does not fit" in small.fit_note
    assert by_gpu(pred, "h100-sxm5-80gb").fits is True


def test_precision_falls_back_where_a_gpu_lacks_it() -> None:
    pred = predict_results(
        [cnn_h100()], None, [find_gpu("v100-sxm2-32gb"), find_gpu("gtx-1080-ti")]
    )
    assert by_gpu(pred, "v100-sxm2-32gb").precision == "fp16"
    p = by_gpu(pred, "gtx-1080-ti")
    assert p.precision == "fp32" and any("fp32 here" in a for a in p.assumptions)


def test_cpu_only_run_uses_published_defaults_and_says_so() -> None:
    r = wl("cnn", "cpu", 3.0, flops=3 * 8.178e9 * 16, nbytes=3.6e9, ops=600, batch=16,
           dtype="fp32", unit="images/s", model="resnet50", params=25_557_032)  # fmt: skip
    pred = predict_results([r], {"cpu_model": "Test CPU"}, GPUS)
    assert pred.calibrated is False
    assert "nothing was measured on a GPU" in pred.assumptions[0]
    assert "Test CPU" in pred.measured_on
    p = by_gpu(pred, "h100-sxm5-80gb")
    # The tuned program autocasts to bf16 on a GPU that has it (workloads.base.amp_dtype)
    assert p.basis.startswith("defaults") and p.precision == "bf16"
    assert "computes in bf16 here (fp32 measured)" in p.assumptions
    assert p.speedup is not None and p.speedup > 1
    lo, hi = d.BAND_DEFAULTS
    assert p.step_high_s > p.step_s > p.step_low_s
    assert p.step_high_s / p.step_low_s <= hi / lo + 1e-9


def test_an_fp32_cpu_run_is_projected_as_its_program_runs_on_each_gpu() -> None:
    """A tuned CPU run in fp32 (no AMX) computes in bf16, moving the bytes counted for
    bf16, on a GPU with native bf16; on a T4 (sm_75) it stays fp32; the tutorial-style
    reference runs IEEE fp32 everywhere (the workloads turn cuDNN's default TF32 off)."""
    flops, fp32_bytes, bf16_bytes = 3 * 8.178e9 * 16, 3.6e9, 1.8e9

    def cpu_cnn(impl: str, **kw: Any) -> Result:
        return wl("cnn", "cpu", 3.0, flops=flops, nbytes=fp32_bytes, ops=600, batch=16,
                  dtype="fp32", impl=impl, unit="images/s", model="resnet50", **kw)  # fmt: skip

    gpus = [find_gpu("h100-sxm5-80gb"), find_gpu("t4")]
    with_bf16 = predict_results([cpu_cnn("tuned", bytes_per_step_bf16=bf16_bytes)], None, gpus)
    without = predict_results([cpu_cnn("tuned")], None, gpus)
    ref = predict_results([cpu_cnn("reference")], None, gpus)
    h100, t4 = by_gpu(with_bf16, "h100-sxm5-80gb"), by_gpu(with_bf16, "t4")
    assert h100.precision == "bf16" and t4.precision == "fp32"
    assert by_gpu(ref, "h100-sxm5-80gb").precision == "fp32"
    # Half the bytes: the memory-bound part shrinks, nothing else changes.
    assert h100.step_s < by_gpu(without, "h100-sxm5-80gb").step_s
    assert t4.step_s == pytest.approx(by_gpu(without, "t4").step_s)
    # bf16 against IEEE fp32 on an H100: at least the 1.47x Lambda measured for bf16
    # against TF32 (ResNet-50: 2,790 AMP vs 1,895 TF32), fp32 being slower than TF32.
    assert by_gpu(ref, "h100-sxm5-80gb").step_s > 1.47 * h100.step_s


def test_the_decode_default_reproduces_its_anchor() -> None:
    # torchao / gpt-fast: Llama-3.1-8B bf16, compiled, 126.9 tok/s on an H100 at 15.01 GB
    # a token. Measured on a CPU only, the projection on an H100 is the published figure
    # (the kernel floor the model adds is part of it, not on top of it).
    r = wl("llm", "cpu", 0.5, flops=2 * 8.03e9, nbytes=15.01e9, ops=1600, variant="decode-b1",
           batch=1, unit="tokens/s", model="llama-8b", compile=True)  # fmt: skip
    p = by_gpu(predict_results([r], None, GPUS), "h100-sxm5-80gb")
    assert p.throughput == pytest.approx(126.9, rel=0.01)


def test_a_gpu_measurement_is_preferred_over_the_cpu_one() -> None:
    cpu = wl("cnn", "cpu", 3.0, flops=3.9e11, nbytes=3.6e9, ops=600, batch=16, dtype="fp32")
    pred = predict_results([cpu, cnn_h100()], None, GPUS)
    assert pred.calibrated and pred.measured_on.startswith("NVIDIA H100")


def test_nothing_to_project_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        predict_results([Result("matmul/bf16/4096", "cuda:0", 700.0, "TFLOPS")], None, GPUS)


def test_predict_run_reads_the_newest_workload_run_and_the_hosts_micro_run() -> None:
    with Store(":memory:") as store:
        with store.run("bench-micro", {"host": "box"}) as run:
            run.add_results([Result("memory/copy", "cuda:0", 2800.0, "GB/s")])
        with store.run("workload", {"host": "box"}) as run:
            run.add_results([cnn_h100()])
            wid = run.id
        with store.run("doctor", {"host": "box"}):
            pass
        pred = predict_run(store, gpus=GPUS)
        assert pred.run_id == wid
        assert "measured bandwidth" in pred.calibrations[0].ceiling_source
        with pytest.raises(UsageError):
            predict_run(store, run_id=wid + 1)  # the doctor run has no workloads


def test_importing_predict_does_not_import_torch() -> None:
    code = "import sys, gpuscout.predict, gpuscout.cli.advise; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
