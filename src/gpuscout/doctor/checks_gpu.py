"""Per-GPU health checks, from NVML readings only (no CUDA context is created)."""

from __future__ import annotations

from collections.abc import Iterator

from gpuscout._types import Finding, GpuInfo, Status, SystemInfo
from gpuscout.doctor.checks import check
from gpuscout.probe.clock_events import SW_POWER_CAP, THROTTLE_MASK, throttle_reasons

_IDLE = 0x1
# Other processes holding this share of a GPU's memory leave too little for real work.
_BUSY_FRACTION = 0.5


def _gpus(system: SystemInfo) -> Iterator[tuple[str, GpuInfo]]:
    for gpu in system.nvidia.gpus:
        yield f"GPU {gpu.index}", gpu


def _gib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**30:.1f} GiB"


@check("gpu.identity", "Each GPU and its catalog row")
def identity(system: SystemInfo) -> Iterator[Finding]:
    for subject, gpu in _gpus(system):
        if gpu.lost:
            yield Finding(
                "gpu.lost",
                Status.FAIL,
                f"{gpu.name or 'a GPU'} fell off the bus during the probe",
                gpu.error or "NVML: GPU is lost",
                fix="check `dmesg | grep -i xid`; reseat power and the card, then reboot",
                subject=subject,
            )
            continue
        cc = gpu.compute_capability
        mem = f"{gpu.memory_total_bytes / 2**30:.0f} GiB" if gpu.memory_total_bytes else "n/a"
        summary = (
            f"{gpu.name}, {mem}, compute capability {cc[0]}.{cc[1]}" if cc else f"{gpu.name}, {mem}"
        )
        if gpu.pcie_gen_current is not None:
            summary += f", PCIe gen{gpu.pcie_gen_current} x{gpu.pcie_width_current}"
        detail = f"uuid {gpu.uuid}, bus {gpu.bus_id}"
        if gpu.catalog_id:
            detail += f", catalog row {gpu.catalog_id}"
            yield Finding("gpu.identity", Status.PASS, summary, detail, subject=subject)
        else:
            yield Finding(
                "gpu.identity",
                Status.PASS,
                summary,
                detail + "; not in gpuscout's catalog, so no datasheet comparison",
                subject=subject,
            )


@check("gpu.pcie", "PCIe link runs at its full generation and width")
def pcie(system: SystemInfo) -> Iterator[Finding]:
    for subject, gpu in _gpus(system):
        if gpu.lost:
            continue
        gc, gm, wc, wm = (
            gpu.pcie_gen_current,
            gpu.pcie_gen_max,
            gpu.pcie_width_current,
            gpu.pcie_width_max,
        )
        if None in (gc, gm, wc, wm):
            yield Finding("gpu.pcie", Status.SKIP, "PCIe link not reported", subject=subject)
            continue
        assert gc is not None and gm is not None and wc is not None and wm is not None
        link = f"gen{gc} x{wc} (max gen{gm} x{wm})"
        idle = gpu.clock_event_reasons is not None and gpu.clock_event_reasons & _IDLE
        if wc < wm:
            yield Finding(
                "gpu.pcie",
                Status.FAIL,
                f"PCIe link runs at x{wc}, the slot and GPU allow x{wm}: {link}",
                "A narrower link cuts host-to-device bandwidth; the width does not drop at idle.",
                fix="reseat the card in a full x16 slot; check the BIOS lane settings and riser",
                subject=subject,
            )
        elif gc < gm and not idle:
            yield Finding(
                "gpu.pcie",
                Status.WARN,
                f"PCIe link below its generation while the GPU is busy: {link}",
                "GPUs lower the link generation at idle, but this one is not idle.",
                fix="gpuscout bench micro --only transfer  # check host-to-device bandwidth; "
                "then the BIOS PCIe generation setting",
                subject=subject,
            )
        else:
            note = " (the generation drops at idle; normal)" if gc < gm else ""
            yield Finding("gpu.pcie", Status.PASS, f"PCIe {link}{note}", subject=subject)


@check("gpu.throttle", "No thermal or power throttling")
def throttle(system: SystemInfo) -> Iterator[Finding]:
    for subject, gpu in _gpus(system):
        reasons = gpu.clock_event_reasons
        if gpu.lost or reasons is None:
            continue
        active = reasons & THROTTLE_MASK
        names = throttle_reasons(active)
        temp = f"{gpu.temperature_c} C" if gpu.temperature_c is not None else "n/a"
        power = (
            f"{gpu.power_draw_w:.0f} W of {gpu.power_limit_w:.0f} W"
            if gpu.power_draw_w is not None and gpu.power_limit_w is not None
            else "n/a"
        )
        readings = f"temperature {temp}, power {power}, SM clock {gpu.sm_clock_mhz} MHz"
        if active & ~SW_POWER_CAP:
            yield Finding(
                "gpu.throttle",
                Status.FAIL,
                f"clocks held down by {', '.join(names)}",
                readings,
                fix="improve cooling and airflow (clean fans, free the intake); check the PSU "
                "and power cables; `nvidia-smi -q -d PERFORMANCE` shows the live reasons",
                subject=subject,
            )
        elif active:
            yield Finding(
                "gpu.throttle",
                Status.WARN,
                "clocks held at the software power cap",
                readings + ". Normal under full load; at idle, the power limit may be set low.",
                fix="nvidia-smi -q -d POWER  # compare the enforced and default power limits",
                subject=subject,
            )
        else:
            yield Finding(
                "gpu.throttle", Status.PASS, f"no throttling ({readings})", subject=subject
            )


@check("gpu.ecc", "No uncorrectable memory errors")
def ecc(system: SystemInfo) -> Iterator[Finding]:
    for subject, gpu in _gpus(system):
        if gpu.lost:
            continue
        problems: list[str] = []
        if gpu.ecc_uncorrected_volatile:
            problems.append(f"{gpu.ecc_uncorrected_volatile} uncorrectable ECC errors since boot")
        if gpu.remapped_rows_pending:
            problems.append("a memory row remap is pending")
        if gpu.retired_pages_pending:
            problems.append("a page retirement is pending")
        if gpu.remapped_rows_failure:
            yield Finding(
                "gpu.ecc",
                Status.FAIL,
                "row remapping failed: the GPU memory is failing",
                "; ".join(problems),
                fix="take the GPU out of service and RMA it",
                subject=subject,
            )
        elif problems:
            yield Finding(
                "gpu.ecc",
                Status.FAIL,
                "; ".join(problems),
                "Results computed on this GPU may be wrong until it is reset.",
                fix=f"sudo nvidia-smi -r -i {gpu.index}  # reset the GPU (no process may use it), "
                "or reboot; if errors recur, RMA the card",
                subject=subject,
            )
        elif gpu.ecc_enabled is None:
            yield Finding("gpu.ecc", Status.SKIP, "ECC not supported on this GPU", subject=subject)
        else:
            state = "on" if gpu.ecc_enabled else "off"
            yield Finding(
                "gpu.ecc", Status.PASS, f"ECC {state}, no uncorrectable errors", subject=subject
            )


@check("gpu.mig", "MIG mode")
def mig(system: SystemInfo) -> Iterator[Finding]:
    for subject, gpu in _gpus(system):
        if gpu.lost or not gpu.mig_enabled:
            continue
        yield Finding(
            "gpu.mig",
            Status.WARN,
            f"MIG is enabled on {gpu.name}: programs see a slice, not the whole GPU",
            "A process can use one MIG instance; memory and speed are the slice's. "
            "Benchmarks measure the slice.",
            fix="CUDA_VISIBLE_DEVICES=MIG-<uuid> (see `nvidia-smi -L`); to use the whole GPU: "
            f"sudo nvidia-smi -i {gpu.index} -mig 0",
            subject=subject,
        )


@check("gpu.memory", "GPU memory is free for your work")
def memory(system: SystemInfo) -> Iterator[Finding]:
    for subject, gpu in _gpus(system):
        if gpu.lost or not gpu.memory_total_bytes:
            continue
        used = gpu.memory_used_bytes or 0
        share = used / gpu.memory_total_bytes
        procs = ", ".join(
            f"pid {p.pid} ({p.name or '?'}, {_gib(p.used_memory_bytes)})" for p in gpu.processes
        )
        exclusive = gpu.compute_mode == "exclusive_process" and gpu.processes
        if exclusive:
            yield Finding(
                "gpu.memory",
                Status.FAIL,
                "the GPU is in exclusive-process mode and another process holds it",
                procs,
                fix=f"stop that process, or (as root) nvidia-smi -i {gpu.index} -c DEFAULT",
                subject=subject,
            )
        elif share >= _BUSY_FRACTION:
            yield Finding(
                "gpu.memory",
                Status.WARN,
                f"{_gib(used)} of {_gib(gpu.memory_total_bytes)} already in use ({share:.0%})",
                procs or "No process is listed: in a container the owner may be hidden.",
                fix="stop the processes listed (`kill PID`), or `sudo fuser -v /dev/nvidia*` "
                "to find hidden ones",
                subject=subject,
            )
        else:
            yield Finding(
                "gpu.memory",
                Status.PASS,
                f"{_gib(gpu.memory_total_bytes - used)} free of {_gib(gpu.memory_total_bytes)}",
                subject=subject,
            )
