"""Every constant the predictor assumes, with where it comes from.

Default efficiencies are fractions of the *achievable* ceilings: a datasheet peak times
what a good kernel reaches of it. They are derived below, in code, from published
figures (``/work/shared/reference/benchmark-anchors.md``), so a reader can check the
arithmetic: each prior reproduces its anchor on an H100 SXM (989.5 bf16 TFLOPS dense,
3,350 GB/s) exactly. They are used as they are when nothing was measured on a GPU (a
CPU-only run), and for the split of a measured GPU step into compute and memory parts.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a good kernel reaches of the datasheet (anchors section 9 / table 12):
# H100 bf16 matmul 797.5 of 989 TFLOPS in PyTorch (torch-performance-test-data #79), and
# device-to-device copy 2,903 of 3,350 GB/s (Voltage Park / AI@GT suite).
ACHIEVABLE_COMPUTE = 0.8
ACHIEVABLE_BANDWIDTH = 0.87

_H100_BF16_TFLOPS = 989.5  # catalog h100-sxm5-80gb, dense
_H100_BANDWIDTH_GBS = 3350.0
# H200 and A100 SXM against the H100 SXM, from the same catalog: the H200 has the H100's
# compute and 1.43x its bandwidth; the A100 has 0.32x its bf16 peak and 0.61x its bandwidth.
_H200_BW = 4800.0 / 3350.0
_A100_PEAK = 312.0 / 989.5
_A100_BW = 2039.0 / 3350.0


# Per-op costs that no bigger GPU shortens.
# Host: eager PyTorch spends ~5-25 us per op on the host (dispatcher, Python, the
# cudaLaunchKernel call); gpt-fast's eager Llama-2-7B decode is host-bound at 25.5 tok/s
# (pytorch.org/blog/accelerating-generative-ai-2), ~24 us for each of its ~1,600 ops.
# `gpuscout bench micro` measures this machine's cost; without it we take 10 us.
DEFAULT_GPU_HOST_OP_S = 10e-6
DEFAULT_CPU_HOST_OP_S = 2e-6  # a one-element in-place add in eager mode, typical desktop
# Device: a short kernel occupies the GPU for a couple of microseconds however little it
# does (launch, ramp-up, tail); in a CUDA graph this is what is left per kernel.
KERNEL_FLOOR_S = 2e-6
# torch.compile fuses the pointwise ops around each matmul: about half as many kernels
# as eager ATen ops (an assumption; it varies by model).
COMPILED_KERNEL_FACTOR = 0.5


@dataclass(frozen=True)
class Prior:
    """Default efficiencies of one kind of work.

    ``eff_compute`` and ``eff_memory`` are fractions of the achievable ceilings;
    ``other_tflops`` is the rate of the rest of the step, work that neither a higher
    peak nor more bandwidth shortens (pointwise kernels held by clocks and caches,
    synchronisation): the same on every GPU. 0 means there is no such part.
    """

    eff_compute: float
    eff_memory: float
    other_tflops: float
    source: str


def shares(h200_speedup: float, a100_slowdown: float) -> tuple[float, float, float]:
    """(compute, memory, other) shares of an H100 step from two published ratios.

    Memory from the H100 -> H200 speed-up (equal peaks): 1/s = 1 - y + y / bw_ratio.
    Compute from the H100 / A100 time ratio T = x / peak_ratio + y / bw_ratio + z,
    with the other part z = 1 - x - y taking the same time on both.
    """
    y = (1 - 1 / h200_speedup) / (1 - 1 / _H200_BW)
    x = (a100_slowdown - 1 + y - y / _A100_BW) / (1 / _A100_PEAK - 1)
    return x, y, 1 - x - y


def _prior(
    flops: float, nbytes: float, step_s: float, split: tuple[float, float, float], source: str
) -> Prior:
    """The efficiencies that split an H100 step ``step_s`` of ``flops`` and ``nbytes``
    into compute, memory and other parts in the proportions ``split``."""
    x, y, z = split
    compute_s = flops / (_H100_BF16_TFLOPS * 1e12 * ACHIEVABLE_COMPUTE)
    memory_s = nbytes / (_H100_BANDWIDTH_GBS * 1e9 * ACHIEVABLE_BANDWIDTH)
    other = flops / (z * step_s) / 1e12 if z > 0 else 0.0
    return Prior(compute_s / (x * step_s), memory_s / (y * step_s), other, source)


# FLOPs and bytes per sample counted by gpuscout.count.flops on the meta device:
# ResNet-50 bf16 training (batch 256, 224x224): 24.54 GFLOP and 115.0 MB per image.
# Lambda ResNet-50 AMP: H100 SXM 2,790 img/s, H200 3,079 (1.10x), A100 80GB SXM 1,582.
# Split (0.26 compute, 0.31 memory, 0.43 other): it gives an RTX 4090 ~0.7x and an
# RTX 3090 ~0.6x of Lambda's figures (Ada's large L2 and high clocks are not modelled).
CNN_TRAIN = _prior(
    24.535e9,
    115.0e6,
    1 / 2790,
    shares(3079 / 2790, 2790 / 1582),
    "Lambda ResNet-50 AMP: H100 SXM 2,790 img/s, H200 3,079, A100 1,582",
)
# BERT-large MLM training at sequence 384, bf16 (batch 32): 813.7 GFLOP and 651.8 MB
# per sequence. Lambda BERT-large AMP: H100 SXM 311 seq/s, H200 350, A100 152. Split
# (0.37, 0.37, 0.26): it gives RTX 4090 / 3090 / A6000 within ~11% of Lambda's figures.
TRANSFORMER_TRAIN = _prior(
    8.137e11,
    6.518e8,
    1 / 311,
    shares(350 / 311, 311 / 152),
    "Lambda BERT-large AMP: H100 SXM 311 seq/s, H200 350, A100 152",
)
# Llama-3.1-8B bf16 decode at batch 1 on an H100: 126.9 tok/s at 15.01 GB per token
# (pytorch/ao quantization README, gpt-fast's generate.py, compiled): memory, but for
# the floor of its kernels, which the model adds on every GPU: 32 layers of ~50 ATen
# ops (predict.derived.OPS_PER_LAYER), halved by torch.compile. Without taking that
# floor out here, the model would predict the anchor itself ~20% slow.
_LLAMA3_8B_DECODE_KERNELS = 32 * 50 * COMPILED_KERNEL_FACTOR
DECODE = Prior(
    0.5,
    15.01e9
    / (_H100_BANDWIDTH_GBS * 1e9 * ACHIEVABLE_BANDWIDTH)
    / (1 / 126.9 - _LLAMA3_8B_DECODE_KERNELS * KERNEL_FLOOR_S),
    0.0,
    "torchao Llama-3.1-8B bf16 decode on H100 (126.9 tok/s, 1,905 GB/s)",
)
# Prefill of a few hundred tokens is a chain of matmuls of about 1024 x 4096 x 4096:
# anchors table 12 #6 has 1024^2 bf16 matmuls at ~180 of 989 TFLOPS on an H100, 23% of
# the achievable 791.
PREFILL = Prior(
    180 / (_H100_BF16_TFLOPS * ACHIEVABLE_COMPUTE),
    DECODE.eff_memory,
    0.0,
    "H100 bf16 matmul at size 1024 (~180 TFLOPS; torch-performance-test-data #79)",
)
# The CPU is never a projection target; its efficiencies are only reported.
CPU = Prior(0.5, 0.5, 0.0, "nominal (CPU efficiencies are reported, never projected)")

PRIORS = {
    "train-cnn": CNN_TRAIN,
    "train": TRANSFORMER_TRAIN,
    "decode": DECODE,
    "prefill": PREFILL,
}

# Which workloads replay CUDA graphs on a GPU (one host launch per step) and which
# autocast to bf16 there (their tuned fp32 CPU runs are projected in bf16 on GPUs with
# it natively) is in each workload's record: predict.facts reads them.

# Efficiency bands (multipliers on both efficiencies) for the range of a projection.
BAND_SAME_ARCH = (0.85, 1.15)  # calibrated on a GPU of the same architecture
BAND_CROSS_ARCH = (0.7, 1.3)  # calibrated on another architecture (caches, clocks differ)
BAND_DEFAULTS = (0.5, 1.5)  # nothing measured on a GPU: published anchors only
BAND_MEASURED = 0.03  # the measured GPU itself, when no spread was recorded

# Multi-GPU data parallelism.
LINK_EFFICIENCY = 0.8  # NCCL bus bandwidth reaches ~80% of the link's (nccl-tests busbw)
LINK_LATENCY_S = 5e-6  # per ring step
BUCKET_BYTES = 25 * 2**20  # DDP's default bucket_cap_mb=25
PCIE_X16_GBS = {3: 15.75, 4: 31.5, 5: 63.0, 6: 126.0}  # per direction
DEFAULT_PCIE_GEN = 4
BACKWARD_SHARE = 2 / 3  # backward is ~2x the forward's work: DDP overlaps it with comms
BOX_SIZES = (2, 4, 8)

# Cost.
PRICE_KWH_USD = 0.15  # stated default; US residential average is about this (2024-25)
HOURS_PER_WEEK = 10.0
HORIZON_WEEKS = 104.0  # buying must pay back within two years of use to be recommended
CPU_IS_ENOUGH_S = 600.0  # a run under 10 minutes on the CPU needs no GPU ...
MIN_GPU_SPEEDUP = 2.0  # ... and neither does one a GPU speeds up less than this

# What "one run" of a model nobody measured is when the user does not say (--samples
# overrides); a measured workload's record says what one run of it is.
MODEL_RUN = {
    "train": (100_000_000, "a 100M-token fine-tune"),
    "infer": (1_000_000, "generating 1,000,000 tokens"),
}
