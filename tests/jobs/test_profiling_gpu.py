"""What `gpuscout profile` samples of the script's GPU, on recorded machines replayed
through the fake NVML: the right GPU (by UUID, as CUDA_VISIBLE_DEVICES renumbers them),
over the timed steps, in one line."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from gpuscout.bench.monitor import NvmlMonitor
from gpuscout.cli.profile import gpu_line
from gpuscout.jobs.profiling import gpu_during, gpu_sampling
from gpuscout.probe.fake_nvml import FakeNvml
from gpuscout.profile.hooks import Observations
from helpers import machines


def busy(name: str, util: list[int]) -> FakeNvml:
    """The recorded machine, each GPU's utilization set for the scenario (the recordings
    are of idle machines, which read 0%)."""
    data = machines.nvml(name)
    for dev, pct in zip(data["devices"], util, strict=True):
        dev["utilization_gpu_pct"] = pct
    return FakeNvml(data)


def sampled(monitors: list[tuple[Any, NvmlMonitor]]) -> None:
    """Wait (up to 10 s) until every monitor holds a sample: a condition, not a sleep."""
    deadline = time.monotonic() + 10
    while any(not m.samples_between(-math.inf, math.inf) for _, m in monitors):
        assert time.monotonic() < deadline, "no NVML sample within 10 s"
        time.sleep(0.01)


def on_cuda(index: int, uuid: str | None) -> Observations:
    return Observations(device={"type": "cuda", "index": index, "uuid": uuid})


def test_the_scripts_gpu_is_sampled_as_recorded() -> None:
    with gpu_sampling(busy("h100", [97])) as monitors:
        sampled(monitors)
        gpu = gpu_during(on_cuda(0, "9f3c2a71-5be4-2d8e-8c1a-6e0b7d43f915"), monitors)
    assert [g.index for g, _ in monitors] == [0]
    assert gpu is not None and gpu["samples"] >= 1
    # h100.json: SM clock 345 MHz, 71.6 W, clock-event reason 1 (GPU idle)
    assert gpu["gpu_util_median_pct"] == 97 and gpu["sm_clock_median_mhz"] == 345
    assert gpu["power_max_w"] == pytest.approx(71.6) and gpu["throttled"] is False
    line = gpu_line(gpu)
    assert "97% busy (median)" in line and "SM clock 345 MHz" in line and "72 W" in line


def test_the_gpu_is_found_by_uuid_when_the_script_numbers_it_zero() -> None:
    # CUDA_VISIBLE_DEVICES=1: the script's cuda:0 is NVML's GPU 1 (cvd_hides.json)
    with gpu_sampling(busy("cvd_hides", [5, 88])) as monitors:
        sampled(monitors)
        second = gpu_during(on_cuda(0, "a0e8d2f6-5b17-49c3-86d0-c2f7e91b4a35"), monitors)
        asked = gpu_during(on_cuda(0, None), monitors, "cuda:1")
        first = gpu_during(on_cuda(0, None), monitors)
    assert second is not None and second["gpu_util_median_pct"] == 88
    assert asked is not None and asked["gpu_util_median_pct"] == 88
    assert first is not None and first["gpu_util_median_pct"] == 5


def test_the_window_cuts_the_samples_to_the_timed_steps() -> None:
    with gpu_sampling(busy("h100", [50])) as monitors:
        sampled(monitors)
        late = time.monotonic() + 3600  # a window after every sample: the last one
        obs = on_cuda(0, None)
        obs.window_clock = [late, late + 1]
        gpu = gpu_during(obs, monitors)
    assert gpu is not None and gpu["samples"] == 1


def test_no_gpu_no_samples() -> None:
    assert gpu_during(Observations(device={"type": "cpu"}), []) is None
    with gpu_sampling(FakeNvml(machines.nvml("h100")).fail_init("DRIVER_NOT_LOADED")) as mons:
        assert mons == []
    with gpu_sampling(busy("h100", [1])) as monitors:
        assert gpu_during(Observations(device={"type": "cpu"}), monitors) is None
    assert gpu_line({"samples": 0, "error": "NVML unavailable: x"}).endswith(
        "(NVML unavailable: x)"
    )
