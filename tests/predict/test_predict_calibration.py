"""Calibration on a GPU that lacks the precision a run recorded: the cnn workload records
"tf32" for any fp32 run on CUDA, and a V100 has no TF32 rate (cuDNN runs fp32 there). The
run must still be calibrated on that GPU's datasheet, not fall back to the defaults."""

from __future__ import annotations

import pytest

from gpuscout._types import Result
from gpuscout.catalog import find_gpu
from gpuscout.predict import predict_results


def _cnn_fp32(gpu_id: str, device_name: str, images_per_s: float) -> Result:
    spec = find_gpu(gpu_id)
    extra = {
        "workload": "cnn",
        "impl": "tuned",
        "variant": None,
        "batch_size": 256,
        "step_time_s": 256 / images_per_s,
        "flops_per_step": 24.535e9 * 256,
        "bytes_per_step": 226.8e6 * 256,
        "host_ops_per_step": 405,
        "dtype": "fp32",
        "ceiling_precision": "tf32",  # what workloads/cnn.py records on any CUDA device
        "model": "resnet50",
        "device_name": device_name,
        "memory_total_bytes": spec.memory_bytes,
    }
    return Result("cnn/tuned", "cuda:0", images_per_s, "images/s", extra=extra)


def test_an_fp32_cnn_run_on_a_v100_is_calibrated_on_its_fp32_rate() -> None:
    r = _cnn_fp32("v100-sxm2-16gb", "Tesla V100-SXM2-16GB", 369.0)
    pred = predict_results([r], None, [find_gpu("v100-sxm2-16gb"), find_gpu("a100-sxm4-80gb")])
    (cal,) = pred.calibrations
    assert pred.calibrated and cal.calibrated and cal.gpu_id == "v100-sxm2-16gb"
    assert "datasheet peak (fp32)" in cal.ceiling_source
    own = next(p for p in pred.projections if p.gpu_id == "v100-sxm2-16gb")
    assert own.throughput == pytest.approx(369.0)  # the measurement, not the defaults
    assert own.precision == "fp32"  # what the step ran in there, as the calibration says
    a100 = next(p for p in pred.projections if p.gpu_id == "a100-sxm4-80gb")
    assert a100.precision == "tf32" and a100.basis.startswith("calibrated")


def test_a_gpu_with_the_recorded_precision_names_no_fallback() -> None:
    r = _cnn_fp32("a100-sxm4-80gb", "NVIDIA A100-SXM4-80GB", 1066.0)
    (cal,) = predict_results([r], None, [find_gpu("a100-sxm4-80gb")]).calibrations
    assert cal.calibrated and "datasheet peak," in cal.ceiling_source


def test_a_v100_run_is_calibrated_on_its_measured_fp32_matmul() -> None:
    """bench micro on a V100 skips matmul/tf32 (sm_80+) and measures matmul/fp32: that
    measured rate is the ceiling of the fp32 cnn step (recorded "tf32"), not the datasheet."""
    r = _cnn_fp32("v100-sxm2-16gb", "Tesla V100-SXM2-16GB", 369.0)
    micro = [
        Result("matmul/fp32", "cuda:0", 14.0, "TFLOPS"),
        Result("matmul/tf32", "cuda:0", None, "TFLOPS", "skipped", error="needs sm_80"),
        Result("memory/copy", "cuda:0", 800.0, "GB/s"),
    ]
    spec = find_gpu("v100-sxm2-16gb")
    (cal,) = predict_results([r, *micro], None, [spec]).calibrations
    assert cal.calibrated
    assert cal.ceiling_source == "measured matmul (fp32), measured bandwidth"
    # The compute part of the fit is the step's FLOPs at the measured 14 TFLOPS.
    flops = r.extra["flops_per_step"]
    assert cal.compute_s == pytest.approx(flops / (14e12 * cal.eff_compute))
