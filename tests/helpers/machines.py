"""The recorded machines (tests/fixtures/machines/*.json): hand-written descriptions of
real kinds of machines in the format `gpuscout doctor --record` writes, replayed through
a fake NVML and fake framework probes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpuscout._types import SystemInfo
from helpers import MACHINES

NAMES = tuple(sorted(p.stem for p in MACHINES.glob("*.json")))


def path(name: str) -> Path:
    """The machine's file (a Path)."""
    return MACHINES / f"{name}.json"


def data(name: str) -> dict[str, Any]:
    """The machine's JSON document."""
    doc: dict[str, Any] = json.loads(path(name).read_text())
    return doc


def nvml(name: str) -> dict[str, Any]:
    """The machine's NVML section (what FakeNvml replays)."""
    section: dict[str, Any] = data(name)["nvml"]
    return section


def system(name: str, **kwargs: Any) -> SystemInfo:
    """``probe_system`` over the machine (kwargs as ``probe_recorded``)."""
    from gpuscout.probe.recorded import probe_recorded

    return probe_recorded(path(name), **kwargs)
