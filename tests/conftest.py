"""Fixtures every test folder shares: the recorded machines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gpuscout._types import SystemInfo
from helpers import machines


@pytest.fixture
def machine_file() -> Callable[[str], Path]:
    """A recorded machine's JSON file by name (h100, no_gpu, cpu_wheel ...)."""
    return machines.path


@pytest.fixture
def recorded() -> Callable[..., SystemInfo]:
    """A recorded machine probed as if it were this one: ``recorded("h100")``."""
    return machines.system
