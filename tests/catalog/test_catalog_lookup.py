"""Name lookup: fuzzy find_gpu with its ambiguity rule, and match_local_gpu for NVML names."""

from __future__ import annotations

import pytest

from gpuscout.catalog import (
    AmbiguousGpuError,
    GpuIndex,
    find_gpu,
    load_gpus,
    lookup,
    match_local_gpu,
    parse_gpus,
    search_gpus,
)
from gpuscout.errors import CatalogError, UnknownNameError, UsageError

MIB = 1024**2
IDS = {g.id for g in load_gpus()}


@pytest.mark.parametrize(
    "name",
    [
        "4090",
        "RTX 4090",
        "rtx-4090",
        "GeForce RTX 4090",
        "NVIDIA GeForce RTX 4090",
        "rtx4090",
        "  RTX-4090 ",
        "geforce rtx 4090",
    ],
)
def test_every_spelling_finds_rtx_4090(name: str) -> None:
    assert find_gpu(name).id == "rtx-4090"


@pytest.mark.parametrize(
    ("name", "gpu_id"),
    [
        ("h100-sxm5-80gb", "h100-sxm5-80gb"),
        ("H100 SXM", "h100-sxm5-80gb"),  # "sxm" starts "sxm5"
        ("NVIDIA H100 80GB HBM3", "h100-sxm5-80gb"),  # the NVML name is exact
        ("H100 PCIe", "h100-pcie-80gb"),
        ("H200", "h200-sxm-141gb"),  # exact alias: NVML calls the SXM part "NVIDIA H200"
        ("Tesla T4", "t4"),
        ("T4", "t4"),
        ("3090", "rtx-3090"),  # not the 3090 Ti: "3090" is an exact name for the 3090
        ("3090 ti", "rtx-3090-ti"),
        ("a10", "a10"),  # exact beats "a10" starting "a100"
        ("L40", "l40"),
        ("l40s", "l40s"),
        ("A6000", "rtx-a6000"),
        ("mi300", "mi300x"),
        ("RX 7900 XTX", "rx-7900-xtx"),
        ("M4 Max", "apple-m4-max-40c"),
        ("m3 max", "apple-m3-max-40c"),
        ("Apple M2 Ultra", "apple-m2-ultra-76c"),
        ("m1", "apple-m1-8c"),
        ("rtx 4000 ada", "rtx-4000-ada"),
        ("A100 SXM4 40GB", "a100-sxm4-40gb"),
        ("rtx 4090 laptop", "rtx-4090-laptop"),
        ("4060 laptop", "rtx-4060-laptop"),
        ("RTX 4060 Mobile", "rtx-4060-laptop"),
        ("NVIDIA GeForce RTX 5090 Laptop GPU", "rtx-5090-laptop"),
        ("3080 ti laptop", "rtx-3080-ti-laptop"),
    ],
)
def test_find_gpu(name: str, gpu_id: str) -> None:
    assert find_gpu(name).id == gpu_id


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("h100", {"h100-pcie-80gb", "h100-sxm5-80gb", "h100-nvl-94gb"}),
        ("a100", {"a100-pcie-40gb", "a100-sxm4-40gb", "a100-sxm4-80gb", "a100-pcie-80gb"}),
        ("A100 80GB", {"a100-sxm4-80gb", "a100-pcie-80gb"}),
        ("RTX 3080", {"rtx-3080-10gb", "rtx-3080-12gb"}),  # one NVML name, two cards
        ("rtx 6000", {"quadro-rtx-6000", "rtx-6000-ada", "rtx-pro-6000-blackwell"}),
    ],
)
def test_ambiguous_names_list_the_candidates(name: str, expected: set[str]) -> None:
    with pytest.raises(AmbiguousGpuError) as info:
        find_gpu(name)
    err = info.value
    assert set(err.candidates) == expected
    assert isinstance(err, UsageError) and err.exit_code == 2
    for gpu_id in expected:
        assert gpu_id in err.message
    assert {g.id for g in search_gpus(name)} == expected


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownNameError) as info:
        find_gpu("rtx 4909")
    err = info.value
    assert 1 <= len(err.suggestions) <= 3
    assert set(err.suggestions) <= IDS
    assert "rtx-4090" in err.suggestions
    assert err.hint.startswith("did you mean") and "rtx-4090" in err.hint
    assert err.exit_code == 2


def test_unknown_name_without_close_match_still_helps() -> None:
    with pytest.raises(UnknownNameError) as info:
        find_gpu("qqqqqqq")
    assert info.value.suggestions == []
    assert "gpuscout gpus" in info.value.hint


@pytest.mark.parametrize("name", ["", "   ", "---", "NVIDIA"])
def test_names_with_no_words_are_unknown(name: str) -> None:
    with pytest.raises(UnknownNameError):
        find_gpu(name)
    assert search_gpus(name) == ()


SMALL = """
[[gpu]]
id = "x-100-pcie"
name = "Xcel 100 PCIe"
vendor = "NVIDIA"
segment = "datacenter"
architecture = "Test"
compute_capability = "9.0"
release_year = 2024
memory_gb = 80
memory_type = "HBM3"
memory_bandwidth_gbs = 2000
fp32_tflops = 50
nvlink = false
ecc = true
form_factor = "pcie"
source = "https://example.com"

[[gpu]]
id = "x-100-sxm"
name = "Xcel 100 SXM"
vendor = "NVIDIA"
segment = "datacenter"
architecture = "Test"
compute_capability = "9.0"
release_year = 2024
memory_gb = 80
memory_type = "HBM3"
memory_bandwidth_gbs = 3000
fp32_tflops = 60
nvlink = true
ecc = true
form_factor = "sxm"
aliases = ["Vendor X100"]
source = "https://example.com"
"""


def test_rules_on_a_catalog_of_our_own() -> None:
    index = GpuIndex(parse_gpus(SMALL))
    with pytest.raises(AmbiguousGpuError):
        index.find("xcel 100")  # both rows start with these words
    assert index.find("x100").id == "x-100-sxm"  # an exact alias wins over a prefix match
    assert index.find("xcel 100 pc").id == "x-100-pcie"
    with pytest.raises(UnknownNameError) as info:
        index.find("xcel 100 pcie nvl")  # every word must match
    assert "x-100-pcie" in info.value.suggestions


@pytest.mark.parametrize(
    ("nvml_name", "memory_mib", "gpu_id"),
    [
        ("NVIDIA H100 80GB HBM3", 81559, "h100-sxm5-80gb"),
        ("NVIDIA A100-SXM4-40GB", 40960, "a100-sxm4-40gb"),
        ("NVIDIA A100-SXM4-80GB", 81920, "a100-sxm4-80gb"),
        ("NVIDIA A100-PCIE-40GB", 40960, "a100-pcie-40gb"),
        ("NVIDIA A100 80GB PCIe", 81920, "a100-pcie-80gb"),
        ("NVIDIA GeForce RTX 4090", 24564, "rtx-4090"),
        ("NVIDIA RTX A6000", 49140, "rtx-a6000"),
        ("NVIDIA L4", 23034, "l4"),
        ("Tesla T4", 15360, "t4"),  # 15 GiB with ECC on, still the 16 GB T4
        ("NVIDIA GeForce RTX 5090", 32607, "rtx-5090"),
        ("NVIDIA H100 PCIe", 81559, "h100-pcie-80gb"),
        ("NVIDIA H100 NVL", 95830, "h100-nvl-94gb"),
        ("NVIDIA H200", 143771, "h200-sxm-141gb"),
        ("Tesla V100-SXM2-16GB", 16160, "v100-sxm2-16gb"),
        ("GeForce RTX 2080 Ti", 11019, "rtx-2080-ti"),  # older drivers: no "NVIDIA "
        # One NVML name, two cards: memory decides.
        ("NVIDIA GeForce RTX 3080", 10240, "rtx-3080-10gb"),
        ("NVIDIA GeForce RTX 3080", 12288, "rtx-3080-12gb"),
        ("NVIDIA GeForce RTX 4060 Ti", 8188, "rtx-4060-ti-8gb"),
        ("NVIDIA GeForce RTX 4060 Ti", 16380, "rtx-4060-ti-16gb"),
        # A laptop part is its own row, never the desktop card of the same number.
        ("NVIDIA GeForce RTX 3060 Laptop GPU", 6144, "rtx-3060-laptop"),
        ("NVIDIA GeForce RTX 3080 Laptop GPU", 16384, "rtx-3080-laptop-16gb"),
        ("NVIDIA GeForce RTX 3080 Laptop GPU", 8192, "rtx-3080-laptop-8gb"),
        ("NVIDIA GeForce RTX 4090 Laptop GPU", 16376, "rtx-4090-laptop"),
        # A MIG slice reports its own memory; the name still says which GPU it is.
        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb", 9984, "h100-sxm5-80gb"),
        ("NVIDIA A100-SXM4-40GB MIG 3g.20gb", 19968, "a100-sxm4-40gb"),
    ],
)
def test_match_local_gpu(nvml_name: str, memory_mib: int, gpu_id: str) -> None:
    spec = match_local_gpu(nvml_name, memory_mib * MIB)
    assert spec is not None and spec.id == gpu_id


def test_match_local_gpu_without_memory() -> None:
    assert match_local_gpu("NVIDIA L4", None) is find_gpu("l4")
    # Without memory the two RTX 3080s cannot be told apart: no guess.
    assert match_local_gpu("NVIDIA GeForce RTX 3080", None) is None


@pytest.mark.parametrize(
    ("nvml_name", "memory_mib"),
    [
        ("NVIDIA GeForce RTX 4070 Ti", 12282),  # not in the catalog; must not become a 4070
        ("NVIDIA GeForce RTX 3050 Laptop GPU", 4096),  # a laptop part is a different GPU
        ("Tesla V100S-PCIE-32GB", 32510),
        ("NVIDIA GeForce RTX 4090", 8192),  # memory contradicts the row
        ("NVIDIA H100", 81559),  # PCIe or SXM: both 80 GB, so unsure
        ("Some Future GPU", 1024),
        ("", 1024),
    ],
)
def test_match_local_gpu_returns_none_when_unsure(nvml_name: str, memory_mib: int) -> None:
    assert match_local_gpu(nvml_name, memory_mib * MIB) is None


def test_match_local_gpu_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    assert match_local_gpu(None, None) is None  # type: ignore[arg-type]

    def broken() -> GpuIndex:
        raise CatalogError("broken catalog")

    monkeypatch.setattr(lookup, "_index", broken)
    assert match_local_gpu("NVIDIA L4", 24 * 1024 * MIB) is None


LAPTOP_NUMBERS = [
    "3060",
    "3070",
    "3080 ti",
    "4050",
    "4060",
    "4070",
    "4080",
    "4090",
    "5070",
    "5080",
    "5090",
]


@pytest.mark.parametrize("number", LAPTOP_NUMBERS)
@pytest.mark.parametrize(
    "spelling", ["rtx {} laptop", "{} laptop", "GeForce RTX {} Laptop GPU", "{} mobile"]
)
def test_a_laptop_name_finds_the_laptop_row(number: str, spelling: str) -> None:
    found = find_gpu(spelling.format(number))
    assert found.form_factor == "laptop"
    assert found.id == f"rtx-{number.replace(' ', '-')}-laptop"


@pytest.mark.parametrize(
    ("name", "gpu_id"),
    [
        ("rtx 4090", "rtx-4090"),
        ("4090", "rtx-4090"),
        ("RTX 4080", "rtx-4080"),
        ("rtx 4070", "rtx-4070"),
        ("rtx 5090", "rtx-5090"),
        ("5080", "rtx-5080"),
        ("rtx 5070", "rtx-5070"),
        ("rtx 3070", "rtx-3070"),
        ("NVIDIA GeForce RTX 3060", "rtx-3060-12gb"),
    ],
)
def test_a_desktop_name_never_finds_a_laptop_row(name: str, gpu_id: str) -> None:
    assert find_gpu(name).id == gpu_id
    assert all(g.form_factor != "laptop" for g in search_gpus(name))


@pytest.mark.parametrize("name", ["rtx 3080 ti", "3080 ti", "rtx 4050"])
def test_a_desktop_name_without_a_desktop_row_is_not_a_laptop(name: str) -> None:
    """The desktop 3080 Ti is not in the catalog: its name must not reach the laptop part."""
    assert search_gpus(name) == ()
    with pytest.raises(UnknownNameError):
        find_gpu(name)


def test_a_laptop_word_never_finds_a_desktop_row() -> None:
    assert {g.form_factor for g in search_gpus("rtx laptop")} == {"laptop"}
    assert {g.id for g in search_gpus("rtx 3080 laptop")} == {
        "rtx-3080-laptop-16gb",
        "rtx-3080-laptop-8gb",
    }
