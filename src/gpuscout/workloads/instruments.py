"""Per-section readings in the worker: wall time, energy, peak memory (allocator and NVML).

Energy comes from NVML's total-energy counter (millijoules since driver load, Volta and
newer) read at both ends of a section; where that counter is missing, power samples
taken every 50 ms by a background thread are integrated over the section (trapezoids,
the edge values held to the section's ends). NVML's memory reading is the whole
device's use, CUDA context and other processes included, so it is reported beside the
allocator's peak, not instead of it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from gpuscout.workloads.base import synchronize


class GpuReader(Protocol):
    """What the instruments read from one GPU; every reading may be None."""

    def power_w(self) -> float | None: ...
    def memory_used_bytes(self) -> int | None: ...
    def energy_mj(self) -> int | None: ...


@dataclass
class Section:
    """Filled in when the ``with inst.section()`` block ends."""

    time_s: float = 0.0
    energy_j: float | None = None
    energy_source: str | None = None  # "nvml counter", "nvml power samples"
    peak_mem_bytes: int | None = None  # torch allocator
    nvml_peak_mem_bytes: int | None = None
    power_samples: int = 0


def integrate_power(samples: Sequence[tuple[float, float]], t0: float, t1: float) -> float | None:
    """Joules over [t0, t1] from (time_s, watts) samples sorted by time; None if none."""
    if not samples or t1 <= t0:
        return None
    pts = [(t, w) for t, w in samples if t0 <= t <= t1]
    before = [(t, w) for t, w in samples if t < t0]
    after = [(t, w) for t, w in samples if t > t1]
    # Hold the nearest reading to each end, so a section shorter than the sampling
    # interval still gets an estimate (power x time) rather than nothing.
    first = pts[0][1] if pts else (before[-1][1] if before else after[0][1])
    last = pts[-1][1] if pts else (after[0][1] if after else before[-1][1])
    pts = [(t0, first), *pts, (t1, last)]
    return sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in itertools.pairwise(pts))


class NvmlReader:
    """One GPU through gpuscout.probe.nvml's fail-soft query function."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle

    def _read(self, fn: str) -> Any:
        from gpuscout.probe.nvml import nvml_query

        try:
            res = nvml_query(self._nvml, fn, self._handle)
        except Exception:  # GpuLostError: the readings stop, the benchmark goes on
            return None
        return res.value if res.ok else None

    def power_w(self) -> float | None:
        mw = self._read("nvmlDeviceGetPowerUsage")
        return None if mw is None else float(mw) / 1000.0

    def memory_used_bytes(self) -> int | None:
        info = self._read("nvmlDeviceGetMemoryInfo")
        return None if info is None else int(info.used)

    def energy_mj(self) -> int | None:
        mj = self._read("nvmlDeviceGetTotalEnergyConsumption")
        return None if mj is None else int(mj)


def _norm_uuid(u: object) -> str:
    text = u.decode(errors="replace") if isinstance(u, bytes) else str(u)
    return text.lower().removeprefix("gpu-")


def _find_handle(nvml: Any, uuid: str) -> Any:
    from gpuscout.probe.nvml import nvml_query

    try:
        count = nvml_query(nvml, "nvmlDeviceGetCount")
        for i in range(int(count.value) if count.ok else 0):
            h = nvml_query(nvml, "nvmlDeviceGetHandleByIndex", i)
            u = nvml_query(nvml, "nvmlDeviceGetUUID", h.value) if h.ok else None
            if u is not None and u.ok and _norm_uuid(u.value) == _norm_uuid(uuid):
                return h.value
    except Exception:  # a GPU lost while looking: no readings for this run
        return None
    return None


@contextmanager
def nvml_reader(uuid: str, nvml: Any | None = None) -> Iterator[GpuReader | None]:
    """A reader for the GPU with ``uuid`` (NVML and CUDA number GPUs differently under
    CUDA_VISIBLE_DEVICES, the UUID is the same); None when NVML cannot see it."""
    try:
        from gpuscout.probe.nvml import nvml_session
    except ImportError:
        yield None
        return
    with nvml_session(nvml) as session:
        handle = _find_handle(session.nvml, uuid) if session.ok and uuid else None
        yield None if handle is None else NvmlReader(session.nvml, handle)


@contextmanager
def nvml_reader_for(torch_index: int) -> Iterator[GpuReader | None]:
    """A reader for torch's cuda:``torch_index``."""
    import torch

    uuid = str(getattr(torch.cuda.get_device_properties(torch_index), "uuid", "") or "")
    with nvml_reader(uuid) as reader:
        yield reader


class Instruments:
    """Sections for one device; ``reader`` None (a CPU, no NVML) gives times only.

    ``clock`` times the sections and stamps the power samples (one clock for both, so a
    sample's stamp can be placed in a section); tests pass a fake one.
    """

    def __init__(
        self,
        device: Any,
        reader: GpuReader | None = None,
        interval_s: float = 0.05,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.device = device
        self.reader = reader
        self.interval_s = interval_s
        self._clock = clock
        self._samples: list[tuple[float, float | None, int | None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Instruments:
        if self.reader is not None:
            self._thread = threading.Thread(target=self._loop, name="gpuscout-power", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def sample_now(self) -> None:
        if self.reader is None:
            return
        reading = (self._clock(), self.reader.power_w(), self.reader.memory_used_bytes())
        with self._lock:
            self._samples.append(reading)

    def _loop(self) -> None:
        try:
            while True:
                self.sample_now()
                if self._stop.wait(self.interval_s):
                    return
        except Exception:  # a lost GPU ends sampling, never the benchmark
            return

    def _reset_peak(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)

    def _peak(self) -> int | None:
        if self.device.type != "cuda":
            return None
        import torch

        return int(torch.cuda.max_memory_allocated(self.device))

    @contextmanager
    def section(self) -> Iterator[Section]:
        """Time the block; the device is idle when it starts, and the caller
        synchronises it before leaving the block."""
        sec = Section()
        # Work queued before the section must not land in its time, energy or peak.
        synchronize(self.device)
        self._reset_peak()
        e0 = self.reader.energy_mj() if self.reader is not None else None
        w0 = self._clock()  # the sampling window includes the edge samples
        self.sample_now()
        t0 = self._clock()
        yield sec
        t1 = self._clock()
        self.sample_now()
        w1 = self._clock()
        e1 = self.reader.energy_mj() if self.reader is not None else None
        sec.time_s = t1 - t0
        sec.peak_mem_bytes = self._peak()
        self._readings(sec, (w0, w1), (t0, t1), (e0, e1))

    def _readings(
        self,
        sec: Section,
        window: tuple[float, float],
        span: tuple[float, float],
        energy_mj: tuple[int | None, int | None],
    ) -> None:
        """NVML's peak memory and the energy over ``span``: the energy counter where it
        moved, else the power samples integrated."""
        w0, w1 = window
        with self._lock:
            inside = [s for s in self._samples if w0 <= s[0] <= w1]
            power = [(t, w) for t, w, _ in self._samples if w is not None]
        mems = [m for _, _, m in inside if m is not None]
        sec.nvml_peak_mem_bytes = max(mems) if mems else None
        sec.power_samples = sum(1 for _, w, _ in inside if w is not None)
        e0, e1 = energy_mj
        if e0 is not None and e1 is not None and e1 >= e0:
            sec.energy_j, sec.energy_source = (e1 - e0) / 1000.0, "nvml energy counter"
        elif power:
            sec.energy_j = integrate_power(power, *span)
            sec.energy_source = "nvml power samples"


def section_extra(sec: Section) -> dict[str, Any]:
    """The common fields every workload result carries, from one section."""
    return {
        "time_s": sec.time_s,
        "peak_mem_bytes": sec.peak_mem_bytes,
        "nvml_peak_mem_bytes": sec.nvml_peak_mem_bytes,
        "energy_j": sec.energy_j,
        "energy_source": sec.energy_source,
    }
