"""``gpuscout profile``: the user's training script observed, what bounds it, what to fix
first, and what it would do on other GPUs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from gpuscout import jobs
from gpuscout.cli._common import DbOpt, JsonOpt, console, err_console, fail_from, print_json
from gpuscout.errors import GpuscoutError
from gpuscout.report.fmt import gib, ratio

if TYPE_CHECKING:  # types only: the job's module loads when the command runs
    from gpuscout.jobs import ProfileOutcome
    from gpuscout.jobs.profiling import MemoryCheck
    from gpuscout.profile.bottleneck import Bottleneck

HELP = (
    "Run your own PyTorch training script observed (no change to it) and say what bounds "
    "it (data loading, Python and launches, arithmetic or memory traffic), the fixes that "
    "matter with their expected gain, and how fast it would run on other GPUs. "
    "Give the script as `gpuscout profile train.py ARGS` or `gpuscout profile -- python "
    "train.py ARGS`; its output, traceback and exit status are its own."
)


def register(app: typer.Typer) -> None:
    app.command(
        "profile",
        help=HELP,
        short_help="Profile your own training script: what bounds it, what to fix.",
        # Everything from the script's name on is the script's: its options included.
        context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
    )(profile_command)


def profile_command(
    command: list[str] = typer.Argument(
        ..., help="The script and its arguments (or python, the script, its arguments).",
        show_default=False, metavar="[--] [python] SCRIPT [ARGS]...",
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1,
        help="Observe this many optimizer steps after the warm-up, then stop the script "
        "(default: the whole run).",
    ),
    warmup: int = typer.Option(3, "--warmup", min=0, help="Optimizer steps not timed."),
    device: str | None = typer.Option(
        None, "--device", help="What the script may use: cpu (no GPU), cuda or cuda:N."
    ),
    gpus: str | None = typer.Option(
        None, "--gpus",
        help="Catalog GPUs to project onto, comma-separated (default: a consumer card, "
        "the A100 and H100 people rent, and an L4).",
    ),
    no_store: bool = typer.Option(False, "--no-store", help="Do not store the run."),
    json_out: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:  # fmt: skip
    targets = tuple(g.strip() for g in gpus.split(",") if g.strip()) if gpus else None
    options = jobs.ProfileOptions(
        command=tuple(command), steps=steps, warmup=warmup, device=device, gpus=targets,
        store=not no_store, stdout_to_stderr=json_out,
    )  # fmt: skip
    try:
        out = jobs.profile(db, options)
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json(out)
    else:
        render(out)
    raise typer.Exit(out.exit_code)


def render(out: ProfileOutcome) -> None:
    """The answer on stderr and stdout: the script's own output came before it."""
    obs = out.observations
    ran = f"exit {out.exit_code}"
    if obs.stopped_by_profiler:
        ran = f"stopped after {obs.steps_seen} steps"
    elif obs.interrupted:
        ran = "interrupted"
    console.print(
        f"\n[bold]profiled[/] {escape(' '.join(out.command))} ({ran}, {out.wall_s:.1f} s)"
    )
    if out.diagnosis is None:
        console.print(f"[yellow]nothing to judge:[/] {escape(out.problem or '')}")
        return
    _verdict(out, out.diagnosis)
    if out.gpu is not None:
        console.print(gpu_line(out.gpu))
    if out.memory is not None:
        console.print(memory_line(out.memory))
    if out.projections:
        _projections(out)
    if out.disturbed:
        console.print(
            f"[yellow]measurements disturbed:[/] other processes used {out.busy_pct:.0f}% of "
            "the CPUs while it ran; profile again on a quieter machine"
        )
    if out.run_id is not None:
        err_console.print(f"[dim]saved as run {out.run_id} (gpuscout show {out.run_id})[/]")


def _verdict(out: ProfileOutcome, found: Bottleneck) -> None:
    s, n = found.split, len(out.observations.window)
    ms = 1e3
    console.print(
        f"on {out.device}: {s.step_s * ms:.3g} ms a step (p10 {s.p10_s * ms:.3g}, "
        f"p90 {s.p90_s * ms:.3g}; {n} steps timed), {found.achieved_tflops:.3g} TFLOPS, "
        f"{found.precision}"
    )
    console.print(f"[bold]{escape(found.words)}[/]")
    console.print(
        f"a step: data {s.data_s * ms:.3g} ms, host-to-device {s.h2d_s * ms:.3g} ms, "
        f"arithmetic at peak {s.compute_s * ms:.3g} ms, memory at bandwidth "
        f"{s.memory_s * ms:.3g} ms, launches {s.launch_s * ms:.3g} ms, the rest "
        f"{s.other_s * ms:.3g} ms"
    )
    for i, fix in enumerate(found.fixes, 1):
        console.print(
            f"  {i}. {escape(fix.what)}: about {ratio(fix.speedup)} the steps per second "
            f"({escape(fix.why)})"
        )
    for warning in found.warnings:
        console.print(f"  [yellow]![/] {escape(warning)}")
    where = f"run {out.ceiling_run}" if out.ceiling_run is not None else "not stored"
    source = out.ceiling.source if out.ceiling is not None else ""
    console.print(f"[dim]ceilings: {escape(source)} ({where})[/]")


def gpu_line(gpu: Mapping[str, Any]) -> str:
    """What NVML saw of the script's GPU while its steps were timed, in one line."""
    if not gpu.get("samples"):
        return f"GPU: not sampled ({gpu.get('error') or 'no NVML reading'})"
    parts = []
    if gpu.get("gpu_util_median_pct") is not None:
        parts.append(f"{gpu['gpu_util_median_pct']:.0f}% busy (median)")
    if gpu.get("sm_clock_median_mhz") is not None:
        parts.append(f"SM clock {gpu['sm_clock_median_mhz']:,.0f} MHz")
    if gpu.get("power_max_w") is not None:
        parts.append(f"{gpu['power_max_w']:.0f} W at most")
    if gpu.get("throttled"):
        parts.append("[yellow]throttled[/] (heat, power brake or hardware slowdown)")
    elif gpu.get("power_capped"):
        parts.append("at its power limit")
    return f"GPU while timed ({gpu['samples']} samples): " + ", ".join(parts or ["no figures"])


def memory_line(m: MemoryCheck) -> str:
    """fit's estimate for the script's model beside the peak it used, in one line."""
    said = f"memory: {escape(m.model)} ({escape(m.request)})"
    if m.estimated_bytes is None:
        return f"{said}: fit cannot estimate it ({escape(m.problem or '')})"
    said += f": fit estimates {gib(m.estimated_bytes)} at the peak"
    if m.measured_bytes is None:
        return said + " (no GPU: nothing measured to compare)"
    ratio_ = m.measured_over_estimated
    return said + f"; it used {gib(m.measured_bytes)} ({ratio_:.2f}x the estimate)"


def _projections(out: ProfileOutcome) -> None:
    table = Table(title="The same script on other GPUs (projected)", title_justify="left")
    # Whether it fits is known only for a model fit recognises: no column of "?"
    fits = any(p.fits is not None for p in out.projections)
    for name in ("GPU", "step", "speedup", "bound", *(("fits",) if fits else ())):
        table.add_column(name, justify="left" if name in ("GPU", "bound") else "right")
    for p in out.projections:
        row = [p.gpu_name, f"{p.step_s * 1e3:.3g} ms", ratio(p.speedup), p.bound]
        if fits:
            row.append({True: "yes", False: "no", None: "?"}[p.fits])
        table.add_row(*row)
    console.print(table)
    for note in out.notes:
        console.print(f"[dim]- {escape(note)}[/]")
