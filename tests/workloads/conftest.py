"""Fixtures of the workload tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from helpers.cuda_graphs import Captures


@pytest.fixture
def captures(monkeypatch: pytest.MonkeyPatch) -> Captures:
    """torch.cuda's graph and stream API replaced by the CPU stand-ins
    (helpers/cuda_graphs.py); torch is imported only by the tests that ask for it."""
    from helpers.cuda_graphs import install

    return install(monkeypatch)
