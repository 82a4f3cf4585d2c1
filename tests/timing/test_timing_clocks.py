"""clock_for picks the clock by device: the host's perf counter off the GPU (CUDA events
on a GPU are exercised by tests/gpu)."""

from __future__ import annotations

import sys

import pytest

from gpuscout.timing import CudaEventClock, PerfCounterClock, clock_for


@pytest.mark.parametrize("device", ["cpu", "mps", "meta"])
def test_off_the_gpu_the_host_clock_times_the_work(device: str) -> None:
    assert isinstance(clock_for(device), PerfCounterClock)


def test_a_cuda_device_gets_cuda_events(monkeypatch: pytest.MonkeyPatch) -> None:
    # Build no CUDA state: replace the event clock with a recorder of what it was given.
    seen: list[str] = []

    class Recorder(CudaEventClock):
        def __init__(self, device: str | int = "cuda") -> None:
            seen.append(str(device))

    monkeypatch.setattr(sys.modules["gpuscout.timing.clocks"], "CudaEventClock", Recorder)
    assert isinstance(clock_for("cuda:1"), Recorder)
    assert seen == ["cuda:1"]
