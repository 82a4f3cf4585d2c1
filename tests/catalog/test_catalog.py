"""The shipped catalog: every row holds its invariants, and the figures we rely on are right."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from gpuscout.catalog import (
    PRECISIONS,
    SEGMENTS,
    GpuSpec,
    check_segment,
    cloud_prices,
    find_gpu,
    gpus_by_segment,
    load_gpus,
    normalize_precision,
)
from gpuscout.catalog.names import keys
from gpuscout.errors import UnknownNameError, UsageError

GPUS = load_gpus()
IDS = [g.id for g in GPUS]


def by_id(gpu_id: str) -> GpuSpec:
    return next(g for g in GPUS if g.id == gpu_id)


def test_catalog_is_broad() -> None:
    assert len(GPUS) >= 40
    assert {g.segment for g in GPUS} == set(SEGMENTS)
    assert {"NVIDIA", "AMD", "Apple"} <= {g.vendor for g in GPUS}
    for segment in SEGMENTS:
        assert sum(g.segment == segment for g in GPUS) >= 5


def test_load_gpus_is_cached() -> None:
    assert load_gpus() is load_gpus()


def test_ids_are_unique_and_kebab_case() -> None:
    assert len(IDS) == len(set(IDS))
    for gpu_id in IDS:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", gpu_id), gpu_id


def test_names_and_aliases_cannot_be_confused() -> None:
    # Two rows may answer to one name only when memory tells them apart.
    seen: dict[str, tuple[str, float]] = {}
    for g in GPUS:
        for key in set().union(*(keys(n) for n in (g.id, g.name, *g.aliases))):
            if key in seen:
                other_id, other_memory = seen[key]
                assert other_memory != g.memory_gb, (key, other_id, g.id)
            seen[key] = (g.id, g.memory_gb)


@pytest.mark.parametrize("gpu", GPUS, ids=IDS)
def test_compute_capability_format(gpu: GpuSpec) -> None:
    if gpu.vendor == "NVIDIA":
        assert gpu.compute_capability is not None
        assert re.fullmatch(r"\d{1,2}\.\d", gpu.compute_capability)
        assert gpu.compute_capability_tuple is not None
    else:
        assert gpu.compute_capability is None


@pytest.mark.parametrize("gpu", GPUS, ids=IDS)
def test_bandwidth_memory_and_compute_are_positive(gpu: GpuSpec) -> None:
    assert gpu.memory_bandwidth_gbs > 0
    assert gpu.bandwidth_gbs == gpu.memory_bandwidth_gbs
    assert gpu.memory_gb > 0
    assert gpu.memory_bytes == round(gpu.memory_gb * 1024**3)
    assert gpu.fp32_tflops > 0


@pytest.mark.parametrize("gpu", GPUS, ids=IDS)
def test_sources_present(gpu: GpuSpec) -> None:
    assert gpu.source
    for url in gpu.source:
        assert re.match(r"https?://\S+$", url), url


@pytest.mark.parametrize("gpu", GPUS, ids=IDS)
def test_tensor_figures_are_ordered(gpu: GpuSpec) -> None:
    """Dense tensor rates sit above the vector FP32 rate and rise as precision drops."""
    if gpu.vendor == "NVIDIA" and gpu.bf16_tensor_tflops is not None:
        assert gpu.bf16_tensor_tflops >= gpu.fp32_tflops
    if gpu.tf32_tensor_tflops is not None and gpu.bf16_tensor_tflops is not None:
        assert gpu.tf32_tensor_tflops <= gpu.bf16_tensor_tflops
    if gpu.fp8_tensor_tflops is not None and gpu.bf16_tensor_tflops is not None:
        assert gpu.fp8_tensor_tflops >= gpu.bf16_tensor_tflops
    if gpu.fp64_tflops is not None:
        assert gpu.fp64_tflops <= gpu.fp32_tflops


@pytest.mark.parametrize("gpu", GPUS, ids=IDS)
def test_features_match_architecture(gpu: GpuSpec) -> None:
    cc = gpu.compute_capability_tuple
    if cc is None:
        return
    if cc < (7, 0):  # Pascal: no tensor cores at all
        assert gpu.fp16_tensor_tflops is None
    if cc < (8, 0):  # BF16 and TF32 arrived with Ampere
        assert gpu.bf16_tensor_tflops is None and gpu.tf32_tensor_tflops is None
    if cc < (8, 9):  # FP8 arrived with Ada and Hopper
        assert gpu.fp8_tensor_tflops is None
    if gpu.nvlink_bandwidth_gbs is not None:
        assert gpu.nvlink


def test_h100_sxm_row() -> None:
    h100 = by_id("h100-sxm5-80gb")
    assert "NVIDIA H100 80GB HBM3" in h100.aliases
    assert (h100.memory_gb, h100.memory_bandwidth_gbs) == (80, 3350)
    # Dense: NVIDIA's datasheet says 1979 BF16 and 3958 FP8 "with sparsity".
    assert h100.peak_tflops("bf16") == pytest.approx(989.5)
    assert h100.peak_tflops("fp8") == pytest.approx(1979)
    assert h100.peak_tflops("fp32") == pytest.approx(67)


@pytest.mark.parametrize(
    ("gpu_id", "precision", "tflops"),
    [
        ("rtx-4090", "bf16", 165.2),  # Ada whitepaper, FP32 accumulate
        ("rtx-4090", "fp8", 330.3),
        ("a100-sxm4-80gb", "tf32", 156),
        ("a100-sxm4-80gb", "bf16", 312),
        ("l4", "fp16", 121),
        ("l40s", "fp8", 733),
        ("mi300x", "bf16", 1307.4),
        ("t4", "int8", 130),
        ("rtx-4000-ada", "fp16", 81.9),  # corrected from the datasheet's 327.6 sparse FP8
    ],
)
def test_spot_checked_figures(gpu_id: str, precision: str, tflops: float) -> None:
    assert by_id(gpu_id).peak_tflops(precision) == pytest.approx(tflops)


def test_corrections_are_recorded() -> None:
    assert by_id("b200").memory_bandwidth_gbs == 7700
    assert "CORRECTED" in by_id("b200").note
    assert "CORRECTED" in by_id("rtx-4000-ada").note


def test_peak_tflops_precisions_and_aliases() -> None:
    gpu = by_id("h100-sxm5-80gb")
    for precision in PRECISIONS:
        assert gpu.peak_tflops(precision) is not None
    assert gpu.peak_tflops("bfloat16") == gpu.peak_tflops("BF16") == gpu.bf16_tensor_tflops
    assert gpu.peak_tflops("torch.float16") == gpu.fp16_tensor_tflops
    # fp64 matmul runs on the FP64 tensor cores where they exist (H100: 67, vector 34)
    assert gpu.peak_tflops("float64") == gpu.fp64_tensor_tflops == 66.9
    assert by_id("rtx-4090").peak_tflops("fp64") == by_id("rtx-4090").fp64_tflops
    assert gpu.peak_tflops("int8") == gpu.int8_tensor_tops
    # Unsupported is None, not zero: Turing has no BF16.
    assert by_id("rtx-2080-ti").peak_tflops("bf16") is None


def test_unknown_precision_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="fp4"):
        by_id("rtx-4090").peak_tflops("fp4")
    assert normalize_precision(" Half ") == "fp16"


@pytest.mark.parametrize("segment", SEGMENTS)
def test_gpus_by_segment(segment: str) -> None:
    rows = gpus_by_segment(segment.upper())
    assert rows and all(g.segment == segment for g in rows)
    assert len(rows) == sum(g.segment == segment for g in GPUS)


def test_unknown_segment_suggests() -> None:
    with pytest.raises(UnknownNameError) as info:
        gpus_by_segment("consumr")
    assert info.value.suggestions[0] == "consumer"
    assert info.value.exit_code == 2
    assert check_segment("data-center") == "datacenter"


def test_cloud_prices_are_valid() -> None:
    prices = cloud_prices()
    assert prices
    for p in prices:
        assert p.gpu_id in IDS
        assert p.usd_per_gpu_hour > 0 and p.gpus >= 1
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", p.date_seen)
        assert p.source.startswith("http")
        assert p.usd_per_hour == pytest.approx(p.usd_per_gpu_hour * p.gpus)


def test_cloud_prices_for_one_gpu_cheapest_first() -> None:
    prices = cloud_prices("h100-sxm5-80gb")
    assert len(prices) >= 2
    assert {p.gpu_id for p in prices} == {"h100-sxm5-80gb"}
    assert [p.usd_per_gpu_hour for p in prices] == sorted(p.usd_per_gpu_hour for p in prices)
    assert cloud_prices("H100 SXM") == prices  # any name find_gpu understands
    assert cloud_prices("gtx-1080-ti") == ()


def test_cloud_prices_unknown_gpu_raises() -> None:
    with pytest.raises(UnknownNameError):
        cloud_prices("rtx-9999")


def test_find_gpu_returns_catalog_rows() -> None:
    assert find_gpu("h100-sxm5-80gb") is by_id("h100-sxm5-80gb")


def test_import_is_cheap() -> None:
    """Importing the catalog and its command must not pull in torch or read pynvml."""
    code = (
        "import sys, gpuscout.catalog, gpuscout.cli.gpus; "
        "bad = [m for m in ('torch', 'pynvml') if m in sys.modules]; "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
