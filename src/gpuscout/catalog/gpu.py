"""The catalog's records: one GPU's published specification and one cloud price.

Units live in field names. Tensor figures are DENSE (vendor "with sparsity" figures
halved); ``None`` means "not supported" for a precision and "not published" for a price or
a power figure. Rendering lives in ``cli/`` and ``report/``, never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gpuscout.errors import UsageError

SEGMENTS: Final = ("consumer", "workstation", "datacenter")
VENDORS: Final = ("NVIDIA", "AMD", "Apple", "Intel")
FORM_FACTORS: Final = ("pcie", "sxm", "oam", "superchip", "soc", "laptop")
PRECISIONS: Final = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8")
# Compute capability an NVIDIA GPU needs for each precision's tensor-core path (below it,
# bf16 is at best emulated): the one table the benchmarks, workloads and predictor share.
TENSOR_MIN_CC: Final = {"tf32": (8, 0), "bf16": (8, 0), "fp8": (8, 9), "int8": (8, 0)}

# Spellings people (and torch) use for the same precision; all map onto PRECISIONS.
_PRECISION_ALIASES: Final = {
    "float64": "fp64",
    "double": "fp64",
    "float32": "fp32",
    "float": "fp32",
    "tensorfloat32": "tf32",
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "float8": "fp8",
    "float8_e4m3fn": "fp8",
    "float8_e5m2": "fp8",
    "e4m3": "fp8",
    "e5m2": "fp8",
}

_GIB: Final = 1024**3


def normalize_precision(precision: str) -> str:
    """``"bfloat16"`` -> ``"bf16"``; unknown spellings raise UsageError listing the valid ones."""
    key = precision.strip().lower().removeprefix("torch.")
    key = _PRECISION_ALIASES.get(key, key)
    if key not in PRECISIONS:
        raise UsageError(
            f"unknown precision {precision!r}",
            f"use one of {', '.join(PRECISIONS)}",
        )
    return key


@dataclass(frozen=True)
class GpuSpec:
    """One GPU as its vendor publishes it (see gpus.toml for each row's sources)."""

    id: str
    name: str
    vendor: str
    segment: str  # one of SEGMENTS
    architecture: str
    release_year: int
    memory_gb: float  # vendor "GB" of GPU memory, which are binary (GiB)
    memory_type: str
    memory_bandwidth_gbs: float  # 1e9 bytes/s
    fp32_tflops: float  # vector (CUDA core / shader) rate
    nvlink: bool
    ecc: bool
    form_factor: str  # one of FORM_FACTORS
    source: tuple[str, ...]
    compute_capability: str | None = None  # "9.0"; None for non-NVIDIA GPUs
    fp64_tflops: float | None = None
    fp64_tensor_tflops: float | None = None  # FP64 tensor cores (A100, H100, H200)
    tf32_tensor_tflops: float | None = None  # dense
    fp16_tensor_tflops: float | None = None  # dense
    bf16_tensor_tflops: float | None = None  # dense
    fp8_tensor_tflops: float | None = None  # dense
    int8_tensor_tops: float | None = None  # dense
    tdp_w: float | None = None
    pcie_gen: int | None = None
    nvlink_bandwidth_gbs: float | None = None  # total bidirectional, per GPU
    launch_price_usd: float | None = None
    aliases: tuple[str, ...] = ()
    # Every memory size the vendor sells this GPU with, smallest first (Apple's unified
    # memory options); memory_gb is the largest. Empty when there is one size.
    memory_options_gb: tuple[float, ...] = ()
    note: str = ""

    @property
    def memory_bytes(self) -> int:
        return round(self.memory_gb * _GIB)

    @property
    def bandwidth_gbs(self) -> float:
        """Memory bandwidth in GB/s (1e9 bytes/s); the name the rest of gpuscout uses."""
        return self.memory_bandwidth_gbs

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.memory_bandwidth_gbs * 1e9

    @property
    def compute_capability_tuple(self) -> tuple[int, int] | None:
        if self.compute_capability is None:
            return None
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)

    def peak_tflops(self, precision: str) -> float | None:
        """Published peak for ``precision`` in TFLOPS (TOPS for int8); None if unsupported.

        fp32 is the vector rate; fp64 is the FP64 tensor-core rate where the GPU has one
        (A100, H100, H200: what an fp64 matmul reaches) and the vector rate otherwise; tf32,
        fp16, bf16, fp8 and int8 are the dense tensor-core (matrix) rates.
        """
        key = normalize_precision(precision)
        return {
            "fp64": self.fp64_tensor_tflops or self.fp64_tflops,
            "fp32": self.fp32_tflops,
            "tf32": self.tf32_tensor_tflops,
            "fp16": self.fp16_tensor_tflops,
            "bf16": self.bf16_tensor_tflops,
            "fp8": self.fp8_tensor_tflops,
            "int8": self.int8_tensor_tops,
        }[key]


@dataclass(frozen=True)
class CloudPrice:
    """One on-demand price seen on one day; prices move, so ``date_seen`` always goes with it."""

    gpu_id: str
    provider: str
    sku: str
    gpus: int  # GPUs in the SKU; usd_per_gpu_hour is the SKU price divided by this
    usd_per_gpu_hour: float
    date_seen: str  # "YYYY-MM-DD" or "YYYY-MM"
    source: str
    note: str = ""

    @property
    def usd_per_hour(self) -> float:
        """What the whole SKU costs per hour."""
        return self.usd_per_gpu_hour * self.gpus
