"""Scaling points and the scaling table inside this test process, on a one-rank Gloo
group: what a point reports for one process, and where FSDP puts the model."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpuscout._types import Result
from gpuscout.cli.dist import render
from gpuscout.dist import scaling, scaling_points
from gpuscout.dist.job import DistPlan, to_results
from gpuscout.dist.rank import RankContext
from gpuscout.dist.torchrun import LaunchSpec

torch = pytest.importorskip("torch")


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[RankContext]:
    """Rank 0 of a one-rank Gloo group in this process (a file rendezvous: no port)."""
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    threads = torch.get_num_threads()
    try:
        yield RankContext(0, 1, 0, 1, tmp_path)
    finally:
        dist.destroy_process_group()
        torch.set_num_threads(threads)


def test_one_process_reports_no_communication_share(ctx: RankContext) -> None:
    """With one process nothing is exchanged: the step without DDP's gradient sync is
    faster only by DDP's bookkeeping and noise, which is not a communication cost."""
    s = scaling.settings("cnn", gpu=False, quick=True, overrides={})
    point = scaling._point(ctx, "cnn", 1, None, s, True)
    assert point["status"] == "ok", point
    assert point["comm_share"] is None and point["step_time_local_s"] is None
    assert point["throughput"] == pytest.approx(s["batch"] / point["step_time_s"])
    assert point["stats"]["n"] == s["steps"] and math.isfinite(point["loss"])


def test_fsdp_mesh_follows_the_rank_device_not_the_default_accelerator(
    ctx: RankContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a GPU machine running CPU ranks (--device cpu): fully_shard's default mesh
    # would be built on CUDA.
    monkeypatch.setattr(torch._C, "_get_accelerator", lambda: torch.device("cuda"))
    s = scaling.settings("llm", gpu=False, quick=True, overrides={})
    point = scaling_points.FsdpPoint(ctx, "llm", s, None)
    point.step()
    assert {p.device.type for p in point.model.parameters()} == {"cpu"}
    assert math.isfinite(float(point.last))


def _scaling_point(k: int, share: float | None) -> dict[str, Any]:
    return {
        "workload": "cnn",
        "parallel": "ddp",
        "processes": k,
        "model": "resnet-tiny",
        "per_rank_batch": 8,
        "throughput": 1000.0 * k,
        "step_time_s": 0.008,
        "comm_share": share,
        "efficiency": 1.0,
        "status": "ok",
    }


def test_the_scaling_table_says_why_one_process_has_no_share(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    p = DistPlan(spec=LaunchSpec(nproc_per_node=2), backend="gloo", device="cpu")
    value = {"collectives": [], "scaling": [_scaling_point(1, None), _scaling_point(2, 0.25)]}
    results: list[Result] = to_results(value, p)
    render(results, p.summary())
    out = capsys.readouterr().out
    rows = {line.split("│")[2].strip(): line for line in out.splitlines() if "cnn (ddp)" in line}
    assert "n/a" in rows["1"] and "25%" in rows["2"]
    # The caption wraps at the table's width: compare its words.
    assert "n/a on 1 process, where nothing is exchanged" in " ".join(out.split())


def test_the_ddp_trial_is_freed_before_the_point_is_rebuilt(
    ctx: RankContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trial step's model, optimizer state and batch are gone (no reference left, the
    reference cycles collected) when the timed replica is built and wrapped in DDP: on a
    GPU both copies would otherwise be resident at once."""
    import weakref

    trials: list[weakref.ref[Any]] = []
    alive_at_wrap: list[bool] = []
    trial, wrap = scaling_points.DdpPoint.trial, scaling_points.DdpPoint.wrap

    def spy_trial(self: scaling_points.DdpPoint) -> None:
        trials.extend([weakref.ref(self.wl), weakref.ref(self.wl.opt)])
        trial(self)

    def spy_wrap(self: scaling_points.DdpPoint, group: Any) -> scaling_points.DdpPoint:
        alive_at_wrap.extend(r() is not None for r in trials)
        return wrap(self, group)

    monkeypatch.setattr(scaling_points.DdpPoint, "trial", spy_trial)
    monkeypatch.setattr(scaling_points.DdpPoint, "wrap", spy_wrap)
    s = scaling.settings("cnn", gpu=False, quick=True, overrides={})
    assert scaling._point(ctx, "cnn", 1, None, s, True)["status"] == "ok"
    assert alive_at_wrap == [False, False]
