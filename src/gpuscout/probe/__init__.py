"""Read-only facts about this machine: host, NVIDIA driver and GPUs, frameworks.

Importing this package is free: pynvml, py-cpuinfo and every framework are loaded only
when a probe runs, and frameworks only in a subprocess.
"""

from __future__ import annotations

from gpuscout.probe.fake_nvml import FakeNvml
from gpuscout.probe.frameworks import fake_runner_from, probe_frameworks
from gpuscout.probe.host import probe_host
from gpuscout.probe.nvml import (
    THROTTLE_MASK,
    GpuSample,
    decode_clock_events,
    nvml_session,
    probe_nvidia,
    sample_gpu,
    throttle_reasons,
)
from gpuscout.probe.recorded import (
    RecordedMachine,
    load_machine,
    probe_recorded,
    record_machine,
)
from gpuscout.probe.system import probe_system

__all__ = [
    "THROTTLE_MASK",
    "FakeNvml",
    "GpuSample",
    "RecordedMachine",
    "decode_clock_events",
    "fake_runner_from",
    "load_machine",
    "nvml_session",
    "probe_frameworks",
    "probe_host",
    "probe_nvidia",
    "probe_recorded",
    "probe_system",
    "record_machine",
    "sample_gpu",
    "throttle_reasons",
]
