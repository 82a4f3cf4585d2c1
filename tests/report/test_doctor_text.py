"""The doctor's machine summary when figures are missing: every unknown reads "n/a" or
"?", never a crash or "None" (the recorded machines' golden files show the full ones)."""

from __future__ import annotations

import dataclasses

from rich.console import Console

from gpuscout._types import FrameworkInfo, GpuInfo, NvidiaInfo, NvmlState, SystemInfo
from gpuscout.report.doctor_text import machine_summary
from helpers import machines


def text(system: SystemInfo) -> list[str]:
    console = Console(width=120, record=True, color_system=None, force_terminal=False)
    console.print(machine_summary(system))
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_unknown_figures_read_n_a() -> None:
    h100 = machines.system("h100")
    host = dataclasses.replace(
        h100.host,
        cpu_model="Some CPU",
        physical_cores=None,
        logical_cores=8,
        ram_total_bytes=None,
        os_pretty="",
        os_name="Linux",
    )
    bare = GpuInfo(index=3, name="Odd GPU")
    lost = GpuInfo(index=4, lost=True, error="GPU is lost")
    nvidia = NvidiaInfo(NvmlState.OK, gpus=(bare, lost))  # no driver version: no driver row
    frameworks = (
        FrameworkInfo("torch", True, version=None, hip_build="6.2", arch_list=("gfx90a",)),
        FrameworkInfo("jax", False),  # not installed: not listed
        FrameworkInfo("tensorflow", True, version="2.17.0"),
    )
    system = dataclasses.replace(h100, host=host, nvidia=nvidia, frameworks=frameworks)
    assert text(system) == [
        "host        Some CPU (?C/8T), n/a RAM, Linux",
        "gpu 3       Odd GPU, n/a, cc n/a, PCIe n/a, catalog: not in catalog",
        "gpu 4       ? (lost: GPU is lost)",
        "torch       broken (HIP 6.2, arch gfx90a)",
        "tensorflow  2.17.0 (CPU build)",
    ]


def test_known_figures_are_written_out() -> None:
    h100 = machines.system("h100")
    gpu = dataclasses.replace(
        h100.nvidia.gpus[0],
        memory_total_bytes=80 * 2**30,
        compute_capability=(9, 0),
        pcie_gen_current=4,
        pcie_gen_max=5,
        pcie_width_current=8,
        pcie_width_max=16,
    )
    host = dataclasses.replace(
        h100.host,
        cpu_model="X",
        physical_cores=4,
        logical_cores=8,
        ram_total_bytes=64 * 2**30,
        os_pretty="Ubuntu",
    )
    torch = FrameworkInfo("torch", True, version="2.9.0", cuda_build="13.0")
    nvidia = dataclasses.replace(h100.nvidia, driver_version="580.95.05", gpus=(gpu,))
    system = dataclasses.replace(h100, host=host, nvidia=nvidia, frameworks=(torch,))
    assert text(system) == [
        "host    X (4C/8T), 64 GiB RAM, Ubuntu",
        "driver  NVIDIA 580.95.05, CUDA up to 13.0",
        "gpu 0   NVIDIA H100 80GB HBM3, 80 GiB, cc 9.0, PCIe gen4/5 x8/16, catalog: h100-sxm5-80gb",
        "torch   2.9.0 (CUDA 13.0)",
    ]
