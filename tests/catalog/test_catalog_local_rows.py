"""Rows for people who run models on their own machines: laptop GPUs, Apple silicon, and
current desktop cards, each holding the invariants its kind needs."""

from __future__ import annotations

import pytest

from gpuscout.catalog import GpuSpec, load_gpus

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
