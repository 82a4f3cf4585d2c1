"""Every recorded machine through the real probe (fake NVML, fake framework runner) and the
doctor: the expected findings, the exit code, and the output against a golden file.

Regenerate the golden files after an intended change with:
    GPUSCOUT_UPDATE_GOLDEN=1 pytest tests/doctor/test_doctor_machines.py
"""

from __future__ import annotations

import os

import pytest
from rich.console import Console

from gpuscout._types import Finding, Status
from gpuscout.doctor import diagnose, exit_code
from gpuscout.report.doctor_text import findings_view, machine_summary
from helpers import GOLDEN as _GOLDEN
from helpers import machines

GOLDEN = _GOLDEN / "doctor"

# machine -> the (check id, status) pairs it must raise, and the doctor's exit code.
EXPECTED: dict[str, tuple[set[tuple[str, Status]], int]] = {
    "no_gpu": ({("nvidia.driver", Status.WARN)}, 0),
    "h100": (set(), 0),
    "old_driver": ({("torch.driver", Status.WARN), ("torch.kernel", Status.FAIL)}, 1),
    "cpu_wheel": ({("torch.build", Status.FAIL)}, 1),
    "sm120_old_wheel": ({("torch.arch", Status.FAIL), ("torch.kernel", Status.FAIL)}, 1),
    "pcie_downtrained": ({("gpu.pcie", Status.FAIL)}, 1),
    "mig": ({("gpu.mig", Status.WARN), ("torch.kernel", Status.FAIL)}, 1),
    "nvml_init_fails": ({("nvidia.driver", Status.FAIL)}, 1),
    "gpu_lost": ({("gpu.lost", Status.FAIL), ("torch.kernel", Status.FAIL)}, 1),
    "throttled": ({("gpu.throttle", Status.FAIL), ("gpu.memory", Status.WARN)}, 1),
    "ecc_errors": ({("gpu.ecc", Status.FAIL)}, 1),
    "busy": ({("gpu.memory", Status.WARN)}, 0),
    "cvd_hides": ({("gpu.visibility", Status.WARN)}, 0),
}


def _problems(findings: list[Finding]) -> set[tuple[str, Status]]:
    return {(f.id, f.status) for f in findings if f.status in (Status.WARN, Status.FAIL)}


def render(name: str) -> str:
    system = machines.system(name)
    console = Console(width=100, record=True, color_system=None, force_terminal=False)
    console.print(machine_summary(system))
    console.print()
    console.print(findings_view(diagnose(system)))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def test_every_recorded_machine_has_an_expectation() -> None:
    assert set(machines.NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_findings_and_exit_code(name: str) -> None:
    findings = diagnose(machines.system(name))
    expected, code = EXPECTED[name]
    assert _problems(findings) == expected
    assert exit_code(findings) == code
    for f in findings:
        if f.status in (Status.WARN, Status.FAIL):
            assert f.fix, f"{f.id} on {name} has no fix to paste"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_output(name: str) -> None:
    path = GOLDEN / f"{name}.txt"
    text = render(name)
    if os.environ.get("GPUSCOUT_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def test_h100_is_reported_as_the_issue_requires() -> None:
    text = render("h100")
    for needle in (
        "H100 80GB HBM3",
        "80 GiB",
        "cc 9.0",
        "PCIe gen",
        "580.",
        "CUDA up to 13.",
        "h100-sxm5-80gb",
        "CUDA 13.0",
        "sm_90",
    ):
        assert needle in text, needle


def test_cpu_wheel_fix_names_a_cuda_wheel_the_driver_runs() -> None:
    findings = diagnose(machines.system("cpu_wheel"))
    fix = next(f.fix for f in findings if f.id == "torch.build")
    assert "download.pytorch.org/whl/cu" in fix
