"""Stored `gpuscout profile` results as report rows: the script, what bounds it, where its
step goes, the fixes and what it would do on other GPUs. Read from the figures stored
with the run, so a report needs neither the script nor the profiler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpuscout._types import Result
from gpuscout.report.document import ProfileRow
from gpuscout.timing.load import HOST_BUSY

PREFIX = "profile/"
# The parts of a step, as bottleneck.Split names them, and as the report says them.
_PARTS = (
    ("data_s", "waiting for data"),
    ("h2d_s", "host-to-device copies"),
    ("compute_s", "arithmetic at peak"),
    ("memory_s", "memory traffic at bandwidth"),
    ("launch_s", "kernel launches"),
    ("other_s", "the rest (Python, framework, kernels below peak)"),
)


def is_profile(r: Result) -> bool:
    return r.name.startswith(PREFIX) and "verdict" in r.extra


def profile_rows(
    results: Sequence[tuple[int, Result]], names: Mapping[str, str]
) -> tuple[ProfileRow, ...]:
    """A row for each profile result (with the id of its run), newest run first."""
    rows = [_row(run_id, r, names) for run_id, r in results if is_profile(r) and r.status == "ok"]
    return tuple(sorted(rows, key=lambda row: -row.run_id))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _row(run_id: int, r: Result, names: Mapping[str, str]) -> ProfileRow:
    e = r.extra
    raw = e.get("split")
    split: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    facts = e.get("device_facts")
    name = facts.get("name") if isinstance(facts, Mapping) else None
    command = e.get("command")
    return ProfileRow(
        script=r.name.removeprefix(PREFIX),
        command=" ".join(str(w) for w in command) if isinstance(command, list) else "",
        run_id=run_id,
        device=r.device,
        device_name=str(name or names.get(r.device, r.device)),
        verdict=str(e.get("verdict")),
        words=str(e.get("words") or ""),
        figure=r.figure,
        unit=r.unit,
        step_s=_num(split.get("step_s")) or 0.0,
        achieved_tflops=_num(e.get("achieved_tflops")),
        fraction=r.peak_fraction,
        parts=tuple((label, v) for key, label in _PARTS if (v := _num(split.get(key))) is not None),
        fixes=tuple(_fixes(e.get("fixes"))),
        warnings=tuple(str(w) for w in e.get("warnings") or ()),
        projections=tuple(_projections(e.get("projections"))),
        disturbed=HOST_BUSY in (e.get("flags") or ()),
    )


def _fixes(raw: Any) -> list[tuple[str, str, float]]:
    out = []
    for f in raw if isinstance(raw, list) else []:
        if isinstance(f, Mapping) and (gain := _num(f.get("speedup"))) is not None:
            out.append((str(f.get("what")), str(f.get("why")), gain))
    return out


def _projections(raw: Any) -> list[tuple[str, float, float | None, str]]:
    out = []
    for p in raw if isinstance(raw, list) else []:
        if isinstance(p, Mapping) and (step := _num(p.get("step_s"))) is not None:
            out.append((str(p.get("gpu_name")), step, _num(p.get("speedup")), str(p.get("bound"))))
    return out
