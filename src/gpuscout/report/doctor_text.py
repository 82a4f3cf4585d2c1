"""The doctor's terminal output: the machine in a few lines, then one line per finding.

Findings that are not a pass show their detail and fix underneath, so the first thing a
user reads is what is wrong and what to paste.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gpuscout._types import Finding, FrameworkInfo, GpuInfo, HostInfo, Status, SystemInfo
from gpuscout.report import fmt

_MARK = {
    Status.PASS: ("ok", "green"),
    Status.SKIP: ("--", "dim"),
    Status.WARN: ("WARN", "yellow"),
    Status.FAIL: ("FAIL", "bold red"),
}


def machine_summary(system: SystemInfo) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("host", _host_line(system.host))
    nv = system.nvidia
    if nv.driver_version:
        t.add_row("driver", f"NVIDIA {nv.driver_version}, CUDA up to {nv.cuda_driver_version_str}")
    for g in nv.gpus:
        t.add_row(f"gpu {g.index}", _gpu_line(g))
    for fw in system.frameworks:
        if fw.installed:
            t.add_row(fw.name, _framework_line(fw))
    return t


def _host_line(h: HostInfo) -> str:
    cores = f"{h.physical_cores or '?'}C/{h.logical_cores or '?'}T"
    ram = f"{h.ram_total_bytes / 2**30:.0f} GiB" if h.ram_total_bytes else "n/a"
    return f"{h.cpu_model} ({cores}), {ram} RAM, {h.os_pretty or h.os_name}"


def _gpu_line(g: GpuInfo) -> str:
    if g.lost:
        return f"{g.name or '?'} (lost: {g.error})"
    cc = (
        f"cc {g.compute_capability[0]}.{g.compute_capability[1]}"
        if g.compute_capability
        else "cc n/a"
    )
    mem = f"{g.memory_total_bytes / 2**30:.0f} GiB" if g.memory_total_bytes else "n/a"
    pcie = (
        f"PCIe gen{g.pcie_gen_current}/{g.pcie_gen_max} x{g.pcie_width_current}/{g.pcie_width_max}"
        if g.pcie_gen_current is not None
        else "PCIe n/a"
    )
    return f"{g.name}, {mem}, {cc}, {pcie}, catalog: {g.catalog_id or 'not in catalog'}"


def _framework_line(fw: FrameworkInfo) -> str:
    build = (
        f"CUDA {fw.cuda_build}"
        if fw.cuda_build
        else f"HIP {fw.hip_build}"
        if fw.hip_build
        else "CPU build"
    )
    archs = f", arch {' '.join(fw.arch_list)}" if fw.arch_list else ""
    return f"{fw.version or 'broken'} ({build}{archs})"


def findings_view(findings: list[Finding], problems_only: bool = False) -> RenderableType:
    """One row per finding; detail and fix wrap under the summary, never under the mark.

    ``problems_only`` shows just warnings and failures (the counts still cover all).
    """
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for f in findings:
        if problems_only and f.status not in (Status.WARN, Status.FAIL):
            continue
        mark, style = _MARK[f.status]
        text = Text()
        if f.subject:
            text.append(f"[{f.subject}] ", style="cyan")
        text.append(f.summary, style="dim" if f.status is Status.SKIP else "")
        if f.status in (Status.WARN, Status.FAIL):
            if f.detail:
                text.append(f"\n{f.detail}", style="dim")
            if f.fix:
                text.append("\nfix: ", style="bold")
                text.append(f.fix)
        grid.add_row(Text(mark, style=style), Text(f.id, style="bold"), text)
    counts = {s: sum(1 for f in findings if f.status is s) for s in Status}
    tail = Text(
        f"{counts[Status.PASS]} ok, {fmt.plural(counts[Status.WARN], 'warning')}, "
        f"{counts[Status.FAIL]} failed, {counts[Status.SKIP]} skipped"
    )
    return Group(grid, Text(), tail)
