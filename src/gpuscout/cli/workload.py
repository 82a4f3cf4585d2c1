"""`gpuscout bench workload NAME`: real training and inference, tutorial-style vs tuned."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from gpuscout._types import Result
from gpuscout.cli._common import (
    DbOpt,
    JsonOpt,
    console,
    err_console,
    fail_from,
    print_json,
    run_fingerprint,
)
from gpuscout.errors import GpuscoutError

NAME_HELP = "Workload: mlp, cnn, encoder, llm, or all (comma-separated for several)."


def store_results(db: Path | None, results: Sequence[Result], summary: dict[str, Any]) -> int:
    from gpuscout.store import Store

    store = Store.open(db)
    try:
        with store.run("workload", run_fingerprint()) as run:
            run.add_results(results)
            run.summary.update(summary)
            if any(r.status not in ("ok", "skipped") for r in results):
                run.status = "failed"
            return run.id
    finally:
        store.close()


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


def render(results: Sequence[Result]) -> None:
    """One row per result; columns nobody has a value for (energy and memory on a CPU)
    are left out so the table fits an 80-column terminal."""
    from rich.table import Table

    ok = [r.extra for r in results if r.status == "ok"]
    cols: list[tuple[str, Any]] = [
        ("result", lambda r: r.name.replace("/reference", "/ref")),
        ("device", lambda r: r.device),
        ("figure", lambda r: _figure(r.figure, r.unit)),
        ("time", lambda r: _num(r.extra.get("time_s"), "{:.2f} s")),
        ("quality", lambda r: _quality(r.extra)),
    ]
    if any(e.get("peak_mem_bytes") or e.get("nvml_peak_mem_bytes") for e in ok):
        cols.append(
            (
                "peak mem",
                lambda r: _mem(r.extra.get("peak_mem_bytes") or r.extra.get("nvml_peak_mem_bytes")),
            )
        )
    if any(e.get("energy_j") is not None for e in ok):
        cols.append(("energy", lambda r: _num(r.extra.get("energy_j"), "{:.0f} J")))
    cols += [
        ("TFLOPS", lambda r: _num(r.extra.get("achieved_tflops"))),
        ("% ceil", _fraction),
    ]
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


def workload(
    name: str = typer.Argument(..., help=NAME_HELP),
    device: str = typer.Option("all", "--device", help="cpu, cuda, cuda:N or all."),
    impl: str = typer.Option("both", "--impl", help="reference (tutorial-style), tuned or both."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs (mlp: 5)."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Batch size."),
    model: str | None = typer.Option(
        None, "--model", help="resnet50/resnet18 (cnn), bert-base (encoder), llama-1.1b ... (llm)."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", file_okay=False, help="Fashion-MNIST (IDX) or CIFAR-10 (binary) files."
    ),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Timed training steps."),
    seq_len: int | None = typer.Option(None, "--seq-len", min=1, help="Sequence/prompt length."),
    quick: bool = typer.Option(False, "--quick", help="The small set `gpuscout run` uses."),
    compare: bool = typer.Option(
        False, "--compare", help="Also run Keras (mlp) / Hugging Face generate (llm) if installed."
    ),
    timeout: float | None = typer.Option(None, "--timeout", min=1, help="Seconds per run."),
    limit_samples: int | None = typer.Option(None, "--limit-samples", min=1, hidden=True),
    json_out: bool = JsonOpt,
    db: Path | None = DbOpt,
    no_store: bool = typer.Option(False, "--no-store", help="Do not save this run."),
) -> None:
    """Train and run real models, tutorial-style and tuned, on each device.

    Each run is isolated in its own process: an out-of-memory error or a crash is
    recorded and the others go on. Exit code 0 when every run worked, 1 when one
    failed, 2 for usage errors.
    """
    from gpuscout.report.verdict import verdict
    from gpuscout.workloads import run_workloads

    try:
        results = _run_with_progress(
            json_out,
            names=name,
            devices=device,
            impl=impl,
            epochs=epochs,
            batch_size=batch_size,
            model=model,
            data_dir=data_dir,
            steps=steps,
            seq_len=seq_len,
            quick=quick,
            compare=compare,
            timeout_s=timeout,
            limit_samples=limit_samples,
            db=db,
            runner=run_workloads,
        )
        text = verdict(results)
        synthetic = any(r.extra.get("synthetic_data") for r in results)
        summary = {"verdict": text, "synthetic_data": synthetic}
        run_id = None if no_store else store_results(db, results, summary)
    except GpuscoutError as exc:
        fail_from(exc)
    code = 1 if any(r.status not in ("ok", "skipped") for r in results) else 0
    if json_out:
        print_json({"run_id": run_id, "exit_code": code, "results": results} | summary)
    else:
        render(results)
        if synthetic:
            console.print("[yellow]synthetic data:[/] no dataset files were found or downloaded")
        console.print(escape(text))  # it names devices, and a name may hold "[...]"
        if run_id is not None:
            err_console.print(f"[dim]saved as run {run_id} (gpuscout show {run_id})[/]")
    raise typer.Exit(code)


def _run_with_progress(json_out: bool, runner: Any, **kwargs: Any) -> list[Result]:
    """A progress bar on stderr (never with --json: stdout stays pure JSON)."""
    if json_out or not err_console.is_terminal:
        out: list[Result] = runner(**kwargs)
        return out
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("workloads", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        out = runner(progress=progress, **kwargs)
        return out


def register_workload(bench_app: typer.Typer) -> None:
    """Add `workload` to the `bench` sub-app (cli/bench.py owns that app)."""
    bench_app.command("workload")(workload)
