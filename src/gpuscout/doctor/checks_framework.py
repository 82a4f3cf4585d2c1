"""Checks that join the driver's facts with each framework's build facts."""

from __future__ import annotations

from collections.abc import Iterator

from gpuscout._types import Finding, FrameworkInfo, NvmlState, Status, SystemInfo
from gpuscout.doctor.checks import check
from gpuscout.doctor.cuda_tables import (
    arch_supports,
    cuda_from_nvml,
    min_driver_for,
    parse_version,
    recommend_torch_wheel,
    torch_install_command,
)

_CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def _has_nvidia_gpu(system: SystemInfo) -> bool:
    return system.nvidia.state is NvmlState.OK and bool(system.nvidia.gpus)


def _first_cc(system: SystemInfo) -> tuple[int, int] | None:
    ccs = [g.compute_capability for g in system.nvidia.gpus if g.compute_capability]
    return min(ccs) if ccs else None  # the oldest GPU constrains the wheel most


def _wheel_fix(system: SystemInfo, reinstall: bool = True) -> str:
    wheel = recommend_torch_wheel(
        cuda_from_nvml(system.nvidia.cuda_driver_version), _first_cc(system)
    )
    return torch_install_command(wheel, reinstall)


def _broken(fw: FrameworkInfo) -> Finding:
    what = "hung" if fw.timed_out else "failed"
    return Finding(
        f"{fw.name}.import",
        Status.FAIL,
        f"importing {fw.name} {what} in a fresh process",
        fw.error or "",
        fix=f"pip install --force-reinstall {fw.name}  # in a clean virtual environment",
    )


@check("framework.installed", "A deep-learning framework is installed")
def installed(system: SystemInfo) -> Iterator[Finding]:
    present = [f for f in system.frameworks if f.installed]
    if not present:
        fix = _wheel_fix(system, reinstall=False) if _has_nvidia_gpu(system) else _CPU_TORCH
        yield Finding(
            "framework.installed",
            Status.WARN,
            "no deep-learning framework (torch, tensorflow, jax) is installed",
            "gpuscout's benchmarks and workloads need PyTorch; `doctor` and `fit` work without it.",
            fix=fix,
        )
        return
    for fw in present:
        if fw.error or fw.timed_out:
            yield _broken(fw)
    ok = [f"{f.name} {f.version}" for f in present if not (f.error or f.timed_out)]
    if ok:
        yield Finding("framework.installed", Status.PASS, ", ".join(ok))


@check("torch.build", "PyTorch build matches the GPU")
def torch_build(system: SystemInfo) -> Iterator[Finding]:
    fw = system.framework("torch")
    if fw is None or not fw.installed or fw.error or fw.timed_out:
        yield Finding("torch.build", Status.SKIP, "torch is not installed or did not import")
        return
    if fw.cuda_build is None and fw.hip_build is None:
        if _has_nvidia_gpu(system):
            yield Finding(
                "torch.build",
                Status.FAIL,
                f"torch {fw.version} is a CPU-only build, but this machine has an NVIDIA GPU",
                "Every torch program will run on the CPU. The command below installs the "
                "newest CUDA build that both the driver and the GPU support.",
                fix=_wheel_fix(system),
            )
        elif fw.mps_built and not fw.mps_available and system.host.os_name == "Darwin":
            yield Finding(
                "torch.build",
                Status.WARN,
                "torch has MPS built in but it is not available",
                "Usually macOS older than 12.3, or an x86 Python running under Rosetta.",
                fix="use a native arm64 Python (python3 -c 'import platform; "
                "print(platform.machine())' must print arm64) on macOS >= 12.3",
            )
        else:
            yield Finding("torch.build", Status.PASS, f"torch {fw.version} (CPU build)")
        return
    if fw.hip_build:
        yield Finding(
            "torch.build", Status.PASS, f"torch {fw.version} built for ROCm/HIP {fw.hip_build}"
        )
        return
    arch = " ".join(fw.arch_list) or "n/a"
    yield Finding(
        "torch.build",
        Status.PASS,
        f"torch {fw.version} built with CUDA {fw.cuda_build}, cuDNN {fw.cudnn_version or 'n/a'}",
        f"architectures: {arch}",
    )


@check("torch.driver", "Driver is new enough for torch's CUDA")
def torch_driver(system: SystemInfo) -> Iterator[Finding]:
    fw = system.framework("torch")
    build = parse_version(fw.cuda_build) if fw else None
    driver = cuda_from_nvml(system.nvidia.cuda_driver_version)
    if fw is None or build is None or driver is None or len(build) < 2:
        yield Finding(
            "torch.driver", Status.SKIP, "no CUDA build of torch with a driver to compare"
        )
        return
    build2 = (build[0], build[1])
    need = min_driver_for(build2) or "a newer driver"
    have = f"driver {system.nvidia.driver_version} supports CUDA up to {driver[0]}.{driver[1]}"
    if driver[0] < build2[0]:
        yield Finding(
            "torch.driver",
            Status.FAIL,
            f"driver too old: torch needs CUDA {fw.cuda_build}, {have}",
            "torch will fail with 'The NVIDIA driver on your system is too old'.",
            fix=f"upgrade the NVIDIA driver to >= {need}, or: {_wheel_fix(system)}",
        )
    elif driver < build2:
        yield Finding(
            "torch.driver",
            Status.WARN,
            f"driver older than torch's CUDA {fw.cuda_build} ({have}): runs in "
            "minor-version compatibility mode",
            "Most work runs, but PTX JIT (Triton, torch.compile) can fail.",
            fix=f"upgrade the NVIDIA driver to >= {need}",
        )
    else:
        yield Finding("torch.driver", Status.PASS, f"{have}; torch needs {fw.cuda_build}")


@check("torch.arch", "torch has kernels for each GPU's architecture")
def torch_arch(system: SystemInfo) -> Iterator[Finding]:
    fw = system.framework("torch")
    if fw is None or not fw.cuda_build or not fw.arch_list or not _has_nvidia_gpu(system):
        yield Finding("torch.arch", Status.SKIP, "no CUDA build of torch and NVIDIA GPU to compare")
        return
    for gpu in system.nvidia.gpus:
        cc = gpu.compute_capability
        if cc is None:
            continue
        subject = f"GPU {gpu.index}"
        if arch_supports(fw.arch_list, cc):
            yield Finding(
                "torch.arch",
                Status.PASS,
                f"sm_{cc[0]}{cc[1]} is in torch's arch list",
                subject=subject,
            )
            continue
        yield Finding(
            "torch.arch",
            Status.FAIL,
            f"{gpu.name} (compute capability {cc[0]}.{cc[1]}) is not in torch's arch list",
            f"torch {fw.version} has {' '.join(fw.arch_list)}; kernels will fail with "
            "'no kernel image is available for execution on the device'.",
            fix=_wheel_fix(system),
            subject=subject,
        )


@check("torch.kernel", "A tiny kernel runs on each GPU")
def torch_kernel(system: SystemInfo) -> Iterator[Finding]:
    fw = system.framework("torch")
    # A CUDA wheel on a machine without an NVIDIA GPU also fails its launch: that is no
    # fault, and torch.build / nvidia.driver already say what it means.
    no_gpu = not _has_nvidia_gpu(system) and not (fw and fw.hip_build)
    if fw is None or fw.kernel_ok is None or no_gpu:
        yield Finding("torch.kernel", Status.SKIP, "no GPU for torch to launch a kernel on")
        return
    if fw.kernel_ok:
        yield Finding("torch.kernel", Status.PASS, f"a test kernel ran on {fw.device_count} GPU(s)")
        return
    err = fw.kernel_error or "unknown error"
    yield Finding(
        "torch.kernel",
        Status.FAIL,
        "a GPU is listed but a tiny kernel launch failed",
        err,
        fix=_kernel_fix(err, system),
    )


def _kernel_fix(err: str, system: SystemInfo) -> str:
    e = err.lower()
    if "no kernel image" in e or "not compatible with the current pytorch" in e:
        return _wheel_fix(system)
    if "driver version is insufficient" in e or "too old" in e:
        return f"upgrade the NVIDIA driver, or: {_wheel_fix(system)}"
    if "system not yet initialized" in e or "802" in e:
        return "sudo systemctl enable --now nvidia-fabricmanager  # same version as the driver"
    if "forward compatibility" in e or "804" in e:
        return "use a container image whose CUDA the host driver supports (drop cuda-compat)"
    if "busy or unavailable" in e:
        return "another process holds a GPU in exclusive mode: nvidia-smi -c DEFAULT (as root)"
    if any(g.mig_enabled for g in system.nvidia.gpus):
        return (
            "MIG is on: export CUDA_VISIBLE_DEVICES=MIG-<uuid>  # one instance, from nvidia-smi -L"
        )
    if "no cuda gpus are available" in e and system.env.cuda_visible_devices is not None:
        return "unset CUDA_VISIBLE_DEVICES  # it hides every GPU from this process"
    if "uncorrectable ecc" in e:
        return "reset the GPU (nvidia-smi -r as root) or reboot; if it recurs, RMA the card"
    return "run `python -c \"import torch; torch.ones(1, device='cuda')\"` to see the full error"


@check("gpu.visibility", "Frameworks see the GPUs the driver sees")
def visibility(system: SystemInfo) -> Iterator[Finding]:
    fw = system.framework("torch")
    nv_count = len(system.nvidia.gpus)
    cvd = system.env.cuda_visible_devices
    if not _has_nvidia_gpu(system) or fw is None or fw.device_count is None or not fw.cuda_build:
        yield Finding("gpu.visibility", Status.SKIP, "nothing to compare")
        return
    if any(g.mig_enabled for g in system.nvidia.gpus):
        yield Finding("gpu.visibility", Status.SKIP, "MIG is enabled: see gpu.mig")
        return
    if fw.kernel_ok is False and fw.device_count == 0:
        yield Finding("gpu.visibility", Status.SKIP, "torch cannot start CUDA: see torch.kernel")
        return
    if fw.device_count == nv_count:
        yield Finding("gpu.visibility", Status.PASS, f"torch and NVML both see {nv_count} GPU(s)")
        return
    if cvd is not None:
        status = Status.FAIL if fw.device_count == 0 else Status.WARN
        yield Finding(
            "gpu.visibility",
            status,
            f"CUDA_VISIBLE_DEVICES={cvd!r} hides {nv_count - fw.device_count} of {nv_count} GPUs",
            "Intended when sharing a machine; otherwise work runs on fewer GPUs than you have.",
            fix="unset CUDA_VISIBLE_DEVICES",
        )
        return
    yield Finding(
        "gpu.visibility",
        Status.FAIL,
        f"NVML sees {nv_count} GPU(s) but torch sees {fw.device_count}",
        "The driver and the CUDA runtime disagree; a GPU may have failed to initialise.",
        fix="check `dmesg | grep -i xid` and reboot; set CUDA_DEVICE_ORDER=PCI_BUS_ID to match "
        "nvidia-smi's numbering",
    )


@check("frameworks.other", "TensorFlow and JAX builds")
def other_frameworks(system: SystemInfo) -> Iterator[Finding]:
    gpu = _has_nvidia_gpu(system)
    for fw in system.frameworks:
        if fw.name == "torch" or not fw.installed or fw.error or fw.timed_out:
            continue
        if _tensorflow_on_windows(fw, system):
            yield _no_gpu_on_windows(fw, gpu)
        elif gpu and not fw.gpu_available:
            yield _blind_build(fw)
        else:
            yield Finding(f"{fw.name}.build", Status.PASS, f"{fw.name} {fw.version}")
    ld = system.env.ld_library_path or ""
    if gpu and any(k in ld.lower() for k in ("cudnn", "cuda")):
        yield Finding(
            "env.ld_library_path",
            Status.WARN,
            "LD_LIBRARY_PATH points at CUDA libraries",
            f"LD_LIBRARY_PATH={ld}: pip wheels bundle their own CUDA and cuDNN; a system copy "
            "found first causes 'Loaded runtime CuDNN library ... but source was compiled with'.",
            fix="unset LD_LIBRARY_PATH  # or remove its CUDA/cuDNN entries",
        )


def _tensorflow_on_windows(fw: FrameworkInfo, system: SystemInfo) -> bool:
    """TensorFlow 2.11 or later on native Windows, which has no GPU build."""
    version = parse_version(fw.version) or (0,)
    return fw.name == "tensorflow" and system.host.os_name == "Windows" and version >= (2, 11)


def _no_gpu_on_windows(fw: FrameworkInfo, gpu: bool) -> Finding:
    return Finding(
        "tensorflow.windows",
        Status.FAIL if gpu else Status.WARN,
        f"TensorFlow {fw.version} has no GPU support on native Windows",
        "TensorFlow 2.10 was the last release with GPU support on native Windows.",
        fix="use WSL2 (pip install tensorflow[and-cuda] inside it), or tensorflow<2.11",
    )


def _blind_build(fw: FrameworkInfo) -> Finding:
    """A TensorFlow or JAX that does not see the machine's GPU."""
    fix = 'pip install -U "jax[cuda12]"' if fw.name == "jax" else "pip install tensorflow[and-cuda]"
    note = fw.extra.get("note")
    return Finding(
        f"{fw.name}.build",
        Status.WARN,
        f"{fw.name} {fw.version} does not see the GPU (CPU-only build or missing libraries)",
        note if isinstance(note, str) else "",
        fix=fix,
    )
