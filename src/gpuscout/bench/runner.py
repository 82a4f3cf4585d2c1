"""``run_micro``: every requested micro-benchmark on every requested device.

The runner validates names before anything heavy runs (a typo costs nothing), looks up
each device's ceilings (catalog for GPUs, the ISA formula for the CPU), gives the CPU all
its physical cores, samples NVML while a GPU works, and turns a benchmark that blows up
as a whole into a "failed" Result so the other benchmarks and devices still run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from gpuscout._types import Ceiling, HostInfo, Result, SystemInfo
from gpuscout.bench import benchmarks
from gpuscout.bench.context import BenchContext
from gpuscout.bench.cpu_peak import flops_per_cycle, host_peak_tflops, isa_class
from gpuscout.errors import GpuscoutError
from gpuscout.probe.devices import DEVICE_HINT as DEVICE_HINT
from gpuscout.probe.devices import resolve_devices as _resolve_devices
from gpuscout.timing.load import host_load, mark_busy

# (label, done, total): called before each benchmark and each case, and once at the end.
Progress = Callable[[str, int, int], None]

# GB/s per lane after line coding, by PCIe generation (gen 3+ use 128b/130b).
PCIE_GBS_PER_LANE = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise GpuscoutError(
            f"micro-benchmarks need PyTorch, which cannot be imported ({exc})",
            "pip install torch  (see https://pytorch.org/get-started/locally/)",
        ) from None
    return torch


def available_devices() -> list[str]:
    torch = _torch()
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu", *cuda] if torch.cuda.is_available() else ["cpu"]


def resolve_devices(spec: str | Sequence[str] | None) -> list[str]:
    """Device words (cpu, cuda, cuda:N, all; comma lists) -> device strings, or UsageError."""
    # A lambda, so the lookup of available_devices happens at call time (tests replace it).
    return _resolve_devices(spec, lambda: available_devices())


def resolve_benchmarks(only: str | Sequence[str] | None) -> list[str]:
    """Benchmark names in registry order; UnknownNameError (exit 2) for a wrong one."""
    if not only:
        return list(benchmarks.names())
    items = [only] if isinstance(only, str) else list(only)
    wanted = [w.strip().lower() for item in items for w in item.split(",") if w.strip()]
    for w in wanted:
        benchmarks.get(w)
    return [n for n in benchmarks.names() if n in wanted]


def _probe_host() -> HostInfo | None:
    try:
        from gpuscout.probe.host import probe_host

        return probe_host()
    except Exception:  # the probe is fail-soft already; this guards a missing module
        return None


def cpu_ceilings(host: HostInfo | None) -> Ceiling:
    if host is None:
        return Ceiling(source="no host probe")
    tflops = {p: v for p in ("fp32", "bf16") if (v := host_peak_tflops(host, p)) is not None}
    clock = host.max_clock_mhz or host.base_clock_mhz
    cls = isa_class(host.isa, host.arch)
    per = ", ".join(f"{p} {flops_per_cycle(host.isa, p, host.arch)}" for p in tflops)
    source = (
        f"CPU formula: {host.physical_cores} cores x {clock:.0f} MHz x FLOP/cycle ({per}; {cls})"
        if tflops and clock
        else "CPU peak unknown (cores or clock not readable)"
    )
    return Ceiling(tflops=tflops, bandwidth_gbs=host.mem_bandwidth_theoretical_gbs, source=source)


def _norm_uuid(u: object) -> str:
    return str(u).lower().removeprefix("gpu-")


def _nvml_gpu(torch: Any, index: int, system: SystemInfo | None) -> Any:
    """The probed GpuInfo for torch device ``index``, matched by UUID."""
    if system is None:
        return None
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is None:
        return None
    return next(
        (g for g in system.nvidia.gpus if g.uuid and _norm_uuid(g.uuid) == _norm_uuid(uuid)),
        None,
    )


def nvml_index(torch: Any, index: int, system: SystemInfo | None) -> int | None:
    """NVML's index for torch's ``index``: by UUID, else equal when no remapping is set."""
    gpu = _nvml_gpu(torch, index, system)
    if gpu is not None:
        return int(gpu.index)
    if os.environ.get("CUDA_VISIBLE_DEVICES") is None:
        return index
    return None


def gpu_ceilings(torch: Any, index: int, system: SystemInfo | None) -> Ceiling:
    props = torch.cuda.get_device_properties(index)
    gpu = _nvml_gpu(torch, index, system)
    pcie = _pcie_gbs(gpu)
    spec = _catalog_row(gpu, props)
    if spec is None:
        return Ceiling(pcie_gbs=pcie, source=f"{props.name}: not in the catalog")
    tflops = {}
    for p in ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8"):
        v = spec.peak_tflops(p)
        if v is not None:
            tflops[p] = float(v)
    return Ceiling(
        tflops=tflops,
        bandwidth_gbs=float(spec.memory_bandwidth_gbs),
        pcie_gbs=pcie,
        source=f"catalog:{spec.id}",
    )


def _pcie_gbs(gpu: Any) -> float | None:
    """The link's bandwidth at its best generation and width, as the probe read them."""
    if gpu is None or not gpu.pcie_gen_max or not gpu.pcie_width_max:
        return None
    lane = PCIE_GBS_PER_LANE.get(int(gpu.pcie_gen_max))
    return lane * int(gpu.pcie_width_max) if lane else None


def _catalog_row(gpu: Any, props: Any) -> Any:
    """The GPU's catalog row: the one the probe matched, else by name and memory; None
    without a catalog or a match (figures then have no denominator)."""
    try:
        from gpuscout import catalog

        spec = _probe_match(catalog, gpu)
        if spec is None:
            name = gpu.name if gpu is not None and gpu.name else props.name
            mem = gpu.memory_total_bytes if gpu is not None else None
            spec = catalog.match_local_gpu(name, int(mem or props.total_memory))
        return spec
    except Exception:
        return None


def _probe_match(catalog: Any, gpu: Any) -> Any:
    """The row of the id the probe matched; None when it matched none (or the id is gone)."""
    if gpu is None or not gpu.catalog_id:
        return None
    try:
        return catalog.find_gpu(gpu.catalog_id)
    except GpuscoutError:
        return None


@contextmanager
def _cpu_threads(torch: Any, cores: int | None) -> Iterator[None]:
    """All physical cores for the CPU benchmarks (hyper-threads add nothing to FMA or
    memory throughput and make timings noisier); the old setting is restored."""
    old = torch.get_num_threads()
    if cores:
        torch.set_num_threads(cores)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextmanager
def _current_gpu(torch: Any, index: int | None) -> Iterator[None]:
    """Make ``index`` the current CUDA device (cuBLAS handles, default streams) and create
    its context here, so no benchmark's cold call pays for it; the old device returns."""
    if index is None:
        yield
        return
    with torch.cuda.device(index):
        torch.zeros(1, device=f"cuda:{index}").add_(1)
        torch.cuda.synchronize(index)
        yield


@contextmanager
def _monitor(torch: Any, device: str, system: SystemInfo | None) -> Iterator[Any]:
    if not device.startswith("cuda"):
        yield None
        return
    from gpuscout.bench.monitor import NvmlMonitor

    idx = nvml_index(torch, int(device.split(":")[1]), system)
    if idx is None:
        yield None
        return
    with NvmlMonitor(idx) as mon:
        yield mon


def run_micro(
    devices: str | Sequence[str] | None = None,
    only: str | Sequence[str] | None = None,
    quick: bool = False,
    progress: Progress | None = None,
    *,
    system: SystemInfo | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run the micro-benchmarks ``only`` (default all) on ``devices`` (default all).

    ``system`` (from ``probe_system``) lets the runner match GPUs to NVML by UUID and
    read PCIe link widths; without it the host is probed here and NVML indices are
    assumed equal to torch's. ``on_result`` hears each result as its benchmark ends (a
    caller stores it straight away). Raises UsageError/UnknownNameError for bad names, and
    GpuscoutError when PyTorch is missing; failures of a benchmark become Results.
    """
    names = resolve_benchmarks(only)
    devs = resolve_devices(devices)
    torch = _torch()
    total = len(devs) * len(names)
    done = 0
    results: list[Result] = []

    def report(label: str) -> None:
        if progress is not None:
            progress(label, done, total)

    def case_reporter(device: str) -> Callable[[str], None]:
        return lambda case: report(f"{device} {case}")

    for device in devs:
        gpu_index: int | None = None
        if device == "cpu":
            host = system.host if system is not None else _probe_host()
            ceiling = cpu_ceilings(host)
            cores = host.physical_cores if host is not None else None
        else:
            gpu_index = int(device.split(":")[1])
            ceiling = gpu_ceilings(torch, gpu_index, system)
            cores = None
        with (
            _current_gpu(torch, gpu_index),
            _cpu_threads(torch, cores),
            _monitor(torch, device, system) as mon,
        ):
            ctx = BenchContext(ceiling=ceiling, monitor=mon, on_case=case_reporter(device))
            for name in names:
                report(f"{device} {name}")
                # Other processes' load over this benchmark's own span (ours subtracted).
                with host_load() as load:
                    try:
                        got = benchmarks.get(name)(device, quick, ctx)
                    except Exception as exc:  # a bug or a broken device: record it, go on
                        error = f"{type(exc).__name__}: {exc}"
                        got = [Result(name, device, None, "", "failed", error=error)]
                got = mark_busy(got, load.busy_pct)
                results.extend(got)
                for result in got:
                    if on_result is not None:
                        on_result(result)
                done += 1
    report("done")
    return results
