"""Doctor checks on hand-built systems: one behaviour per test."""

from __future__ import annotations

import dataclasses

from gpuscout._types import (
    EnvVars,
    Finding,
    FrameworkInfo,
    GpuInfo,
    GpuProcess,
    HostInfo,
    NvidiaInfo,
    NvmlState,
    Status,
    SystemInfo,
)
from gpuscout.doctor import diagnose, exit_code
from gpuscout.doctor.checks import Check, run_checks

HOST = HostInfo(
    cpu_model="Test CPU",
    arch="x86_64",
    physical_cores=8,
    logical_cores=16,
    base_clock_mhz=3000.0,
    max_clock_mhz=4000.0,
    isa=("avx2", "fma"),
    ram_total_bytes=64 * 2**30,
    ram_available_bytes=60 * 2**30,
    os_name="Linux",
    os_release="6.8",
    os_pretty="Ubuntu 24.04",
    python_version="3.11.7",
    container=None,
    wsl=False,
)
GPU = GpuInfo(
    index=0,
    name="NVIDIA H100 80GB HBM3",
    uuid="GPU-1",
    bus_id="00000000:18:00.0",
    memory_total_bytes=80 * 10**9,
    memory_used_bytes=10**9,
    compute_capability=(9, 0),
    pcie_gen_current=5,
    pcie_gen_max=5,
    pcie_width_current=16,
    pcie_width_max=16,
    clock_event_reasons=0x1,
    ecc_enabled=True,
    ecc_uncorrected_volatile=0,
    mig_enabled=False,
    catalog_id="h100-sxm5-80gb",
)
TORCH = FrameworkInfo(
    name="torch",
    installed=True,
    version="2.11.0+cu130",
    cuda_build="13.0",
    arch_list=("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"),
    gpu_available=True,
    device_count=1,
    kernel_ok=True,
)


def system(
    gpus: tuple[GpuInfo, ...] = (GPU,), torch: FrameworkInfo | None = TORCH, **env: str
) -> SystemInfo:
    nv = NvidiaInfo(NvmlState.OK, driver_version="580.95.05", cuda_driver_version=13000, gpus=gpus)
    return SystemInfo(
        host=HOST,
        nvidia=nv,
        frameworks=(torch,) if torch else (),
        env=EnvVars(cuda_visible_devices=env.get("cvd")),
        gpuscout_version="test",
    )


def by_id(findings: list[Finding], fid: str) -> list[Finding]:
    return [f for f in findings if f.id == fid]


def test_healthy_h100_has_no_failure_or_warning() -> None:
    findings = diagnose(system())
    assert [f for f in findings if f.status in (Status.WARN, Status.FAIL)] == []
    assert exit_code(findings) == 0


def test_pcie_generation_drop_at_idle_is_normal_but_width_drop_fails() -> None:
    idle_gen3 = dataclasses.replace(GPU, pcie_gen_current=3)
    assert by_id(diagnose(system((idle_gen3,))), "gpu.pcie")[0].status is Status.PASS
    busy_gen3 = dataclasses.replace(GPU, pcie_gen_current=3, clock_event_reasons=0)
    assert by_id(diagnose(system((busy_gen3,))), "gpu.pcie")[0].status is Status.WARN
    x8 = dataclasses.replace(GPU, pcie_width_current=8)
    f = by_id(diagnose(system((x8,))), "gpu.pcie")[0]
    assert f.status is Status.FAIL and "x8" in f.summary and f.fix


def test_power_cap_warns_thermal_fails() -> None:
    capped = dataclasses.replace(GPU, clock_event_reasons=0x4)
    assert by_id(diagnose(system((capped,))), "gpu.throttle")[0].status is Status.WARN
    hot = dataclasses.replace(GPU, clock_event_reasons=0x40 | 0x4)
    assert by_id(diagnose(system((hot,))), "gpu.throttle")[0].status is Status.FAIL


def test_ecc_and_remap_pending_fail() -> None:
    bad = dataclasses.replace(GPU, ecc_uncorrected_volatile=3, remapped_rows_pending=True)
    f = by_id(diagnose(system((bad,))), "gpu.ecc")[0]
    assert f.status is Status.FAIL and "nvidia-smi -r" in f.fix


def test_other_process_holding_memory_warns_with_pids() -> None:
    busy = dataclasses.replace(
        GPU,
        memory_used_bytes=72 * 10**9,
        processes=(GpuProcess(pid=4242, used_memory_bytes=72 * 10**9, name="python"),),
    )
    f = by_id(diagnose(system((busy,))), "gpu.memory")[0]
    assert f.status is Status.WARN and "4242" in f.detail


def test_cpu_only_torch_on_gpu_machine_prints_cuda_install_command() -> None:
    cpu_torch = FrameworkInfo(
        "torch", True, version="2.11.0+cpu", gpu_available=False, device_count=0
    )
    f = by_id(diagnose(system(torch=cpu_torch)), "torch.build")[0]
    assert f.status is Status.FAIL
    assert "download.pytorch.org/whl/cu130" in f.fix


def test_cvd_hiding_gpus_warns_and_unexplained_mismatch_fails() -> None:
    two = (GPU, dataclasses.replace(GPU, index=1, uuid="GPU-2"))
    hidden = diagnose(system(two, cvd="0"))
    assert by_id(hidden, "gpu.visibility")[0].status is Status.WARN
    mismatch = diagnose(system(two))
    assert by_id(mismatch, "gpu.visibility")[0].status is Status.FAIL


def test_a_crashing_check_becomes_a_finding_and_others_still_run() -> None:
    def boom(_: SystemInfo) -> list[Finding]:
        raise RuntimeError("bug")

    def fine(_: SystemInfo) -> list[Finding]:
        return [Finding("fine", Status.PASS, "ok")]

    findings = run_checks(system(), [Check("boom", "b", boom), Check("fine", "f", fine)])
    assert [f.id for f in findings] == ["boom", "fine"]
    assert findings[0].status is Status.FAIL and "RuntimeError" in findings[0].summary
    assert exit_code(findings) == 1


def test_no_framework_warns_with_install_command() -> None:
    f = by_id(diagnose(system(torch=None)), "framework.installed")[0]
    assert f.status is Status.WARN and "pip install torch" in f.fix


# -- TensorFlow and JAX builds, LD_LIBRARY_PATH -------------------------------------------

TF_WINDOWS_DETAIL = "TensorFlow 2.10 was the last release with GPU support on native Windows."
TF_WINDOWS_FIX = "use WSL2 (pip install tensorflow[and-cuda] inside it), or tensorflow<2.11"
BUILD_SUMMARY = "{} {} does not see the GPU (CPU-only build or missing libraries)"


def others(
    *frameworks: FrameworkInfo, gpu: bool = True, os_name: str = "Linux", ld: str | None = None
) -> list[Finding]:
    from gpuscout.doctor.checks_framework import other_frameworks

    base = system((GPU,) if gpu else (), torch=TORCH)
    return list(
        other_frameworks(
            dataclasses.replace(
                base,
                host=dataclasses.replace(HOST, os_name=os_name),
                frameworks=(TORCH, *frameworks),
                env=EnvVars(ld_library_path=ld),
            )
        )
    )


def tf(
    version: str | None,
    gpu_available: bool | None = None,
    *,
    error: str | None = None,
    extra: dict[str, object] | None = None,
) -> FrameworkInfo:
    return FrameworkInfo(
        "tensorflow", True, version, error, gpu_available=gpu_available, extra=extra or {}
    )


def test_tensorflow_2_11_and_later_on_native_windows_has_no_gpu() -> None:
    fail = Finding(
        "tensorflow.windows",
        Status.FAIL,
        "TensorFlow 2.16.1 has no GPU support on native Windows",
        TF_WINDOWS_DETAIL,
        fix=TF_WINDOWS_FIX,
    )
    assert others(tf("2.16.1"), os_name="Windows") == [fail]
    assert others(tf("2.16.1"), os_name="Windows", gpu=False) == [
        dataclasses.replace(fail, status=Status.WARN)
    ]
    assert [f.id for f in others(tf("2.11"), os_name="Windows")] == ["tensorflow.windows"]
    # 2.10 and a version that cannot be read are judged by their build instead
    assert others(tf("2.10.1", True), os_name="Windows") == [
        Finding("tensorflow.build", Status.PASS, "tensorflow 2.10.1")
    ]
    assert [f.id for f in others(tf(None, False), os_name="Windows")] == ["tensorflow.build"]


def test_a_build_that_does_not_see_the_gpu_warns_with_the_install_command() -> None:
    jax = FrameworkInfo("jax", True, version="0.4.30", gpu_available=False, extra={"note": "n"})
    assert others(jax, tf("2.17.0", False, extra={"note": 3})) == [
        Finding(
            "jax.build",
            Status.WARN,
            BUILD_SUMMARY.format("jax", "0.4.30"),
            "n",
            fix='pip install -U "jax[cuda12]"',
        ),
        Finding(
            "tensorflow.build",
            Status.WARN,
            BUILD_SUMMARY.format("tensorflow", "2.17.0"),
            "",
            fix="pip install tensorflow[and-cuda]",
        ),
    ]
    # without a GPU a CPU build is all there is to have
    assert others(jax, gpu=False) == [Finding("jax.build", Status.PASS, "jax 0.4.30")]


def test_frameworks_that_are_absent_broken_or_hung_are_left_to_other_checks() -> None:
    assert (
        others(
            FrameworkInfo("jax", False),
            tf("2.17.0", False, error="ImportError: libcudart.so.12"),
            FrameworkInfo("tensorflow", True, version="2.17.0", timed_out=True),
        )
        == []
    )


def test_ld_library_path_with_cuda_warns_on_a_gpu_machine() -> None:
    ld = "/opt/CUDNN/lib:/usr/lib"
    assert others(ld=ld) == [
        Finding(
            "env.ld_library_path",
            Status.WARN,
            "LD_LIBRARY_PATH points at CUDA libraries",
            f"LD_LIBRARY_PATH={ld}: pip wheels bundle their own CUDA and cuDNN; a system copy "
            "found first causes 'Loaded runtime CuDNN library ... but source was compiled with'.",
            fix="unset LD_LIBRARY_PATH  # or remove its CUDA/cuDNN entries",
        )
    ]
    assert others(ld="/usr/local/cuda/lib64", gpu=False) == []
    assert others(ld="/usr/lib") == []
