"""What every jobs test shares: a throwaway data directory, and an in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuscout.store import Store


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))


@pytest.fixture
def memory() -> Iterator[Store]:
    with Store.open(":memory:") as store:
        yield store
