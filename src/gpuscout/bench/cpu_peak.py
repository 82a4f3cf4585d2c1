"""The CPU's theoretical peak, so CPU matmuls get a "% of peak" like GPUs do.

peak FLOP/s = physical cores x clock x FLOPs per cycle per core for the best ISA present.

FLOPs per cycle per core (fp32), assuming two full-width FMA pipes per core and counting
an FMA as two FLOPs, which is how vendors quote peaks:

    ISA                      lanes x FMA pipes x 2         fp32   fp64
    AVX-512 (avx512f)        16    x 2         x 2      =    64     32
    AVX2 + FMA               8     x 2         x 2      =    32     16
    AVX without FMA          8 mul + 8 add per cycle    =    16      8
    SSE2 (x86-64 baseline)   4 mul + 4 add per cycle    =     8      4
    Arm NEON/ASIMD           4     x 2         x 2      =    16      8

bf16 (used by matmul when the hardware has it):

    AMX (amx_bf16)           1024 per cycle per core (one 16x32 x 32x16 tile op / 16 cycles)
    AVX-512 BF16             2 x the fp32 rate (VDPBF16PS does a pair per lane)
    otherwise                the fp32 rate: bf16 is widened to fp32 and computed there

Assumptions, stated so a reader can adjust the figure: parts with a single 512-bit FMA
pipe (some Xeon Silver/Bronze) or a double-pumped one (AMD Zen 4) reach half the AVX-512
row, so their "% of peak" reads low; the clock is the maximum (boost) clock when known,
else the base clock, and heavy AVX-512 code often runs below it. Both make the peak an
upper bound, which is what a ceiling should be.
"""

from __future__ import annotations

from collections.abc import Iterable

from gpuscout._types import HostInfo

FP32_FLOPS_PER_CYCLE = {"avx512": 64, "avx2": 32, "avx": 16, "sse": 8, "neon": 16}
AMX_BF16_FLOPS_PER_CYCLE = 1024


def isa_class(isa: Iterable[str], arch: str = "x86_64") -> str | None:
    """The widest vector class the feature list supports: avx512, avx2, avx, sse, neon."""
    feats = {f.lower().replace("-", "_") for f in isa}
    a = arch.lower()
    if a in ("aarch64", "arm64") or "asimd" in feats or "neon" in feats:
        return "neon"
    if "avx512f" in feats:
        return "avx512"
    if "avx2" in feats and "fma" in feats:
        return "avx2"
    if "avx" in feats:
        return "avx"
    if a in ("x86_64", "amd64", "x86", "i686") or "sse2" in feats:
        return "sse"
    return None


def _has_amx_bf16(feats: set[str]) -> bool:
    return bool(feats & {"amx_bf16", "amx"})


def _has_avx512_bf16(feats: set[str]) -> bool:
    return bool(feats & {"avx512_bf16", "avx512bf16"})


def flops_per_cycle(isa: Iterable[str], precision: str, arch: str = "x86_64") -> int | None:
    """FLOPs per cycle per core for ``precision`` ("fp32", "fp64", "bf16"); None if unknown."""
    feats = {f.lower().replace("-", "_") for f in isa}
    cls = isa_class(feats, arch)
    if cls is None:
        return None
    fp32 = FP32_FLOPS_PER_CYCLE[cls]
    if precision == "fp32":
        return fp32
    if precision == "fp64":
        return fp32 // 2
    if precision == "bf16":
        if _has_amx_bf16(feats):
            return AMX_BF16_FLOPS_PER_CYCLE
        if cls == "avx512" and _has_avx512_bf16(feats):
            return 2 * fp32
        return fp32
    return None


def cpu_peak_tflops(
    isa: Iterable[str], cores: int, clock_mhz: float, precision: str, arch: str = "x86_64"
) -> float | None:
    """cores x clock x FLOPs/cycle, in TFLOPS (1e12)."""
    fpc = flops_per_cycle(isa, precision, arch)
    if fpc is None or cores <= 0 or clock_mhz <= 0:
        return None
    return cores * clock_mhz * 1e6 * fpc / 1e12


def host_peak_tflops(host: HostInfo, precision: str) -> float | None:
    """The peak for a probed host; None when cores or clock could not be read."""
    clock = host.max_clock_mhz or host.base_clock_mhz
    if not host.physical_cores or not clock:
        return None
    return cpu_peak_tflops(host.isa, host.physical_cores, clock, precision, host.arch)
