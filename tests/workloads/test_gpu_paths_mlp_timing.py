"""What the tuned mlp's ``time_s`` covers on a GPU, checked on the CPU: the CUDA graphs
are captured (with their warm-up steps) before the timed section starts, nothing inside
the section reads a device value back to the host, and the result says what was timed.

The real ``_capture`` runs against test_gpu_paths_cuda_graphs's stand-in for
torch.cuda's graph API (a graph records the aten ops of its block and replays them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from gpuscout.workloads import mlp  # noqa: E402
from gpuscout.workloads.base import WorkloadConfig  # noqa: E402
from gpuscout.workloads.instruments import Instruments, Section  # noqa: E402
from helpers.cuda_graphs import Captures  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _offline_home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GPUSCOUT_OFFLINE", "1")


class HostReads(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Counts reads of a device value by the host (``.item()``, ``float(t)``): on a GPU
    each one waits for every step queued before it."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.count = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        if func.overloadpacket is torch.ops.aten._local_scalar_dense:
            self.count += 1
        return func(*args, **(kwargs or {}))


class WatchedInstruments(Instruments):
    """Real sections, which also note how many graphs existed when one started and how
    many host reads happened inside it."""

    def __init__(self, captures: Captures) -> None:
        super().__init__(CPU)
        self.captures = captures
        self.graphs_at_start: list[int] = []
        self.host_reads: list[int] = []

    @contextlib.contextmanager
    def section(self) -> Iterator[Section]:
        self.graphs_at_start.append(len(self.captures.graphs))
        reads = HostReads()
        with super().section() as sec, reads:
            yield sec
        self.host_reads.append(reads.count)


def _graphed_run(monkeypatch: pytest.MonkeyPatch, inst: Instruments) -> dict[str, Any]:
    real_build = mlp.build

    def build(*args: Any, **kwargs: Any) -> Any:
        wl = real_build(*args, **kwargs)
        for group in wl.opt.param_groups:
            group["capturable"] = True  # what Tuned asks for on a GPU
        wl.graphs = True
        return wl

    monkeypatch.setattr(mlp, "build", build)
    monkeypatch.setattr(mlp, "GRAPH_CHUNK", 4)
    # 11 full batches of 32 and a short one: 4-step graphs, 1-step graphs, an eager step.
    c = WorkloadConfig("mlp", "cpu", "tuned", epochs=2, limit_samples=32 * 11 + 7)
    with inst:
        (result,) = mlp.run(c, inst)
    extra: dict[str, Any] = result["extra"]
    return extra


def test_mlp_graphs_are_captured_before_the_timed_section(
    captures: Captures, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = WatchedInstruments(captures)
    extra = _graphed_run(monkeypatch, inst)
    # Both graphs existed when the one section started, and both replayed inside it.
    assert inst.graphs_at_start == [2]
    assert [g.replays for g in captures.graphs] == [2 * 2, 2 * 3]
    assert extra["cuda_graphs"] is True and extra["graph_capture_s"] > 0
    assert "graph capture and its warm-up steps excluded" in extra["timed"]
    assert extra["timed"].startswith("2 epochs of training steps")


def test_mlp_tuned_epochs_read_nothing_back_inside_the_timed_section(
    captures: Captures, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The epoch losses stay on the device until the section has ended (one
    synchronisation at its end, none per epoch)."""
    inst = WatchedInstruments(captures)
    extra = _graphed_run(monkeypatch, inst)
    assert inst.host_reads == [0]
    assert len(extra["epoch_losses"]) == 2 and all(v > 0 for v in extra["epoch_losses"])


def test_mlp_graphed_run_trains_as_the_eager_run(
    captures: Captures, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Capturing before the section keeps training where it was: the graphed run's epoch
    losses are the eager tuned run's (same weights, Adam state and batches)."""
    c = WorkloadConfig("mlp", "cpu", "tuned", epochs=2, limit_samples=32 * 11 + 7)
    with Instruments(CPU) as plain:
        (eager,) = mlp.run(c, plain)
    graphed = _graphed_run(monkeypatch, Instruments(CPU))
    # Exactly: the graph replays the same aten ops on the same values in the same order.
    assert graphed["epoch_losses"] == eager["extra"]["epoch_losses"]
    assert eager["extra"]["cuda_graphs"] is False
    assert "first steps' one-time setup included" in eager["extra"]["timed"]


def test_mlp_reference_reports_what_it_timed() -> None:
    c = WorkloadConfig("mlp", "cpu", "reference", epochs=1, limit_samples=100)
    with Instruments(CPU) as inst:
        (result,) = mlp.run(c, inst)
    assert result["extra"]["timed"].startswith("1 epoch of training steps")
