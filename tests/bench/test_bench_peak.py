"""The CPU peak formula: cores x clock x FLOPs/cycle for the ISA present."""

from __future__ import annotations

import dataclasses

import pytest

from gpuscout._types import HostInfo
from gpuscout.bench.cpu_peak import cpu_peak_tflops, flops_per_cycle, host_peak_tflops, isa_class

AVX2 = ("sse2", "avx", "avx2", "fma")
AVX512 = (*AVX2, "avx512f")
AVX512_BF16 = (*AVX512, "avx512_bf16")
AMX = (*AVX512_BF16, "amx_bf16", "amx_tile")


@pytest.mark.parametrize(
    ("isa", "arch", "fp32", "fp64", "bf16"),
    [
        (AVX2, "x86_64", 32, 16, 32),
        (AVX512, "x86_64", 64, 32, 64),
        (AVX512_BF16, "x86_64", 64, 32, 128),
        (AMX, "x86_64", 64, 32, 1024),
        (("sse2", "avx"), "x86_64", 16, 8, 16),  # AVX without FMA
        (("sse2",), "x86_64", 8, 4, 8),
        (("sse2", "avx", "avx2"), "x86_64", 16, 8, 16),  # AVX2 without FMA: plain AVX
        (("asimd",), "aarch64", 16, 8, 16),
    ],
)
def test_flops_per_cycle_table(
    isa: tuple[str, ...], arch: str, fp32: int, fp64: int, bf16: int
) -> None:
    assert flops_per_cycle(isa, "fp32", arch) == fp32
    assert flops_per_cycle(isa, "fp64", arch) == fp64
    assert flops_per_cycle(isa, "bf16", arch) == bf16


def test_unknown_isa_or_precision_gives_none() -> None:
    assert isa_class((), "riscv64") is None
    assert flops_per_cycle((), "fp32", "riscv64") is None
    assert flops_per_cycle(AVX2, "fp8") is None
    assert cpu_peak_tflops(AVX2, 0, 3000, "fp32") is None


def test_peak_formula() -> None:
    # 8 cores x 3 GHz x 32 FLOP/cycle = 768 GFLOPS
    assert cpu_peak_tflops(AVX2, 8, 3000, "fp32") == pytest.approx(0.768)
    # AVX-512: 16 cores x 2.5 GHz x 64 = 2.56 TFLOPS
    assert cpu_peak_tflops(AVX512, 16, 2500, "fp32") == pytest.approx(2.56)
    # AMX bf16: 56 cores x 2 GHz x 1024 = 114.688 TFLOPS
    assert cpu_peak_tflops(AMX, 56, 2000, "bf16") == pytest.approx(114.688)
    # No AVX2: 4 cores x 2 GHz x 8
    assert cpu_peak_tflops(("sse2",), 4, 2000, "fp32") == pytest.approx(0.064)


def _host(**kw: object) -> HostInfo:
    base = HostInfo(
        cpu_model="test",
        arch="x86_64",
        physical_cores=8,
        logical_cores=16,
        base_clock_mhz=2000.0,
        max_clock_mhz=3000.0,
        isa=AVX2,
        ram_total_bytes=None,
        ram_available_bytes=None,
        os_name="Linux",
        os_release="6",
        os_pretty="Linux",
        python_version="3.11",
        container=None,
        wsl=False,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_host_peak_uses_max_clock_then_base() -> None:
    assert host_peak_tflops(_host(), "fp32") == pytest.approx(8 * 3e9 * 32 / 1e12)
    assert host_peak_tflops(_host(max_clock_mhz=None), "fp32") == pytest.approx(8 * 2e9 * 32 / 1e12)
    assert host_peak_tflops(_host(max_clock_mhz=None, base_clock_mhz=None), "fp32") is None
    assert host_peak_tflops(_host(physical_cores=None), "fp32") is None
