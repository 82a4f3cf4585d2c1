"""A recorded example for the report's tests: one `gpuscout run` on a CPU and an H100.

The figures are invented but typical of a 16-core Xeon and an H100 SXM with torch 2.x,
with every field the report reads. They
live with the tests, not in the package, so no invented figure ever reaches a user's
report. The unit tests and tests/browser fill a store with it; ``gpu_name`` and ``host``
let a test put a hostile string where the machine's name goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpuscout._types import Finding, Result, Stats, Status
from gpuscout.store import Store

H100 = "NVIDIA H100 80GB HBM3"
CPU = "Intel(R) Xeon(R) Platinum 8480+"


def fingerprint(gpu_name: str = H100, host: str = "lab-h100") -> dict[str, Any]:
    return {
        "host": host,
        "cpu_model": CPU,
        "arch": "x86_64",
        "physical_cores": 16,
        "logical_cores": 16,
        "ram_total_bytes": 128 * 2**30,
        "os": "Ubuntu 24.04.2 LTS",
        "os_name": "Linux",
        "os_release": "6.8.0-60-generic",
        "python_version": "3.12.3",
        "container": None,
        "wsl": False,
        "nvml_state": "ok",
        "driver_version": "580.95.05",
        "driver_cuda_version": "13.0",
        "gpus": [
            {
                "index": 0,
                "name": gpu_name,
                "uuid": "GPU-5e0b8a52-8f1e-4c39-9d2b-3a1f7c6e9b10",
                "catalog_id": "h100-sxm5-80gb",
                "memory_total_bytes": 85520809984,
                "compute_capability": [9, 0],
                "mig_enabled": False,
                "lost": False,
            }
        ],
        "torch_version": "2.9.1+cu130",
        "torch_cuda_build": "13.0",
        "torch_hip_build": None,
        "cudnn_version": "91300",
        "tensorflow_version": None,
        "jax_version": None,
        "gpuscout_version": "0.1.0",
    }


def findings(gpu_name: str = H100) -> list[Finding]:
    ok = Status.PASS
    return [
        Finding("host.cpu", ok, f"{CPU}: 16 cores / 16 threads, 128 GiB RAM"),
        Finding("host.environment", ok, "Ubuntu 24.04.2 LTS, no container"),
        Finding(
            "nvidia.driver", ok, f"driver 580.95.05 (supports CUDA up to 13.0), 1 GPU: {gpu_name}"
        ),
        Finding("gpu.identity", ok, f"{gpu_name}, 80 GiB, compute capability 9.0", subject="GPU 0"),
        Finding("gpu.pcie", ok, "PCIe gen5 x16 (max gen5 x16)", subject="GPU 0"),
        Finding(
            "gpu.throttle",
            ok,
            "no throttling (temperature 34 C, power 118 W of 700 W)",
            subject="GPU 0",
        ),
        Finding("gpu.ecc", ok, "ECC on, no uncorrectable errors", subject="GPU 0"),
        Finding(
            "gpu.memory",
            Status.WARN,
            "3.1 GiB of 79.6 GiB in use by 1 other process",
            "Another process holds GPU memory: measurements may be slower and large models "
            "may not fit.",
            "nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv",
            subject="GPU 0",
        ),
        Finding("framework.installed", ok, "torch 2.9.1+cu130"),
        Finding("torch.build", ok, "torch 2.9.1+cu130 built with CUDA 13.0, cuDNN 9.13.0"),
        Finding("torch.arch", ok, "sm_90 is in torch's arch list", subject="GPU 0"),
        Finding("torch.kernel", ok, "a test kernel ran on 1 GPU(s)"),
    ]


def _stats(median_s: float, spread: float = 0.02) -> Stats:
    return Stats(
        n=25,
        median_s=median_s,
        mean_s=median_s * (1 + spread / 4),
        min_s=median_s * (1 - spread),
        max_s=median_s * (1 + 2 * spread),
        p10_s=median_s * (1 - spread / 2),
        p90_s=median_s * (1 + spread),
        iqr_s=median_s * spread,
        cv=spread / 2,
        noisy=False,
    )


def _micro(
    device: str, name: str, figure: float, unit: str, peak: float | None, src: str
) -> Result:
    return Result(
        name, device, figure, unit, "ok", _stats(1e-3),
        figure / peak if peak else None,
        extra={"peak": peak, "ceiling_source": src},
    )  # fmt: skip


def micro_results(gpu: bool = True) -> list[Result]:
    cpu_src = "CPU formula: 16 cores x 3000 MHz x FLOP/cycle (fp32 64, bf16 128; avx512)"
    out = [
        _micro("cpu", "matmul/fp32/2048", 2.18, "TFLOPS", 3.07, cpu_src),
        _micro("cpu", "matmul/bf16/2048", 3.95, "TFLOPS", 6.14, cpu_src),
        _micro("cpu", "memory/copy", 88.0, "GB/s", 307.2, "DDR5-4800 x 8 channels"),
        _micro("cpu", "memory/triad", 96.5, "GB/s", 307.2, "DDR5-4800 x 8 channels"),
        _micro("cpu", "launch/dispatch", 2.1, "us", None, ""),
    ]
    if gpu:
        src = "catalog:h100-sxm5-80gb"
        out += [
            _micro("cuda:0", "matmul/fp32/8192", 51.2, "TFLOPS", 66.9, src),
            _micro("cuda:0", "matmul/tf32/8192", 378.0, "TFLOPS", 494.7, src),
            _micro("cuda:0", "matmul/fp16/8192", 712.0, "TFLOPS", 989.5, src),
            _micro("cuda:0", "matmul/bf16/8192", 705.0, "TFLOPS", 989.5, src),
            _micro("cuda:0", "matmul/fp8/8192", 1298.0, "TFLOPS", 1978.9, src),
            _micro("cuda:0", "memory/copy", 2905.0, "GB/s", 3350.0, src),
            _micro("cuda:0", "memory/triad", 2961.0, "GB/s", 3350.0, src),
            _micro("cuda:0", "transfer/h2d/pinned", 53.4, "GB/s", 63.0, "PCIe gen5 x16"),
            _micro("cuda:0", "transfer/d2h/pinned", 54.9, "GB/s", 63.0, "PCIe gen5 x16"),
            _micro("cuda:0", "launch/dispatch", 4.6, "us", None, ""),
        ]
    return out


UNITS = {"mlp": "samples/s", "cnn": "images/s", "encoder": "sequences/s"}
TRAIN_FLOPS_PER_SAMPLE = {"mlp": 609_792, "cnn": 1.67e9, "encoder": 8.6e10}
MODELS = {"mlp": None, "cnn": "resnet18", "encoder": "bert-base"}
# (workload, impl, device, figure, batch, bytes_per_step, dtype, ceiling precision and TFLOPS)
_WORK: Sequence[tuple[Any, ...]] = (
    ("mlp", "reference", "cpu", 121_000.0, 64, 3.6e6, "fp32", "fp32", 2.18),
    ("mlp", "tuned", "cpu", 418_000.0, 512, 9.8e6, "fp32", "fp32", 2.18),
    ("mlp", "reference", "cuda:0", 61_200.0, 64, 3.6e6, "fp32", "tf32", 378.0),
    ("mlp", "tuned", "cuda:0", 2_480_000.0, 4096, 4.3e7, "fp32", "tf32", 378.0),
    ("cnn", "reference", "cpu", 655.0, 128, 6.1e8, "fp32", "fp32", 2.18),
    ("cnn", "tuned", "cpu", 702.0, 128, 6.1e8, "fp32", "fp32", 2.18),
    ("cnn", "reference", "cuda:0", 12_400.0, 128, 6.1e8, "fp32", "tf32", 378.0),
    ("cnn", "tuned", "cuda:0", 31_800.0, 256, 6.8e8, "bf16", "bf16", 705.0),
    ("encoder", "reference", "cuda:0", 1_150.0, 32, 3.4e9, "fp32", "tf32", 378.0),
    ("encoder", "tuned", "cuda:0", 3_050.0, 32, 2.1e9, "bf16", "bf16", 705.0),
)


def workload_results(gpu: bool = True, gpu_name: str = H100) -> list[Result]:
    out = []
    for wl, impl, dev, fig, batch, moved, dtype, prec, peak in _WORK:
        if dev != "cpu" and not gpu:
            continue
        step, flops, model, unit = (
            batch / fig,
            TRAIN_FLOPS_PER_SAMPLE[wl] * batch,
            MODELS[wl],
            UNITS[wl],
        )
        achieved = flops / step / 1e12
        extra: dict[str, Any] = {
            "workload": wl,
            "impl": impl,
            "variant": "seq128" if wl == "encoder" else None,
            "quick": True,
            "step_time_s": step,
            "flops_per_step": flops,
            "bytes_per_step": moved,
            "achieved_tflops": achieved,
            "batch_size": batch,
            "dtype": dtype,
            "ceiling_precision": prec,
            "ceiling_kind": f"{prec} matmul peak",
            "ceiling_value": peak,
            "ceiling_unit": "TFLOPS",
            "ceiling_source": "measured (this run)",
            "fraction_of_ceiling": achieved / peak,
        }
        if model:
            extra["model"] = model
        if wl == "encoder":
            extra["seq_len"] = 128
        if dev != "cpu":
            extra |= {"device_name": gpu_name, "memory_total_bytes": 85520809984}
        name = f"{wl}/{impl}/seq128" if wl == "encoder" else f"{wl}/{impl}"
        out.append(
            Result(name, dev, fig, unit, "ok", _stats(step, 0.03), achieved / peak, extra=extra)
        )
    return out


def fill_store(
    store: Store,
    *,
    gpu: bool = True,
    gpu_name: str = H100,
    host: str = "lab-h100",
    summary: Mapping[str, Any] | None = None,
) -> int:
    """Record the example as one run of kind "run"; returns its id."""
    fp = fingerprint(gpu_name, host)
    if not gpu:
        fp |= {
            "gpus": [],
            "driver_version": None,
            "driver_cuda_version": None,
            "nvml_state": "library_not_found",
        }
    with store.run("run", fp) as run:
        run.add_findings(findings(gpu_name) if gpu else findings(gpu_name)[:2])
        run.add_results(micro_results(gpu) + workload_results(gpu, gpu_name))
        run.summary.update(summary or {"headline": "example run"})
        return run.id
