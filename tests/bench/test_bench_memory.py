"""memory, launch and transfer on the CPU: ok results, positive figures, checks that bite."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from gpuscout._types import Ceiling  # noqa: E402
from gpuscout.bench import launch, memory, transfer  # noqa: E402
from gpuscout.bench.context import (  # noqa: E402
    BenchContext,
    TimingPolicy,
    VerificationError,
)

FAST = TimingPolicy(warmup=1, min_iters=3, min_time_s=0.0, max_time_s=2.0)


def test_host_memory_bandwidth_is_measured() -> None:
    ctx = BenchContext(timing=FAST, ceiling=Ceiling(bandwidth_gbs=1000.0))
    results = memory.run("cpu", True, ctx, array_bytes=4 * 2**20)
    assert [r.name for r in results] == ["memory/copy", "memory/triad"]
    for r, arrays in zip(results, (2, 3), strict=True):
        assert r.status == "ok", r.error
        assert r.unit == "GB/s"
        assert r.figure is not None and r.figure > 0
        assert r.stats is not None
        assert r.extra["bytes_per_iter"] == arrays * 4 * 2**20
        assert r.figure == pytest.approx(r.extra["bytes_per_iter"] / r.stats.median_s / 1e9)
        assert r.peak_fraction == pytest.approx(r.figure / 1000.0)
        assert r.extra["dtype"] == "float64"
        assert r.extra["threads"] == torch.get_num_threads()


def test_memory_check_catches_a_wrong_triad() -> None:
    g = torch.Generator().manual_seed(0)
    b = torch.rand(10_000, dtype=torch.float64, generator=g) + 0.5
    c = torch.rand(10_000, dtype=torch.float64, generator=g) + 0.5
    a = b + memory.TRIAD_SCALAR * c
    memory._verify(torch, "triad", a, b, c, g, 1e-12)
    a[-1] += 1e-6  # the tail range is always checked
    with pytest.raises(VerificationError):
        memory._verify(torch, "triad", a, b, c, g, 1e-12)
    with pytest.raises(VerificationError):
        memory._verify(torch, "copy", torch.zeros_like(b), b, None, g, 0.0)


def test_last_level_cache_from_sysfs(tmp_path: Path) -> None:
    for idx, (level, size) in enumerate([(1, "48K"), (2, "2048K"), (3, "32768K"), (1, "32K")]):
        d = tmp_path / f"index{idx}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "size").write_text(f"{size}\n")
    assert memory.last_level_cache_bytes(tmp_path) == 32 * 2**20
    assert memory.last_level_cache_bytes(tmp_path / "missing") == 32 * 2**20  # the default


def test_cpu_arrays_beat_the_cache_but_respect_ram() -> None:
    assert memory.cpu_array_bytes(ram_available_bytes=64 * 2**30) >= 4 * 32 * 2**20
    assert memory.cpu_array_bytes(ram_available_bytes=800 * 2**20) == 100 * 2**20


def test_cpu_dispatch_overhead_is_measured() -> None:
    (r,) = launch.run("cpu", True, BenchContext(timing=FAST))
    assert r.name == "launch/dispatch"
    assert r.status == "ok", r.error
    assert r.unit == "us"
    assert r.figure is not None and 0 < r.figure < 10_000
    assert r.stats is not None
    assert r.figure == pytest.approx(r.stats.median_s / launch.BATCH * 1e6)


def test_launch_check_counts_every_op() -> None:
    x = torch.zeros(1)
    launch._check_batch(torch, x, "cpu")  # passes: BATCH adds give BATCH

    class Lossy:
        def __init__(self) -> None:
            self.t = torch.zeros(1)

        def zero_(self) -> None:
            self.t.zero_()

        def add_(self, v: float) -> None:  # drops every tenth launch
            self.n = getattr(self, "n", 0) + 1
            if self.n % 10:
                self.t.add_(v)

        def item(self) -> float:
            return float(self.t.item())

    with pytest.raises(VerificationError):
        launch._check_batch(torch, Lossy(), "cpu")


def test_transfer_is_skipped_on_the_cpu() -> None:
    (r,) = transfer.run("cpu", True)
    assert r.status == "skipped"
    assert r.error and "GPU" in r.error


def test_transfer_host_data_is_varied() -> None:
    g = torch.Generator().manual_seed(0)
    data = transfer._host_data(torch, 3 * 2**20, False, g)
    rows = data.view(3, -1)
    assert not torch.equal(rows[0], rows[1])  # each MiB is shifted: a misplaced chunk shows
    assert int(data.unique().numel()) > 200
    assert transfer.size_label(2**30) == "1GiB"
    assert transfer.size_label(16 * 2**20) == "16MiB"
