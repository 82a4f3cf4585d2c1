"""The profiler-overhead check runs both loops and leaves torch as it found it."""

from __future__ import annotations

import pytest

from gpuscout.validate.profile_overhead import overhead

torch = pytest.importorskip("torch")


def test_one_block_of_each_side_and_the_hooks_are_gone_after() -> None:
    to, item = torch.Tensor.to, torch.Tensor.item
    row = overhead(torch, "mlp", "cpu", blocks=1)
    assert row["plain_median_s"] > 0 and row["profiled_median_s"] > 0
    assert len(row["plain_blocks_s"]) == len(row["profiled_blocks_s"]) == 1
    ratio = row["profiled_blocks_s"][0] / row["plain_blocks_s"][0]  # one pair: its ratio
    assert row["overhead"] == row["overhead_p10"] == row["overhead_p90"] == pytest.approx(ratio - 1)
    assert torch.Tensor.to is to and torch.Tensor.item is item  # uninstalled
