"""The tables two commands print: the micro-benchmarks (`bench micro`, `run`) and the
workloads (`bench workload`, `run`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from gpuscout._types import Result
from gpuscout.cli._common import console

# -- micro-benchmarks --------------------------------------------------------------------


def _micro_figure(r: Result) -> str:
    if r.figure is None:
        return "—"
    if r.unit in ("TFLOPS", "TOPS"):
        return f"{r.figure:,.3g} {r.unit}" if r.figure < 100 else f"{r.figure:,.0f} {r.unit}"
    if r.unit == "launches/s":
        return f"{r.figure:,.0f} /s"
    if r.unit == "us":
        return f"{r.figure:,.2f} µs"
    return f"{r.figure:,.1f} {r.unit}"


def _notes(r: Result) -> str:
    why = escape(r.error or "")  # error text may hold "[...]", which Rich reads as markup
    if r.status == "skipped":
        return f"[dim]skipped: {why}[/]"
    if r.status != "ok":
        return f"[red]{r.status}[/]: {why}"
    flags = list(r.extra.get("flags", ()))
    return f"[yellow]{', '.join(flags)}[/]" if flags else ""


def render_micro(results: Sequence[Result]) -> None:
    table = Table(title="Micro-benchmarks", title_justify="left")
    table.add_column("Device")
    table.add_column("Benchmark")
    table.add_column("Result", justify="right")
    table.add_column("% of peak", justify="right")
    table.add_column("Notes")
    for r in results:
        pct = f"{100 * r.peak_fraction:.0f}%" if r.peak_fraction is not None else ""
        table.add_row(r.device, r.name, _micro_figure(r), pct, _notes(r))
    console.print(table)
    sources: dict[str, str] = {}
    for r in results:
        src = r.extra.get("ceiling_source")
        if src and r.device not in sources:
            sources[r.device] = str(src)
    for device, src in sources.items():
        console.print(f"[dim]peak for {device}: {escape(src)}[/]")


# -- workloads ---------------------------------------------------------------------------

Column = tuple[str, Callable[[Result], str]]


def _num(value: Any, fmt: str = "{:.3g}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"


def _mem(value: Any) -> str:
    return "n/a" if value is None else f"{value / 2**30:.2f} GiB"


def _quality(e: Any) -> str:
    if e.get("accuracy") is not None:
        return f"acc {e['accuracy'] * 100:.1f}%"
    return f"loss {e['loss']:.3g}" if e.get("loss") is not None else ""


def _fraction(r: Result) -> str:
    if r.peak_fraction is None:
        return "n/a"
    # "!" marks work that ran faster than its measured ceiling (see the note below).
    return f"{r.peak_fraction * 100:.0f}%" + ("!" if r.extra.get("above_ceiling") else "")


def _peak_mem(r: Result) -> str:
    return _mem(r.extra.get("peak_mem_bytes") or r.extra.get("nvml_peak_mem_bytes"))


def _workload_columns(results: Sequence[Result]) -> list[Column]:
    """The columns someone has a value for: energy and memory are left out on a CPU, so
    the table fits an 80-column terminal."""
    ok = [r.extra for r in results if r.status == "ok"]
    cols: list[Column] = [
        ("result", lambda r: r.name.replace("/reference", "/ref")),
        ("device", lambda r: r.device),
        ("figure", lambda r: _figure(r.figure, r.unit)),
        ("time", lambda r: _num(r.extra.get("time_s"), "{:.2f} s")),
        ("quality", lambda r: _quality(r.extra)),
    ]
    if any(e.get("peak_mem_bytes") or e.get("nvml_peak_mem_bytes") for e in ok):
        cols.append(("peak mem", _peak_mem))
    if any(e.get("energy_j") is not None for e in ok):
        cols.append(("energy", lambda r: _num(r.extra.get("energy_j"), "{:.0f} J")))
    cols += [
        ("TFLOPS", lambda r: _num(r.extra.get("achieved_tflops"))),
        ("% ceil", _fraction),
    ]
    return cols


def render_workloads(results: Sequence[Result]) -> None:
    """One row per result, then where each ceiling came from."""
    cols = _workload_columns(results)
    table = Table(show_header=True, header_style="bold")
    for name, _ in cols:
        table.add_column(name, justify="left" if name in ("result", "device") else "right")
    for r in results:
        if r.status != "ok":
            table.add_row(r.name, r.device, f"[red]{r.status}[/]", "", (r.error or "")[:60])
            continue
        table.add_row(*(fn(r) for _, fn in cols))
    console.print(table)
    sources = sorted(
        {str(r.extra["ceiling_source"]) for r in results if r.extra.get("ceiling_source")}
    )
    for src in sources:
        console.print(f"[dim]ceiling: {escape(src)}[/]")
    if any(r.extra.get("above_ceiling") for r in results):
        console.print(
            "[yellow]! ran faster than the measured ceiling: that ceiling under-measured "
            "(small or noisy micro-benchmark); `gpuscout bench micro` measures it fully[/]"
        )
