"""`gpuscout bench workload NAME`: real training and inference, tutorial-style vs tuned."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from gpuscout import jobs
from gpuscout.cli._common import (
    DbOpt,
    JsonOpt,
    console,
    fail_from,
    print_json,
    progress_bar,
    say_saved,
)
from gpuscout.cli._tables import render_workloads
from gpuscout.errors import GpuscoutError

NAME_HELP = "Workload: mlp, cnn, encoder, llm, or all (comma-separated for several)."


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
    recorded and the others go on. Each result is saved as its run ends: Ctrl-C keeps
    those (exit 130; SIGTERM 143). Exit code 0 when every run worked, 1 when one
    failed, 2 for usage errors.
    """
    options = jobs.WorkloadOptions(
        names=name,
        devices=device,
        impl=impl,
        model=model,
        data_dir=data_dir,
        sizes=jobs.WorkloadSizes(epochs, limit_samples, steps, batch_size, seq_len),
        quick=quick,
        compare=compare,
        timeout_s=timeout,
        store=not no_store,
    )
    try:
        with progress_bar(not json_out, "workloads") as progress:
            out = jobs.bench_workload(db, options, progress)
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json(
            {
                "run_id": out.run_id,
                "exit_code": out.exit_code,
                "results": out.results,
                "verdict": out.verdict,
                "synthetic_data": out.synthetic_data,
            }
        )
    else:
        render_workloads(out.results)
        if out.synthetic_data:
            console.print("[yellow]synthetic data:[/] no dataset files were found or downloaded")
        console.print(escape(out.verdict))  # it names devices, and a name may hold "[...]"
        say_saved(out.run_id)
    raise typer.Exit(out.exit_code)


def register_workload(bench_app: typer.Typer) -> None:
    """Add `workload` to the `bench` sub-app (cli/bench.py owns that app)."""
    bench_app.command("workload")(workload)
