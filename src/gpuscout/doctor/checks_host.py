"""Checks about the host and the NVIDIA driver as a whole (not one GPU)."""

from __future__ import annotations

from collections.abc import Iterator

from gpuscout._types import Finding, NvmlState, Status, SystemInfo
from gpuscout.doctor.checks import check

_NO_GPU_MEANING = (
    "Small models (the classic Fashion-MNIST MLP, a small CNN) train fine on a CPU; "
    "larger ones (ResNet-50, transformers, LLMs) need a GPU to finish in reasonable time. "
    "`gpuscout run` measures this CPU; `gpuscout advise` says which GPU would help and "
    "what it costs."
)


@check("host.cpu", "CPU and memory")
def cpu(system: SystemInfo) -> Iterator[Finding]:
    h = system.host
    cores = f"{h.physical_cores or '?'} cores / {h.logical_cores or '?'} threads"
    ram = f"{h.ram_total_bytes / 2**30:.0f} GiB RAM" if h.ram_total_bytes else "RAM n/a"
    isa = ", ".join(h.isa) if h.isa else "n/a"
    detail = f"ISA features: {isa}."
    bw = h.mem_bandwidth_theoretical_gbs
    if bw is not None:
        detail += (
            f" Theoretical memory bandwidth {bw:.1f} GB/s ({h.mem_mts} MT/s x {h.mem_channels} ch)."
        )
    if "amx_bf16" in h.isa:
        detail += " AMX: bf16 matrix work on this CPU is fast; gpuscout's tuned CPU paths use it."
    yield Finding("host.cpu", Status.PASS, f"{h.cpu_model}: {cores}, {ram}", detail)


@check("host.environment", "Container and WSL")
def environment(system: SystemInfo) -> Iterator[Finding]:
    h = system.host
    if h.wsl:
        yield Finding(
            "host.environment",
            Status.PASS,
            "running under WSL2",
            "Under WSL2 the GPU driver is the Windows one; libcuda lives in /usr/lib/wsl/lib.",
            fix="install only the Windows NVIDIA driver; never a Linux driver or CUDA runfile "
            "driver inside the distro",
        )
    elif h.container:
        no_gpu = system.nvidia.state is NvmlState.LIBRARY_NOT_FOUND
        yield Finding(
            "host.environment",
            Status.PASS,
            f"running in a container ({h.container})",
            "A GPU is only visible inside a container started with the NVIDIA container toolkit."
            if no_gpu
            else "",
            fix="docker run --gpus all ... (needs nvidia-container-toolkit on the host)"
            if no_gpu
            else "",
        )
    else:
        yield Finding("host.environment", Status.PASS, f"{h.os_pretty or h.os_name}, no container")


@check("nvidia.driver", "NVIDIA driver and GPUs")
def driver(system: SystemInfo) -> Iterator[Finding]:
    nv = system.nvidia
    fid = "nvidia.driver"
    if nv.state is NvmlState.LIBRARY_NOT_FOUND:
        apple_or_amd = _other_accelerator(system)
        if apple_or_amd:
            yield Finding(fid, Status.SKIP, f"no NVIDIA driver; {apple_or_amd}")
            return
        yield Finding(
            fid,
            Status.WARN,
            "no NVIDIA GPU or driver found: deep-learning work will run on the CPU",
            _NO_GPU_MEANING,
            fix="if this machine has an NVIDIA GPU, install its driver "
            "(Ubuntu: sudo ubuntu-drivers install) and reboot",
        )
    elif nv.state is NvmlState.VERSION_MISMATCH:
        yield Finding(
            fid,
            Status.FAIL,
            "NVIDIA driver/library version mismatch: the kernel module and user-space "
            "driver differ",
            f"NVML: {nv.error or 'Driver/library version mismatch'}. This usually follows a "
            "driver upgrade without a reboot; no program can use the GPU until it is fixed.",
            fix="sudo reboot  # or unload and reload the nvidia kernel modules",
        )
    elif nv.state is NvmlState.DRIVER_NOT_LOADED:
        yield Finding(
            fid,
            Status.FAIL,
            "the NVIDIA driver is installed but its kernel module is not loaded",
            f"NVML: {nv.error or 'Driver Not Loaded'}. Secure Boot blocking the module, or "
            "nouveau holding the device, are the usual causes.",
            fix="sudo modprobe nvidia  # check `lsmod | grep nouveau` and Secure Boot if it fails",
        )
    elif nv.state is NvmlState.NO_PERMISSION:
        yield Finding(
            fid,
            Status.FAIL,
            "no permission to talk to the NVIDIA driver",
            f"NVML: {nv.error or 'Insufficient Permissions'}",
            fix="check the permissions of /dev/nvidia* (your user may need the video group)",
        )
    elif nv.state is NvmlState.ERROR:
        yield Finding(
            fid,
            Status.FAIL,
            "the NVIDIA driver could not be initialised",
            f"NVML: {nv.error}",
            fix="sudo reboot; if it persists, reinstall the driver",
        )
    elif not nv.gpus:
        yield Finding(
            fid,
            Status.WARN,
            f"NVIDIA driver {nv.driver_version} is installed but sees no GPU",
            _NO_GPU_MEANING,
            fix="check that the GPU is seated and powered (`lspci | grep -i nvidia`)",
        )
    else:
        names = ", ".join(sorted({g.name or "?" for g in nv.gpus}))
        yield Finding(
            fid,
            Status.PASS,
            f"driver {nv.driver_version} (supports CUDA up to {nv.cuda_driver_version_str}), "
            f"{len(nv.gpus)} GPU{'s' if len(nv.gpus) > 1 else ''}: {names}",
        )


def _other_accelerator(system: SystemInfo) -> str | None:
    torch = system.framework("torch")
    if torch is None or not torch.installed:
        return None
    if torch.mps_available:
        return "Apple GPU available to torch through MPS"
    if torch.hip_build and torch.gpu_available:
        return f"AMD GPU available to torch through ROCm/HIP {torch.hip_build}"
    return None
