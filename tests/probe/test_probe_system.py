"""probe_system over every recorded machine, record/replay round trips, import safety."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpuscout._types import NvmlState, SystemInfo, to_jsonable
from gpuscout.errors import UsageError
from gpuscout.probe import FakeNvml, load_machine, probe_recorded, probe_system
from gpuscout.probe.frameworks import fake_runner_from
from gpuscout.probe.nvml import probe_nvidia
from gpuscout.probe.recorded import nvidia_to_dict, record_machine
from gpuscout.probe.system import env_vars
from helpers import machines

ALL = list(machines.NAMES)
REQUIRED = {
    "no_gpu",
    "h100",
    "old_driver",
    "cpu_wheel",
    "sm120_old_wheel",
    "pcie_downtrained",
    "mig",
    "nvml_init_fails",
    "gpu_lost",
    "throttled",
    "ecc_errors",
    "busy",
    "cvd_hides",
}


def replay(name: str, **kwargs: Any) -> SystemInfo:
    return machines.system(name, **kwargs)


def test_every_named_scenario_is_recorded() -> None:
    assert set(ALL) >= REQUIRED


@pytest.mark.parametrize("name", ALL)
def test_every_recorded_machine_probes_and_serialises(name: str) -> None:
    system = replay(name)
    assert system.host.cpu_model and system.gpuscout_version
    assert system.framework("torch") is not None
    json.dumps(to_jsonable(system))  # everything is plain JSON for --json and the store
    machine = load_machine(machines.path(name))
    assert machine.name == name and machine.description


@pytest.mark.parametrize("name", ALL)
def test_record_replay_round_trip(name: str) -> None:
    data = machines.data(name)
    first = probe_nvidia(FakeNvml(data.get("nvml") or {"init_error": "LIBRARY_NOT_FOUND"}))
    again = probe_nvidia(FakeNvml(nvidia_to_dict(first)))
    assert again == first


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["devices"][0].update(handle_error="NO_PERMISSION"),
        lambda d: d["devices"][0].update(lost_at="processes"),
        lambda d: d["devices"][0].update(lost_at="uuid", lost_error="RESET_REQUIRED"),
        lambda d: d["devices"][0]["errors"].update(temperature_c={"code": 999, "message": "odd"}),
        lambda d: d["errors"].update(device_count="UNKNOWN"),
        lambda d: d["errors"].update(driver_version="NOT_SUPPORTED"),
    ],
)
def test_round_trip_of_failures(mutate: Any) -> None:
    data = machines.nvml("h100")
    mutate(data)
    first = probe_nvidia(FakeNvml(data))
    assert first != probe_nvidia(FakeNvml(machines.nvml("h100")))
    assert probe_nvidia(FakeNvml(nvidia_to_dict(first))) == first


def test_scenarios_read_as_described() -> None:
    no_gpu = replay("no_gpu")
    assert no_gpu.nvidia.state is NvmlState.LIBRARY_NOT_FOUND
    torch = no_gpu.framework("torch")
    assert torch is not None and torch.cuda_build is None and torch.version == "2.7.1+cpu"

    h100 = replay("h100")
    (gpu,) = h100.nvidia.gpus
    assert gpu.name == "NVIDIA H100 80GB HBM3" and gpu.compute_capability == (9, 0)
    assert h100.nvidia.driver_version == "580.95.05" and h100.nvidia.cuda_driver_version == 13000
    torch = h100.framework("torch")
    assert torch is not None and torch.cuda_build == "13.0" and torch.kernel_ok is True
    assert torch.arch_list[0] == "sm_75" and "sm_120" in torch.arch_list

    old = replay("old_driver")
    torch = old.framework("torch")
    assert old.nvidia.cuda_driver_version == 12000 and torch is not None
    assert torch.cuda_build == "12.8" and torch.kernel_ok is False
    assert "insufficient" in (torch.kernel_error or "")

    sm120 = replay("sm120_old_wheel")
    torch = sm120.framework("torch")
    assert sm120.nvidia.gpus[0].compute_capability == (12, 0) and torch is not None
    assert "sm_120" not in torch.arch_list and "no kernel image" in (torch.kernel_error or "")

    pcie = replay("pcie_downtrained").nvidia.gpus[0]
    assert (pcie.pcie_gen_current, pcie.pcie_width_current, pcie.pcie_width_max) == (4, 8, 16)

    mig = replay("mig")
    torch = mig.framework("torch")
    assert mig.nvidia.gpus[0].mig_enabled is True and torch is not None
    assert torch.device_count == 0

    assert replay("nvml_init_fails").nvidia.state is NvmlState.VERSION_MISMATCH
    lost = replay("gpu_lost").nvidia.gpus
    assert [g.lost for g in lost] == [False, True]
    assert replay("throttled").nvidia.gpus[0].clock_event_reasons == 0x8 | 0x20
    ecc = replay("ecc_errors").nvidia.gpus[0]
    assert ecc.ecc_uncorrected_volatile and ecc.remapped_rows_pending is True

    cvd = replay("cvd_hides")
    torch = cvd.framework("torch")
    assert len(cvd.nvidia.gpus) == 2 and torch is not None and torch.device_count == 1
    assert cvd.env.cuda_visible_devices == "0"


@pytest.mark.parametrize(
    ("name", "catalog_ids"),
    [
        # NVML's name and memory in each recorded machine file, and the catalog row for it
        ("h100", ["h100-sxm5-80gb"]),  # "NVIDIA H100 80GB HBM3", 85520809984 bytes
        ("mig", ["a100-sxm4-40gb"]),  # "NVIDIA A100-SXM4-40GB": memory tells 40 from 80 GB
        ("busy", ["a100-sxm4-80gb"]),  # "NVIDIA A100-SXM4-80GB"
        ("pcie_downtrained", ["a100-pcie-80gb"]),  # "NVIDIA A100 80GB PCIe"
        ("cpu_wheel", ["rtx-4090"]),  # "NVIDIA GeForce RTX 4090"
        ("cvd_hides", ["rtx-a6000", "rtx-a6000"]),  # two "NVIDIA RTX A6000"
        ("no_gpu", []),
    ],
)
def test_catalog_ids_are_filled_where_the_catalog_knows_the_gpu(
    name: str, catalog_ids: list[str]
) -> None:
    assert [g.catalog_id for g in replay(name).nvidia.gpus] == catalog_ids


def test_a_gpu_the_catalog_does_not_know_has_no_catalog_id() -> None:
    data = machines.data("h100")
    data["nvml"]["devices"][0]["name"] = "NVIDIA Imaginary X1 12GB"
    (gpu,) = probe_recorded(data).nvidia.gpus
    assert gpu.name == "NVIDIA Imaginary X1 12GB" and gpu.catalog_id is None


def test_user_memory_figures_apply_to_a_recorded_host() -> None:
    system = replay("h100", mem_mts=4800, mem_channels=8)
    assert system.host.mem_bandwidth_theoretical_gbs == pytest.approx(307.2)
    assert "mem_mts" not in system.host.unavailable
    with pytest.raises(UsageError):
        replay("h100", mem_mts=-1)


def test_probe_system_with_every_seam_injected() -> None:
    data = machines.data("busy")
    machine = load_machine(data)
    system = probe_system(
        nvml=FakeNvml(data["nvml"]),
        framework_runner=fake_runner_from(data),
        host=machine.host,
        environ={"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "HSA_OVERRIDE_GFX_VERSION": "10.3.0"},
        frameworks=("torch",),
    )
    assert [f.name for f in system.frameworks] == ["torch"]
    assert system.env.cuda_device_order == "PCI_BUS_ID"
    assert system.env.hsa_override_gfx_version == "10.3.0"
    assert system.env.cuda_visible_devices is None
    assert env_vars({"LD_LIBRARY_PATH": "/usr/local/cuda/lib64"}).ld_library_path == (
        "/usr/local/cuda/lib64"
    )


def test_bad_machine_files_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_machine(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="cannot read"):
        load_machine(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(UsageError, match="one JSON object"):
        load_machine(bad)
    with pytest.raises(UsageError, match="newer"):
        load_machine({"format": 99})
    with pytest.raises(UsageError, match="malformed"):
        load_machine({"nvml": {"init_error": "NOT_A_CODE"}}).probe(frameworks=())


def test_record_machine_captures_and_replays() -> None:
    data = machines.data("gpu_lost")
    source = load_machine(data)
    recorded = record_machine(
        nvml=FakeNvml(data["nvml"]),
        runner=fake_runner_from(data),
        host=source.host,
        environ={"CUDA_VISIBLE_DEVICES": "0,1", "HOME": "/root"},
        frameworks=("torch", "jax"),
    )
    assert recorded["environ"] == {"CUDA_VISIBLE_DEVICES": "0,1"}  # nothing private
    json.dumps(recorded)
    original, replayed = source.probe(), probe_recorded(recorded)
    assert replayed.nvidia == original.nvidia
    assert replayed.host == original.host
    assert replayed.frameworks == original.frameworks


def test_record_this_machine() -> None:
    recorded = record_machine(frameworks=())
    system = probe_recorded(recorded, frameworks=())
    assert system.host.cpu_model == recorded["host"]["cpu_model"]
    assert system.nvidia.state.value in {s.value for s in NvmlState}


def test_importing_the_probe_loads_nothing_heavy() -> None:
    code = (
        "import sys, gpuscout.probe, gpuscout.probe.nvml, gpuscout.probe.recorded\n"
        "heavy = [m for m in ('torch', 'pynvml', 'cpuinfo', 'tensorflow', 'jax') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""
