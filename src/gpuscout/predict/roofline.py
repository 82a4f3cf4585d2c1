"""The performance model: a measured step, split into parts that move with different
hardware, and put back together on another GPU.

One step of F FLOPs, B bytes and N launched ops on a device with achievable peak P
(FLOP/s, in the precision the step computes in) and bandwidth W (bytes/s):

    compute  = F / (P * eff_c)         moves with the GPU's peak
    memory   = B / (W * eff_m)         moves with the GPU's bandwidth
    other    = F / R                   moves with neither (R: the same on every GPU)
    kernels  = N_k * k                 a short kernel's floor on the GPU (k ~ 2 us)
    host     = N_h * h                 dispatch and launch on the host (h ~ 10 us)

    device   = compute + memory + other + kernels  (a step is many kernels, some bound
                                            by FLOPs, some by bytes, some by neither:
                                            their times add)
    step     = max(device, host)  on a GPU (launches are asynchronous: the slower side
                                            sets the pace; host-bound work does not
                                            speed up on a faster GPU)
    step     = device + host      on the CPU (dispatch runs on the cores that compute)

N_k is the step's ATen op count (halved when compiled); N_h is the same count, or one
per step where the program replays a CUDA graph.

Calibration: the default efficiencies (``defaults.PRIORS``, from published figures)
predict a step time T0 on the measured device; the measured time t is split in the
proportions of that prediction: on a GPU, if the device side dominates, compute,
memory and kernels are scaled by t / device0; if the host side dominates, the host
cost per op becomes t / N_h. So the model reproduces t on the measured device exactly,
and each part moves with its own hardware on the others. What one measurement cannot
tell (how a step's device time divides between compute, memory and the rest) comes
from the published H100 / H200 / A100 figures behind the priors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gpuscout.catalog import GpuSpec
from gpuscout.catalog.gpu import TENSOR_MIN_CC
from gpuscout.predict import defaults as d
from gpuscout.predict import facts
from gpuscout.predict.basis import Basis
from gpuscout.predict.records import Calibration

# Precisions to fall back to on a GPU without the measured one (a tuned program uses
# fp16 where there is no bf16, and fp32 where there are no tensor cores).
_FALLBACK = {
    "fp64": ("fp64",),
    "fp32": ("fp32",),
    "tf32": ("tf32", "fp32"),
    "bf16": ("bf16", "fp16", "fp32"),
    "fp16": ("fp16", "fp32"),
    "fp8": ("fp8", "bf16", "fp16", "fp32"),
    "int8": ("int8", "fp16", "fp32"),
}


@dataclass(frozen=True)
class RooflineInput:
    """The two rates one evaluation of the model divides by, at the precision the step
    computes in: FLOP/s and bytes/s, as the step can reach them (a measured device's
    figures, or a datasheet's scaled to what is achievable), and whether host and device
    overlap (a GPU). Internal to predict: built from a device's ``Ceiling`` or a catalog
    row by ``predict.project`` and ``catalog_input``, never stored or shown."""

    flops_per_s: float
    bytes_per_s: float
    gpu: bool
    source: str


@dataclass(frozen=True)
class Parts:
    compute_s: float
    memory_s: float
    other_s: float
    kernels_s: float
    host_s: float
    overlap: bool  # True on a GPU

    @property
    def device_s(self) -> float:
        return self.compute_s + self.memory_s + self.other_s + self.kernels_s

    @property
    def step_s(self) -> float:
        if self.overlap:
            return max(self.device_s, self.host_s)
        return self.device_s + self.host_s

    @property
    def bound(self) -> str:
        if self.overlap and self.host_s >= self.device_s:
            return "host"
        # "mixed": the part neither a faster peak nor more bandwidth shortens (norms,
        # element-wise and small kernels) is the largest; naming the runner-up instead
        # would promise a speed-up the hardware cannot give.
        terms = {
            "compute": self.compute_s,
            "memory": self.memory_s,
            "mixed": self.other_s,
            "host": self.kernels_s + (0.0 if self.overlap else self.host_s),
        }
        return max(terms, key=lambda k: terms[k])


def graphed_on_gpu(b: Basis) -> bool:
    return b.graphs or (b.impl == "tuned" and facts.graphed_on_gpu(b.workload, b.family))


def kernel_count(b: Basis) -> float:
    return b.host_ops * (d.COMPILED_KERNEL_FACTOR if b.compiled else 1.0)


def host_count(b: Basis, gpu: bool) -> float:
    return 1.0 if gpu and graphed_on_gpu(b) else b.host_ops


def native_bf16(spec: GpuSpec) -> bool:
    """bf16 at tensor-core rate: Ampere (8.0) or newer on NVIDIA; a bf16 rate elsewhere."""
    if spec.peak_tflops("bf16") is None:
        return False
    cc = spec.compute_capability_tuple
    return cc is None or cc >= TENSOR_MIN_CC["bf16"]


def as_run_on(b: Basis, spec: GpuSpec) -> Basis:
    """``b``'s step as its program runs on ``spec``. A tuned CPU run in fp32 (no AMX) of
    a workload whose tuned GPU implementation autocasts to bf16 computes in bf16 there,
    and moves the bytes counted for bf16. At the GPU's tf32 or fp32 rate instead, its
    compute part would take 2x (a GeForce card, or TF32 against bf16) to 15x (an H100's
    fp32 against its bf16) the time the same program takes there."""
    if b.on_gpu or b.impl != "tuned" or b.precision != "fp32":
        return b
    if not facts.bf16_on_gpu(b.workload) or not native_bf16(spec):
        return b
    # Runs recorded before bytes_per_step_bf16 existed keep their fp32 bytes.
    return replace(b, precision="bf16", dtype="bf16", nbytes=b.nbytes_bf16 or b.nbytes)


def target_precision(b: Basis, spec: GpuSpec) -> str | None:
    """The precision the step computes in on ``spec``; None if it has no usable rate."""
    # An fp32 step stays IEEE fp32 on a GPU: the workloads turn TF32 off for their runs
    # (cuBLAS and cuDNN alike), so its rate is the fp32 one, not TF32's.
    p = b.precision
    for q in _FALLBACK.get(p, (p, "fp32")):
        if spec.peak_tflops(q) is not None:
            return q
    return None


def catalog_input(spec: GpuSpec, precision: str) -> RooflineInput:
    """``spec``'s datasheet rates at ``precision``, scaled to what is achievable."""
    peak = spec.peak_tflops(precision) or spec.fp32_tflops
    return RooflineInput(
        peak * 1e12 * d.ACHIEVABLE_COMPUTE,
        spec.bandwidth_bytes_per_s * d.ACHIEVABLE_BANDWIDTH,
        True,
        f"catalog {spec.id} x achievable ({d.ACHIEVABLE_COMPUTE:g} compute, "
        f"{d.ACHIEVABLE_BANDWIDTH:g} bandwidth)",
    )


def parts(
    b: Basis,
    c: RooflineInput,
    eff_c: float,
    eff_m: float,
    kernel_s: float,
    host_op_s: float,
    other_tflops: float = 0.0,
) -> Parts:
    f, n = b.flops, b.nbytes
    return Parts(
        f / (c.flops_per_s * eff_c),
        n / (c.bytes_per_s * eff_m) if n else 0.0,
        f / (other_tflops * 1e12) if other_tflops > 0 and c.gpu else 0.0,
        kernel_count(b) * kernel_s if c.gpu else 0.0,
        host_count(b, c.gpu) * host_op_s,
        c.gpu,
    )


def prior_for(b: Basis, gpu: bool) -> d.Prior:
    return d.PRIORS[b.family] if gpu else d.CPU


def default_host_op_s(gpu: bool) -> float:
    return d.DEFAULT_GPU_HOST_OP_S if gpu else d.DEFAULT_CPU_HOST_OP_S


def calibrate(
    b: Basis,
    local: RooflineInput,
    host_op_s: float | None,
    gpu_id: str | None,
) -> Calibration:
    """Efficiencies that reproduce ``b.step_s`` on ``local`` (see the module docstring)."""
    prior = prior_for(b, local.gpu)
    h0 = host_op_s if host_op_s is not None else default_host_op_s(local.gpu)
    kf = d.KERNEL_FLOOR_S
    ec, em, ot, h = prior.eff_compute, prior.eff_memory, prior.other_tflops, h0
    p0 = parts(b, local, ec, em, kf, h, ot)
    t = b.step_s
    n_host = host_count(b, local.gpu)
    if not local.gpu:  # a sum: scale every part alike
        s = t / p0.step_s
        ec, em, ot, kf, h = ec / s, em / s, ot / s, kf * s, h * s
    elif p0.device_s >= p0.host_s:
        s = t / p0.device_s
        ec, em, ot, kf = ec / s, em / s, ot / s, kf * s
        if n_host and n_host * h > t:
            h = t / n_host
    else:  # host-bound: the host sets t; the device only has to fit under it
        h = t / n_host
        s = max(1.0, p0.device_s / t)
        ec, em, ot, kf = ec * s, em * s, ot * s, kf / s
    fit = parts(b, local, ec, em, kf, h, ot)
    return Calibration(
        workload=b.workload,
        result_name=b.result_name,
        device=b.device,
        device_name=b.device_name,
        gpu_id=gpu_id,
        calibrated=True,
        step_s=t,
        eff_compute=ec,
        eff_memory=em,
        other_tflops=ot,
        kernel_s=kf,
        host_op_s=h,
        compute_s=fit.compute_s,
        memory_s=fit.memory_s,
        other_s=fit.other_s,
        kernels_s=fit.kernels_s,
        host_s=fit.host_s,
        precision=b.precision,
        ceiling_source=local.source,
    )


def uncalibrated(b: Basis, host_op_s: float | None) -> Calibration:
    """The GPU defaults, for work measured only on a CPU (or on an unknown GPU)."""
    prior = prior_for(b, True)
    return Calibration(
        workload=b.workload,
        result_name=b.result_name,
        device=b.device,
        device_name=b.device_name,
        gpu_id=None,
        calibrated=False,
        step_s=b.step_s,
        eff_compute=prior.eff_compute,
        eff_memory=prior.eff_memory,
        other_tflops=prior.other_tflops,
        kernel_s=d.KERNEL_FLOOR_S,
        host_op_s=host_op_s if host_op_s is not None else d.DEFAULT_GPU_HOST_OP_S,
        compute_s=0.0,
        memory_s=0.0,
        other_s=0.0,
        kernels_s=0.0,
        host_s=0.0,
        precision=b.precision,
        ceiling_source=f"defaults: {prior.source}",
    )


@dataclass(frozen=True)
class Point:
    """One projected step: the point, its range, and what bounds it."""

    parts: Parts
    low_s: float
    high_s: float
    precision: str

    @property
    def step_s(self) -> float:
        return self.parts.step_s


def band(cal: Calibration, spec: GpuSpec, measured: GpuSpec | None) -> tuple[float, float]:
    if not cal.calibrated:
        return d.BAND_DEFAULTS
    if measured is not None and measured.architecture.split()[0] == spec.architecture.split()[0]:
        return d.BAND_SAME_ARCH
    return d.BAND_CROSS_ARCH


def project(
    b: Basis,
    cal: Calibration,
    spec: GpuSpec,
    *,
    local: RooflineInput | None = None,
    measured: GpuSpec | None = None,
) -> Point | None:
    """``b`` on one ``spec`` GPU; ``local`` is the measured device's own rates, used
    when ``spec`` is that device (so the projection there is the measurement)."""
    same = cal.gpu_id is not None and cal.gpu_id == spec.id and local is not None
    if not same:
        b = as_run_on(b, spec)
    # On the measured GPU itself: the precision its step ran in there (a V100 runs a
    # "tf32" convolution step in fp32), as its calibration says.
    prec = (target_precision(b, spec) or b.precision) if same else target_precision(b, spec)
    if prec is None:
        return None
    c = local if same and local is not None else catalog_input(spec, prec)

    # The band scales the host's cost per op too: on another machine (a cloud box, a new
    # workstation) or from a CPU-only run (a default cost) it is no better known than the
    # efficiencies, and host-bound work would otherwise get a zero-width "range".
    def at(k: float) -> Parts:
        return parts(b, c, cal.eff_compute * k, cal.eff_memory * k, cal.kernel_s,
                     cal.host_op_s / k, cal.other_tflops * k)  # fmt: skip

    p = at(1.0)
    if same:
        lo, hi = b.spread
        if (lo, hi) == (1.0, 1.0):
            lo, hi = 1 - d.BAND_MEASURED, 1 + d.BAND_MEASURED
        return Point(p, p.step_s * lo, p.step_s * hi, prec)
    blo, bhi = band(cal, spec, measured)
    return Point(p, min(at(bhi).step_s, p.step_s), max(at(blo).step_s, p.step_s), prec)
