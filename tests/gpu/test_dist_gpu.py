"""`bench dist` on a real CUDA GPU: the single-GPU NCCL path, and two ranks sharing one
GPU (gloo moving CUDA tensors, since NCCL will not put two ranks on one device). Every
collective is verified inside the ranks; no speed is asserted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

from gpuscout.dist import job as dist  # noqa: E402
from gpuscout.errors import UsageError  # noqa: E402


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))


def test_single_gpu_nccl_collectives_and_scaling(tmp_path: Path) -> None:
    p = dist.plan(
        nproc_per_node=1,
        backend="nccl",
        quick=True,
        max_size="64M",
        workloads="cnn,llm",
        timeout_s=540,
        environ={},
    )
    assert p.device == "cuda"
    run = dist.run_dist(p, work_dir=tmp_path / "job")
    assert run.has_rank0 and run.results
    assert all(r.status == "ok" for r in run.results), [(r.name, r.error) for r in run.results]
    by_op = {r.extra["op"]: r for r in run.results if "op" in r.extra}
    assert by_op["all_reduce"].figure == 0.0  # one rank: nothing crosses a link (nccl-tests)
    assert by_op["broadcast"].figure == pytest.approx(by_op["broadcast"].extra["algbw_gbs"])
    assert all(r.extra.get("clock") == "cuda_events" for r in run.results)
    one = [r for r in run.results if r.name.startswith("dist/scaling/")]
    assert {r.extra["scaled_workload"] for r in one} == {"cnn", "llm"}
    assert all(r.extra["efficiency"] == pytest.approx(1.0) for r in one)
    assert all(r.extra["comm_share"] is None for r in one)  # one GPU exchanges nothing
    assert run.summary["ranks"][0]["device"] == "cuda:0"
    run_id = dist.save(run, db=tmp_path / "r.db")
    assert run_id is not None


def test_two_ranks_share_one_gpu_through_gloo(tmp_path: Path) -> None:
    p = dist.plan(
        nproc_per_node=2,
        backend="gloo",
        device="cuda",
        quick=True,
        max_size="16M",
        workloads="cnn",
        timeout_s=540,
        environ={},
    )
    run = dist.run_dist(p, work_dir=tmp_path / "job")
    assert all(r.status == "ok" for r in run.results), [(r.name, r.error) for r in run.results]
    devices = [str(d["device"]) for d in run.summary["ranks"]]
    assert len(devices) == 2 and all(d.startswith("cuda:") for d in devices)
    assert run.summary["backend"] == "gloo" and run.summary["device"] == "cuda"
    scaling = {r.extra["processes"]: r for r in run.results if r.name.startswith("dist/scaling/")}
    assert set(scaling) == {1, 2}
    assert 0.0 <= scaling[2].extra["comm_share"] < 1.0


@pytest.mark.skipif(
    torch.cuda.device_count() < 2, reason="needs two CUDA GPUs (NCCL puts one rank per GPU)"
)
def test_two_ranks_on_two_gpus_through_nccl(tmp_path: Path) -> None:
    """The multi-GPU path a one-GPU machine cannot take: a rank per GPU, NCCL between."""
    p = dist.plan(
        nproc_per_node=2,
        backend="nccl",
        only="collectives",
        ops="all_reduce",
        max_size="16M",
        quick=True,
        timeout_s=300,
        environ={},
    )
    run = dist.run_dist(p, work_dir=tmp_path / "job")
    assert all(r.status == "ok" for r in run.results), [(r.name, r.error) for r in run.results]
    devices = sorted(str(d["device"]) for d in run.summary["ranks"])
    assert devices == ["cuda:0", "cuda:1"]  # one GPU each, not shared
    reduces = [r for r in run.results if r.extra.get("op") == "all_reduce"]
    assert reduces and all(r.figure is not None and r.figure > 0 for r in reduces)


def test_nccl_with_more_ranks_than_gpus(tmp_path: Path) -> None:
    """plan() refuses it up front; what NCCL itself does is checked here, not assumed."""
    if torch.cuda.device_count() > 1:
        pytest.skip("more than one GPU: two ranks do not have to share")
    with pytest.raises(UsageError, match="NCCL will not put two ranks on one GPU"):
        dist.plan(nproc_per_node=2, backend="nccl", environ={})
    p = dist.plan(
        nproc_per_node=1,
        backend="nccl",
        only="collectives",
        ops="all_reduce",
        max_size="4K",
        quick=True,
        timeout_s=120,
        environ={},
    )
    p = dataclasses.replace(p, spec=dataclasses.replace(p.spec, nproc_per_node=2))
    try:
        dist.run_dist(p, work_dir=tmp_path / "job")
    except dist.DistJobError as exc:
        assert "rank" in exc.message
        pytest.skip(f"recorded: NCCL refused two ranks on one GPU: {exc.message}")
    pytest.fail("NCCL ran two ranks on one GPU: plan()'s guard is stricter than NCCL here")
