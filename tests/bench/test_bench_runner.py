"""Benchmark and device names, the runner's isolation, and the import-cost promise."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from gpuscout._types import Ceiling
from gpuscout.bench import benchmarks, runner
from gpuscout.bench.context import TimingPolicy
from gpuscout.errors import UnknownNameError, UsageError


def test_registry_lists_the_builtins_in_order() -> None:
    assert benchmarks.names() == ("matmul", "memory", "transfer", "launch")
    assert callable(benchmarks.get("matmul"))


def test_unknown_benchmark_raises_with_suggestion() -> None:
    with pytest.raises(UnknownNameError) as info:
        benchmarks.get("matmull")
    assert info.value.exit_code == 2
    assert info.value.suggestions == ["matmul"]
    assert "matmul" in info.value.hint


def test_registering_a_name_twice_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchmarks, "_REGISTRY", dict(benchmarks._REGISTRY))
    with pytest.raises(ValueError):
        benchmarks.register("matmul")(lambda device, quick, ctx=None: [])


def test_resolve_benchmarks() -> None:
    assert runner.resolve_benchmarks(None) == ["matmul", "memory", "transfer", "launch"]
    assert runner.resolve_benchmarks("launch, matmul") == ["matmul", "launch"]
    assert runner.resolve_benchmarks(["memory"]) == ["memory"]
    with pytest.raises(UnknownNameError):
        runner.resolve_benchmarks("matmul,bogus")


@pytest.mark.parametrize("spec", ["gpu0", "cuda:x", "tpu", "cpu,metal"])
def test_bad_device_words_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError) as info:
        runner.resolve_devices(spec)
    assert "unknown device" in info.value.message
    assert info.value.exit_code == 2


def test_devices_that_are_not_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "available_devices", lambda: ["cpu", "cuda:0"])
    assert runner.resolve_devices(None) == ["cpu", "cuda:0"]
    assert runner.resolve_devices("all") == ["cpu", "cuda:0"]
    assert runner.resolve_devices("cuda") == ["cuda:0"]
    assert runner.resolve_devices("cuda:0,cpu,cuda:0") == ["cuda:0", "cpu"]
    with pytest.raises(UsageError, match="no such device 'cuda:3'"):
        runner.resolve_devices("cuda:3")
    monkeypatch.setattr(runner, "available_devices", lambda: ["cpu"])
    assert runner.resolve_devices("CPU") == ["cpu"]
    with pytest.raises(UsageError, match="no CUDA GPU"):
        runner.resolve_devices("cuda")


def test_the_cpu_alone_asks_nothing_of_the_framework() -> None:
    from gpuscout.probe.devices import resolve_devices

    def boom() -> list[str]:
        raise AssertionError("asked which devices exist")  # importing torch costs seconds

    assert resolve_devices("cpu", boom) == ["cpu"]
    assert resolve_devices("CPU,cpu", boom) == ["cpu"]
    with pytest.raises(AssertionError):
        resolve_devices("cpu,cuda", boom)


def test_run_micro_on_cpu_with_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from gpuscout.bench import context

    monkeypatch.setattr(context, "QUICK_TIMING", TimingPolicy(warmup=0, min_iters=3, min_time_s=0))
    seen: list[tuple[str, int, int]] = []
    results = runner.run_micro(
        "cpu", "launch,transfer", quick=True, progress=lambda *a: seen.append(a)
    )
    assert [(r.name, r.status) for r in results] == [
        ("transfer", "skipped"),
        ("launch/dispatch", "ok"),
    ]
    assert seen[-1] == ("done", 2, 2)
    assert ("cpu launch", 1, 2) in seen
    assert ("cpu launch/dispatch", 1, 2) in seen  # per-case label


def test_a_benchmark_that_crashes_becomes_a_failed_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("torch")

    def boom(device: str, quick: bool, ctx: Any = None) -> list[Any]:
        raise RuntimeError("bug in a benchmark")

    monkeypatch.setattr(benchmarks, "_REGISTRY", {"boom": boom, **benchmarks._REGISTRY})
    results = {r.name: r for r in runner.run_micro("cpu", "boom,launch", quick=True)}
    assert set(results) == {"boom", "launch/dispatch"}
    assert results["boom"].status == "failed"
    assert "bug in a benchmark" in (results["boom"].error or "")
    assert results["launch/dispatch"].status == "ok"  # the suite went on


def test_cpu_ceilings_from_host() -> None:
    import dataclasses

    from gpuscout._types import HostInfo

    host = HostInfo(
        "cpu", "x86_64", 4, 8, 2000.0, 3000.0, ("avx", "avx2", "fma"), None, None,
        "Linux", "6", "Linux", "3.11", None, False, mem_mts=3200, mem_channels=2,
    )  # fmt: skip
    c = runner.cpu_ceilings(host)
    assert c.tflops["fp32"] == pytest.approx(4 * 3e9 * 32 / 1e12)
    assert c.bandwidth_gbs == pytest.approx(51.2)
    assert "4 cores" in c.source
    assert runner.cpu_ceilings(None).tflops == {}
    bare = dataclasses.replace(host, physical_cores=None)
    assert runner.cpu_ceilings(bare).tflops == {}


def test_importing_gpuscout_bench_does_not_import_torch() -> None:
    code = (
        "import sys, gpuscout.bench, gpuscout.timing, gpuscout.cli.bench;"
        "from gpuscout.bench import benchmarks; benchmarks.names();"
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _fake_gpu_world(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """A torch with one GPU whose NVML index is 1 (CUDA_VISIBLE_DEVICES=1), and a catalog."""
    import types

    import gpuscout
    from gpuscout._types import EnvVars, GpuInfo, NvidiaInfo, NvmlState, SystemInfo

    props = types.SimpleNamespace(
        name="NVIDIA H100 80GB HBM3", total_memory=85 * 10**9, uuid="abcd-0001"
    )
    fake_torch = types.SimpleNamespace(
        cuda=types.SimpleNamespace(get_device_properties=lambda i: props)
    )
    gpus = (
        GpuInfo(index=0, name="other", uuid="GPU-ffff-0000"),
        GpuInfo(
            index=1, name=props.name, uuid="GPU-ABCD-0001", pcie_gen_max=5, pcie_width_max=16,
            catalog_id="h100-sxm",
        ),
    )  # fmt: skip
    system = SystemInfo(
        host=None,  # type: ignore[arg-type]
        nvidia=NvidiaInfo(NvmlState.OK, gpus=gpus),
        frameworks=(),
        env=EnvVars(),
        gpuscout_version="0",
    )

    class Spec:
        id = "h100-sxm"
        memory_bandwidth_gbs = 3350.0

        def peak_tflops(self, p: str) -> float | None:
            return {"bf16": 989.0, "fp32": 67.0}.get(p)

    fake_catalog = types.SimpleNamespace(
        find_gpu=lambda gid: Spec() if gid == "h100-sxm" else None,
        match_local_gpu=lambda name, mem: None,
    )
    monkeypatch.setattr(gpuscout, "catalog", fake_catalog, raising=False)
    monkeypatch.setitem(sys.modules, "gpuscout.catalog", fake_catalog)
    return fake_torch, system


def test_gpu_ceilings_and_nvml_index_by_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_torch, system = _fake_gpu_world(monkeypatch)
    c = runner.gpu_ceilings(fake_torch, 0, system)
    assert c.source == "catalog:h100-sxm"
    assert c.tflops == {"bf16": 989.0, "fp32": 67.0}
    assert c.bandwidth_gbs == 3350.0
    assert c.pcie_gbs == pytest.approx(3.938 * 16)
    assert runner.nvml_index(fake_torch, 0, system) == 1  # matched by UUID, not position
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert runner.nvml_index(fake_torch, 0, None) is None  # remapped and unknown: no guess
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert runner.nvml_index(fake_torch, 0, None) == 0


# -- GPU ceilings from the shipped catalog (figures as in catalog/gpus.toml) ------------

H100_PEAKS = {
    "fp64": 66.9,  # the FP64 tensor-core rate
    "fp32": 67.0,
    "tf32": 494.5,
    "fp16": 989.5,
    "bf16": 989.5,
    "fp8": 1979.0,
    "int8": 1979.0,
}


def _one_gpu(torch_name: str, total_memory: int, **nvml: Any) -> tuple[Any, Any]:
    """A torch that sees one GPU, and the probe's record of it (matched by UUID)."""
    import types

    from gpuscout._types import EnvVars, GpuInfo, NvidiaInfo, NvmlState, SystemInfo

    props = types.SimpleNamespace(name=torch_name, total_memory=total_memory, uuid="abcd-0001")
    torch = types.SimpleNamespace(cuda=types.SimpleNamespace(get_device_properties=lambda i: props))
    gpu = GpuInfo(index=0, uuid="GPU-abcd-0001", **nvml)
    system = SystemInfo(
        host=None,  # type: ignore[arg-type]
        nvidia=NvidiaInfo(NvmlState.OK, gpus=(gpu,)),
        frameworks=(),
        env=EnvVars(),
        gpuscout_version="0",
    )
    return torch, system


@pytest.mark.parametrize(
    "nvml",
    [
        {"catalog_id": "h100-sxm5-80gb"},  # the probe matched it already
        {"catalog_id": "h100-retired-id", "name": "NVIDIA H100 80GB HBM3"},  # stale: by name
        {"name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 85520809984},
    ],
)
def test_gpu_ceilings_come_from_the_catalog_row(nvml: dict[str, Any]) -> None:
    torch, system = _one_gpu("NVIDIA H100 80GB HBM3", 85520809984, **nvml)
    c = runner.gpu_ceilings(torch, 0, system)
    assert (c.source, c.tflops, c.bandwidth_gbs) == (
        "catalog:h100-sxm5-80gb",
        H100_PEAKS,
        3350.0,
    )
    assert c.pcie_gbs is None  # the probe read no PCIe link


def test_gpu_ceilings_without_a_probe_match_torch_s_name() -> None:
    torch, _ = _one_gpu("NVIDIA A100-SXM4-80GB", 85899345920)
    c = runner.gpu_ceilings(torch, 0, None)
    assert c.source == "catalog:a100-sxm4-80gb" and c.bandwidth_gbs == 2039.0
    # no fp8 on an A100: the precision is left out, not zero
    assert c.tflops == {
        "fp64": 19.5,
        "fp32": 19.5,
        "tf32": 156.0,
        "fp16": 312.0,
        "bf16": 312.0,
        "int8": 624.0,
    }


@pytest.mark.parametrize(
    ("pcie", "gbs"),
    [
        ({"pcie_gen_max": 4, "pcie_width_max": 8}, 1.969 * 8),
        ({"pcie_gen_max": 9, "pcie_width_max": 16}, None),  # a generation not in the table
        ({"pcie_gen_max": 5}, None),
    ],
)
def test_a_gpu_the_catalog_does_not_know_keeps_its_pcie_figure(
    pcie: dict[str, int], gbs: float | None
) -> None:
    torch, system = _one_gpu("Imaginary GPU 12GB", 12 * 2**30, name="Imaginary GPU 12GB", **pcie)
    c = runner.gpu_ceilings(torch, 0, system)
    assert c == Ceiling(pcie_gbs=gbs, source="Imaginary GPU 12GB: not in the catalog")


def test_nvml_s_name_and_memory_pick_the_row_torch_s_cannot() -> None:
    # NVML names the 10 GB and 12 GB RTX 3080 alike; its memory figure tells them apart
    # (torch's total, here short of 12 GiB, is only the fallback)
    torch, system = _one_gpu(
        "NVIDIA GeForce RTX 3080", 11 * 2**30,
        name="NVIDIA GeForce RTX 3080", memory_total_bytes=12 * 2**30,
    )  # fmt: skip
    assert runner.gpu_ceilings(torch, 0, system).source == "catalog:rtx-3080-12gb"
    torch, _ = _one_gpu("NVIDIA GeForce RTX 3080", 10 * 2**30)
    assert runner.gpu_ceilings(torch, 0, None).source == "catalog:rtx-3080-10gb"
