"""Rows for people who run models on their own machines: laptop GPUs, Apple silicon, and
current desktop cards, each holding the invariants its kind needs."""

from __future__ import annotations

import pytest

from gpuscout.catalog import GpuSpec, find_gpu, load_gpus

GPUS = load_gpus()
LAPTOPS = [g for g in GPUS if g.form_factor == "laptop"]


def by_id(gpu_id: str) -> GpuSpec:
    return next(g for g in GPUS if g.id == gpu_id)


def test_every_laptop_generation_is_there() -> None:
    expected = {
        "rtx-3060-laptop",
        "rtx-3070-laptop",
        "rtx-3080-laptop-16gb",
        "rtx-3080-laptop-8gb",
        "rtx-3080-ti-laptop",
        "rtx-4050-laptop",
        "rtx-4060-laptop",
        "rtx-4070-laptop",
        "rtx-4080-laptop",
        "rtx-4090-laptop",
        "rtx-5070-laptop",
        "rtx-5080-laptop",
        "rtx-5090-laptop",
    }
    assert expected <= {g.id for g in LAPTOPS}


@pytest.mark.parametrize("gpu", LAPTOPS, ids=[g.id for g in LAPTOPS])
def test_a_laptop_row_has_no_card_price_and_says_clocks_follow_power(gpu: GpuSpec) -> None:
    assert gpu.launch_price_usd is None  # sold only inside laptops
    assert gpu.vendor == "NVIDIA" and gpu.segment == "consumer"
    assert "power limit" in gpu.note and "boost" in gpu.note
    assert "Laptop GPU" in gpu.name


@pytest.mark.parametrize(
    ("laptop", "desktop"),
    [
        ("rtx-4090-laptop", "rtx-4090"),
        ("rtx-4080-laptop", "rtx-4080"),
        ("rtx-4070-laptop", "rtx-4070"),
        ("rtx-5090-laptop", "rtx-5090"),
        ("rtx-5080-laptop", "rtx-5080"),
        ("rtx-5070-laptop", "rtx-5070"),
        ("rtx-3070-laptop", "rtx-3070"),
    ],
)
def test_a_laptop_gpu_is_slower_than_its_desktop_namesake(laptop: str, desktop: str) -> None:
    lap, desk = by_id(laptop), by_id(desktop)
    assert lap.fp32_tflops < desk.fp32_tflops
    assert lap.memory_bandwidth_gbs <= desk.memory_bandwidth_gbs


@pytest.mark.parametrize(
    ("gpu_id", "memory_gb", "bandwidth", "fp32", "bf16"),
    [
        # TechPowerUp reference configurations (published FP32), tensor rates derived
        ("rtx-4090-laptop", 16, 576, 32.98, 66.0),  # 76 SMs x 1695 MHz
        ("rtx-4080-laptop", 12, 432, 24.72, 49.4),  # 58 SMs x 1665 MHz
        ("rtx-3060-laptop", 6, 336, 10.94, 21.9),  # 30 SMs x 1425 MHz
        ("rtx-5090-laptop", 24, 896, 31.80, 63.6),  # 82 SMs x 1515 MHz
        ("rtx-5080-laptop", 16, 896, 23.04, 46.1),  # 60 SMs x 1500 MHz
    ],
)
def test_laptop_figures(
    gpu_id: str, memory_gb: float, bandwidth: float, fp32: float, bf16: float
) -> None:
    gpu = by_id(gpu_id)
    assert (gpu.memory_gb, gpu.memory_bandwidth_gbs) == (memory_gb, bandwidth)
    assert gpu.fp32_tflops == pytest.approx(fp32)
    assert gpu.peak_tflops("bf16") == pytest.approx(bf16)


APPLE = [g for g in GPUS if g.vendor == "Apple"]


def test_every_apple_generation_and_tier_is_there() -> None:
    names = {g.aliases[0] for g in APPLE}
    for chip in ("M1", "M2", "M3", "M4"):
        for tier in ("", " Pro", " Max"):
            assert f"Apple {chip}{tier}" in names
    assert {"Apple M1 Ultra", "Apple M2 Ultra", "Apple M3 Ultra"} <= names


@pytest.mark.parametrize("gpu", APPLE, ids=[g.id for g in APPLE])
def test_an_apple_row_is_a_soc_with_its_memory_rule(gpu: GpuSpec) -> None:
    assert gpu.form_factor == "soc" and gpu.compute_capability is None
    assert gpu.bf16_tensor_tflops is None  # no tensor units
    assert "about 75%" in gpu.note and "recommendedMaxWorkingSetSize" in gpu.note
    assert "x 128 ALUs x 2 x" in gpu.note  # how FP32 was derived
    if gpu.memory_options_gb:
        assert gpu.memory_options_gb[-1] == gpu.memory_gb
        assert list(gpu.memory_options_gb) == sorted(gpu.memory_options_gb)


@pytest.mark.parametrize(
    ("name", "bandwidth", "options"),
    [
        # Apple's figures (and Ars Technica's / iMore's tables for the memory options)
        ("m1", 68.25, (8, 16)),
        ("m1 max", 400, ()),
        ("m2 ultra", 800, (64, 128, 192)),
        ("m3 pro", 150, (18, 36)),
        ("m3 max", 400, ()),
        ("m3 ultra", 819, (96, 256, 512)),
        ("m4", 120, (16, 24, 32)),
        ("m4 pro", 273, (24, 48, 64)),
        ("m4 max", 546, ()),
    ],
)
def test_apple_bandwidth_and_memory_options(
    name: str, bandwidth: float, options: tuple[float, ...]
) -> None:
    gpu = find_gpu(name)
    assert gpu.vendor == "Apple"
    assert gpu.memory_bandwidth_gbs == bandwidth
    assert gpu.memory_options_gb == options


@pytest.mark.parametrize(
    ("gpu_id", "fp32"),
    [
        ("apple-m1-8c", 2.62),  # 8 x 128 x 2 x 1278 MHz
        ("apple-m1-ultra-64c", 21.23),  # 64 x 128 x 2 x 1296 MHz
        ("apple-m2-max-38c", 13.6),  # 38 x 128 x 2 x 1398 MHz
        ("apple-m3-max-40c", 14.3),  # 40 x 128 x 2 x 1398 MHz
        ("apple-m4-10c", 3.76),  # 10 x 128 x 2 x 1470 MHz
        ("apple-m4-max-40c", 17.2),  # 40 x 128 x 2 x 1678 MHz
    ],
)
def test_apple_fp32_is_cores_times_alus_times_clock(gpu_id: str, fp32: float) -> None:
    assert by_id(gpu_id).fp32_tflops == pytest.approx(fp32, abs=0.02)


def test_a_128_gb_mac_is_in_the_catalog() -> None:
    """The 70B-at-home user's Mac: at least one Apple row sells 128 GB or more."""
    big = [g for g in APPLE if g.memory_gb >= 128]
    assert {"apple-m1-ultra-64c", "apple-m2-ultra-76c", "apple-m4-max-40c"} <= {g.id for g in big}


@pytest.mark.parametrize(
    ("name", "gpu_id", "memory_gb", "bandwidth", "price"),
    [
        # launch prices and memory as NVIDIA, Intel and AMD announced them
        ("rtx 5060 ti 16gb", "rtx-5060-ti-16gb", 16, 448, 429),
        ("rtx 5060 ti 8gb", "rtx-5060-ti-8gb", 8, 448, 379),
        ("rtx 5060", "rtx-5060", 8, 448, 299),
        ("arc b580", "arc-b580", 12, 456, 249),
        ("rx 9070 xt", "rx-9070-xt", 16, 640, 599),
    ],
)
def test_current_desktop_cards(
    name: str, gpu_id: str, memory_gb: float, bandwidth: float, price: float
) -> None:
    gpu = find_gpu(name)
    assert gpu.id == gpu_id and gpu.form_factor == "pcie"
    assert (gpu.memory_gb, gpu.memory_bandwidth_gbs, gpu.launch_price_usd) == (
        memory_gb,
        bandwidth,
        price,
    )


def test_the_5060_ti_cards_share_an_nvml_name_and_memory_tells_them_apart() -> None:
    from gpuscout.catalog import match_local_gpu

    mib = 1024**2
    name = "NVIDIA GeForce RTX 5060 Ti"
    assert match_local_gpu(name, 16311 * mib) is by_id("rtx-5060-ti-16gb")
    assert match_local_gpu(name, 8151 * mib) is by_id("rtx-5060-ti-8gb")


def test_intel_is_a_vendor_and_b580_has_no_unsourced_matrix_rate() -> None:
    b580 = by_id("arc-b580")
    assert b580.vendor == "Intel" and b580.compute_capability is None
    assert b580.peak_tflops("fp32") == pytest.approx(13.67)
    assert b580.peak_tflops("bf16") is None and "not sourced" in b580.note


@pytest.mark.parametrize("gpu", [g for g in GPUS if g.vendor == "AMD"], ids=lambda g: g.id)
def test_every_amd_row_says_pytorch_runs_through_rocm(gpu: GpuSpec) -> None:
    assert "ROCm" in gpu.note


def test_cards_leave_out_laptop_gpus_and_apple_silicon() -> None:
    from gpuscout.catalog import card_gpus, find_gpu, load_gpus

    cards = {g.id for g in card_gpus()}
    assert find_gpu("rtx 4090").id in cards and find_gpu("h100 sxm").id in cards
    assert find_gpu("rtx 4090 laptop").id not in cards
    assert find_gpu("m3 max").id not in cards
    left_out = {g.id for g in load_gpus()} - cards
    assert all(
        g.form_factor == "laptop" or g.vendor == "Apple" for g in load_gpus() if g.id in left_out
    )
