"""Host probe over a fake file-system root, a fake environment and fake cpuinfo."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from gpuscout.errors import UsageError
from gpuscout.probe.host import normalise_isa, probe_host

XEON_SPR = {
    "brand_raw": "Intel(R) Xeon(R) Platinum 8480+",
    "arch_string_raw": "x86_64",
    "hz_advertised": [2000000000, 0],
    "flags": [
        "sse4_2",
        "avx",
        "avx2",
        "fma",
        "avx512f",
        "avx512_bf16",
        "avx512_vnni",
        "amx_tile",
        "amx_bf16",
        "amx_int8",
        "avx512bw",
    ],
}


def _root(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_bare_host_reads_cpuinfo_and_os_release(tmp_path: Path) -> None:
    root = _root(tmp_path, {"etc/os-release": 'NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.5 LTS"\n'})
    host = probe_host(root=root, environ={}, cpu_info=XEON_SPR)
    assert host.cpu_model == "Intel(R) Xeon(R) Platinum 8480+"
    assert host.arch == "x86_64"
    assert host.base_clock_mhz == pytest.approx(2000.0)
    assert host.isa == (
        "avx",
        "avx2",
        "fma",
        "avx512f",
        "avx512_bf16",
        "avx512_vnni",
        "amx_tile",
        "amx_bf16",
        "amx_int8",
    )
    assert host.os_pretty == "Ubuntu 22.04.5 LTS"
    assert host.container is None and host.wsl is False
    assert host.logical_cores is not None and host.logical_cores >= 1
    assert host.ram_total_bytes is not None and host.ram_total_bytes > 0
    assert host.python_version.count(".") == 2


def test_memory_bandwidth_from_user_figures(tmp_path: Path) -> None:
    host = probe_host(2933, 4, root=tmp_path, environ={}, cpu_info=XEON_SPR)
    assert host.mem_mts == 2933 and host.mem_channels == 4
    assert host.mem_bandwidth_theoretical_gbs == pytest.approx(93.856)
    assert round(host.mem_bandwidth_theoretical_gbs or 0, 1) == 93.9
    assert "mem_mts" not in host.unavailable


def test_memory_speed_unknown_says_how_to_give_it(tmp_path: Path) -> None:
    host = probe_host(root=tmp_path, environ={}, cpu_info=XEON_SPR)
    assert host.mem_mts is None and host.mem_bandwidth_theoretical_gbs is None
    assert "--mem-mts" in host.unavailable["mem_mts"]
    assert "--mem-channels" in host.unavailable["mem_channels"]


@pytest.mark.parametrize("bad", [0, -3])
def test_impossible_memory_figures_are_usage_errors(tmp_path: Path, bad: int) -> None:
    with pytest.raises(UsageError, match="--mem-mts"):
        probe_host(bad, 4, root=tmp_path, environ={}, cpu_info=XEON_SPR)
    with pytest.raises(UsageError, match="--mem-channels"):
        probe_host(3200, bad, root=tmp_path, environ={}, cpu_info=XEON_SPR)


@pytest.mark.parametrize(
    ("files", "environ", "expected"),
    [
        ({".dockerenv": ""}, {}, "docker"),
        ({"run/.containerenv": ""}, {}, "podman"),
        ({}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, "kubernetes"),
        ({"proc/1/cgroup": "0::/kubepods/besteffort/pod1234/abcd\n"}, {}, "kubernetes"),
        ({"proc/1/cgroup": "12:memory:/docker/3f2a9c\n"}, {}, "docker"),
        ({"proc/1/cgroup": "0::/lxc/ct101\n"}, {}, "lxc"),
        ({"proc/1/cgroup": "0::/init.scope\n"}, {"container": "systemd-nspawn"}, "systemd-nspawn"),
        ({"proc/1/cgroup": "0::/init.scope\n"}, {}, None),
    ],
)
def test_container_detection(
    tmp_path: Path, files: dict[str, str], environ: dict[str, str], expected: str | None
) -> None:
    host = probe_host(root=_root(tmp_path, files), environ=environ, cpu_info=XEON_SPR)
    assert host.container == expected


@pytest.mark.parametrize(
    ("files", "environ", "expected"),
    [
        ({}, {"WSL_DISTRO_NAME": "Ubuntu"}, True),
        ({"proc/version": "Linux version 5.15.167.4-microsoft-standard-WSL2 (gcc)"}, {}, True),
        ({"proc/version": "Linux version 6.8.0-45-generic (buildd@lcy02)"}, {}, False),
    ],
)
def test_wsl_detection(
    tmp_path: Path, files: dict[str, str], environ: dict[str, str], expected: bool
) -> None:
    host = probe_host(root=_root(tmp_path, files), environ=environ, cpu_info=XEON_SPR)
    assert host.wsl is expected


def test_isa_spellings_are_normalised() -> None:
    # py-cpuinfo's CPUID path drops the underscores that Linux's /proc/cpuinfo keeps.
    assert normalise_isa(["avx512bf16", "AVX512VNNI", "fma3", "amxtile"]) == (
        "fma",
        "avx512_bf16",
        "avx512_vnni",
        "amx_tile",
    )
    assert normalise_isa(["sse2", "sse4_2"]) == ()
    assert normalise_isa(["asimd", "sve", "fp"]) == ("neon", "sve")
    assert normalise_isa([], arch="aarch64") == ("neon",)


def test_arm_host_falls_back_to_proc_cpuinfo_features(tmp_path: Path) -> None:
    root = _root(
        tmp_path,
        {"proc/cpuinfo": "processor\t: 0\nFeatures\t: fp asimd evtstrm aes sve sve2\n"},
    )
    cpu = {"arch_string_raw": "aarch64", "brand_raw": "Neoverse-V2", "flags": []}
    host = probe_host(root=root, environ={}, cpu_info=cpu)
    assert host.arch == "aarch64"
    assert host.isa == ("neon", "sve")
    assert host.unavailable["base_clock_mhz"]


def test_x86_flags_from_proc_cpuinfo_when_cpuinfo_has_none(tmp_path: Path) -> None:
    root = _root(
        tmp_path,
        {"proc/cpuinfo": "model name\t: AMD EPYC 7763\nflags\t\t: fpu sse2 avx avx2 fma\n"},
    )
    host = probe_host(root=root, environ={}, cpu_info={"arch_string_raw": "x86_64"})
    assert host.cpu_model == "AMD EPYC 7763"
    assert host.isa == ("avx", "avx2", "fma")


GIB = 1024**3


class FakePsutil:
    """The three psutil calls the probe makes, answering with given figures."""

    def __init__(
        self, total: int = 64 * GIB, available: int = 40 * GIB, fail: str | None = None
    ) -> None:
        self.total, self.available, self.fail = total, available, fail

    def cpu_count(self, logical: bool = True) -> int:
        return 16 if logical else 8

    def virtual_memory(self) -> SimpleNamespace:
        if self.fail:
            raise RuntimeError(self.fail)
        return SimpleNamespace(total=self.total, available=self.available)

    def cpu_freq(self) -> SimpleNamespace:
        return SimpleNamespace(current=2400.0, min=800.0, max=3500.0)


V2 = "sys/fs/cgroup/memory.max"
V1 = "sys/fs/cgroup/memory/memory.limit_in_bytes"


@pytest.mark.parametrize(
    ("cgroup", "ram", "expected"),
    [
        # (cgroup files, psutil's (total, available), the probe's (total, available))
        ({}, (64 * GIB, 40 * GIB), (64 * GIB, 40 * GIB)),
        ({V2: f"{8 * GIB}\n"}, (64 * GIB, 40 * GIB), (8 * GIB, 8 * GIB)),
        ({V2: f"{8 * GIB}\n"}, (64 * GIB, 5 * GIB), (8 * GIB, 5 * GIB)),
        ({V2: "max\n"}, (64 * GIB, 40 * GIB), (64 * GIB, 40 * GIB)),
        ({V2: f"{128 * GIB}\n"}, (64 * GIB, 40 * GIB), (64 * GIB, 40 * GIB)),  # above the RAM
        ({V1: f"{16 * GIB}\n"}, (64 * GIB, 40 * GIB), (16 * GIB, 16 * GIB)),
        ({V1: "9223372036854771712\n"}, (64 * GIB, 40 * GIB), (64 * GIB, 40 * GIB)),  # v1: none
        ({V1: f"{2**60}\n"}, (2**61, 40 * GIB), (2**61, 40 * GIB)),  # 2**60 and up: none
        ({V2: "max\n", V1: f"{4 * GIB}\n"}, (64 * GIB, 40 * GIB), (4 * GIB, 4 * GIB)),
        ({V2: f"{2 * GIB}\n", V1: f"{4 * GIB}\n"}, (64 * GIB, 40 * GIB), (2 * GIB, 2 * GIB)),
    ],
)
def test_container_memory_limit_caps_ram(
    tmp_path: Path,
    cgroup: dict[str, str],
    ram: tuple[int, int],
    expected: tuple[int, int],
) -> None:
    total, available = ram
    host = probe_host(
        root=_root(tmp_path, cgroup),
        environ={},
        cpu_info=XEON_SPR,
        psutil=FakePsutil(total, available),
    )
    assert (host.ram_total_bytes, host.ram_available_bytes) == expected
    assert (host.physical_cores, host.logical_cores, host.max_clock_mhz) == (8, 16, 3500.0)
    assert "ram_total_bytes" not in host.unavailable


def test_when_psutil_fails_ram_is_unavailable_and_says_why(tmp_path: Path) -> None:
    root = _root(tmp_path, {V2: f"{8 * GIB}\n"})
    host = probe_host(
        root=root, environ={}, cpu_info=XEON_SPR, psutil=FakePsutil(fail="no /proc/meminfo")
    )
    assert (host.ram_total_bytes, host.ram_available_bytes) == (None, None)
    assert (host.physical_cores, host.logical_cores) == (8, 16)  # counted before it failed
    assert host.unavailable["ram_total_bytes"] == "psutil failed: no /proc/meminfo"


def test_real_host_probe_runs() -> None:
    host = probe_host()  # this machine, py-cpuinfo included
    assert host.cpu_model and host.arch and host.os_name
    assert host.logical_cores is not None and host.logical_cores >= 1
