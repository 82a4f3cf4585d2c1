"""`gpuscout advise`: stay on the CPU, buy a GPU (which one), or rent one."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from gpuscout import jobs
from gpuscout.cli._common import DbOpt, JsonOpt, console, err_console, fail, fail_from, print_json
from gpuscout.cli._regime import (
    BatchOpt,
    CheckpointingOpt,
    DtypeOpt,
    EngineOpt,
    KvDtypeOpt,
    LoraRankOpt,
    LoraTargetsOpt,
    OptimizerOpt,
    SeqLenOpt,
    TpOpt,
)
from gpuscout.errors import GpuscoutError
from gpuscout.predict import Advice, CostRow
from gpuscout.predict.wording import duration, usd


def _time(r: CostRow) -> str:
    if r.time_per_run_s is None:
        return "n/a"
    if r.time_low_s is None or r.time_high_s is None:
        return duration(r.time_per_run_s)
    return (
        f"{duration(r.time_per_run_s)}\n[dim]{duration(r.time_low_s)}-{duration(r.time_high_s)}[/]"
    )


def _per_run(r: CostRow) -> str:
    if r.option == "cloud" and r.cloud_usd_per_run is not None:
        return (
            f"{usd(r.cloud_usd_per_run)}\n[dim]{usd(r.cloud_usd_per_hour)}/h "
            f"{r.cloud_provider}, {r.cloud_price_date}[/]"
        )
    if r.electricity_usd_per_run is not None:
        return f"{usd(r.electricity_usd_per_run)}\n[dim]power[/]"
    return ""


def _gpu(r: CostRow) -> str:
    name = str(r.gpu_name).removeprefix("NVIDIA ").removeprefix("GeForce ")
    return name if r.gpus <= 1 else f"{r.gpus} x {name}"


def _break_even(r: CostRow) -> str:
    if r.break_even_hours is None:
        return ""
    return f"{r.break_even_hours:,.0f} h\n[dim]{r.break_even_weeks or 0:,.0f} weeks[/]"


def _options(advice: Advice) -> Table:
    """Each option per run: its GPU, time, fit, price, cost and break-even; the pick starred."""
    table = Table(show_header=True, header_style="bold", title="Options, per run")
    table.add_column("option", no_wrap=True)  # "workstation" cut to "workstat…" reads badly
    table.add_column("GPU")
    for col in ("time", "fits", "buy", "cost", "break-even"):
        table.add_column(col, justify="right", no_wrap=col != "cost")
    for r in advice.rows:
        pick = advice.recommended is not None and r == advice.recommended
        table.add_row(
            f"[bold green]{r.option} *[/]" if pick else r.option,
            _gpu(r),
            _time(r),
            "n/a" if r.fits is None else ("yes" if r.fits else "[red]no[/]"),
            "" if r.buy_usd is None else usd(r.buy_usd),
            _per_run(r),
            _break_even(r),
        )
    return table


def render(advice: Advice) -> None:
    console.print(escape(advice.verdict))  # GPU and model names may hold "[...]"
    console.print(_options(advice))
    for r in advice.rows:
        if r.note:
            console.print(f"[dim]{r.option}: {escape(r.note)}[/]")
    if advice.pro_vs_consumer:
        pro = Table(show_header=True, header_style="bold", title="Consumer or pro?")
        for col in ("", "consumer", "pro"):
            pro.add_column(col, overflow="fold")
        for aspect, con, p in advice.pro_vs_consumer:
            pro.add_row(aspect, con, p)
        console.print(pro)
    console.print("[bold]Assumptions[/]")
    for line in advice.assumptions:
        console.print(f"[dim]- {line}[/]")


def advise(
    workload: str | None = typer.Option(
        None, "--workload", "-w", help="Advise on this measured workload (mlp, cnn, encoder, llm)."
    ),
    run_id: int | None = typer.Option(
        None, "--run", help="Use this stored run (default: the newest with workloads)."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="A model by name or config.json path, measured or not."
    ),
    train: bool = typer.Option(False, "--train", help="With --model: advise on training it."),
    infer: bool = typer.Option(False, "--infer", help="With --model: advise on running it."),
    budget: float | None = typer.Option(
        None, "--budget", help="Most you would spend on GPUs, USD (filters purchases)."
    ),
    hours_per_week: float = typer.Option(
        10.0, "--hours-per-week", help="Hours a week the GPU would be busy (break-even)."
    ),
    price_kwh: float = typer.Option(0.15, "--price-kwh", help="Electricity price, USD per kWh."),
    deadline_hours: float | None = typer.Option(
        None, "--deadline-hours", help="A run must finish within this many hours."
    ),
    samples: float | None = typer.Option(
        None, "--samples", help="Samples (images, sequences, tokens) in one run."
    ),
    batch_size: int | None = BatchOpt,
    seq_len: int | None = SeqLenOpt,
    dtype: str | None = DtypeOpt,
    optimizer: str = OptimizerOpt,
    lora_rank: int | None = LoraRankOpt,
    lora_targets: str = LoraTargetsOpt,
    checkpointing: bool | None = CheckpointingOpt,
    tp: int = TpOpt,
    engine: str | None = EngineOpt,
    kv_dtype: str | None = KvDtypeOpt,
    json_out: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    """Which GPU (if any) to buy or rent, what a run costs, when buying beats renting.

    From this machine's measured runs (or published defaults on a CPU-only machine).
    With --model, the same options as `gpuscout fit` say how it is trained or run."""
    if train and infer:
        fail("give --train or --infer, not both")
    regime = jobs.FitOptions(
        model or "",
        batch_size=batch_size,
        seq_len=seq_len,
        dtype=dtype,
        optimizer=optimizer,
        lora_rank=lora_rank,
        lora_targets=lora_targets,
        checkpointing=checkpointing,
        tp=tp,
        engine=engine,
        kv_dtype=kv_dtype,
    )
    if model is None and regime != jobs.FitOptions(""):
        fail("--dtype, --lora-rank, --seq-len and the other fit options go with --model")
    options = jobs.AdviseOptions(
        workload=workload,
        run_id=run_id,
        model=model,
        mode="infer" if infer else "train" if train else None,
        budget_usd=budget,
        hours_per_week=hours_per_week,
        price_kwh=price_kwh,
        deadline_hours=deadline_hours,
        samples=samples,
        regime=regime if model is not None else None,
    )
    try:
        advice = jobs.advise(db, options)
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json(advice)
        return
    render(advice)
    if advice.prediction is not None and advice.prediction.run_id is not None:
        err_console.print(f"[dim]from run {advice.prediction.run_id}[/]")


def register(app: typer.Typer) -> None:
    app.command("advise")(advise)
