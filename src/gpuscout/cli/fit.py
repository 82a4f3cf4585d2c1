"""`gpuscout fit MODEL`: will it fit? Memory per GPU, term by term, across catalog GPUs;
`--measure` checks the prediction on the local GPU and stores both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.table import Table

from gpuscout import jobs
from gpuscout.cli._common import (
    DbOpt,
    JsonOpt,
    console,
    err_console,
    fail,
    fail_from,
    print_json,
    say_saved,
)
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

if TYPE_CHECKING:  # types only: fit's modules load when the job runs, not for --help
    from gpuscout.fit import FitRequest, GpuFit, MemoryEstimate
    from gpuscout.fit.measure.driver import Measured
    from gpuscout.predict.llm_speed import LlmSpeed

HELP = (
    "Will it fit? Memory per GPU for training or inference (weights, gradients, optimizer, "
    "activations, KV cache, overhead) and, across catalog GPUs, whether it fits, the largest "
    "batch and the longest context. No framework needed; --measure checks it on this GPU."
)
MODEL_HELP = (
    "A model id or name (llama-3.1-8b, qwen3-8b, bert-base, resnet50, ...; see --list), a "
    "Hugging Face repo id in the local cache, a config.json (or its folder), or a .gguf file."
)
GIB = 1024**3
# The seams --measure goes through, read at each call so that tests can replace them
# here: the worker's target (None: the real measurement), the local GPUs, the run's
# fingerprint.
MEASURE_TARGET: Callable[..., dict[str, Any]] | None = None


def local_gpus() -> list[tuple[str | None, int | None]]:
    """(catalog id, total memory) of each local NVIDIA GPU; [] when NVML sees none."""
    return jobs.local_gpus()


def run_fingerprint() -> dict[str, Any]:
    return jobs.run_fingerprint()


def register(app: typer.Typer) -> None:
    app.command("fit", help=HELP, short_help="Will a model fit in GPU memory?")(fit_command)


def fit_command(
    model: str | None = typer.Argument(None, help=MODEL_HELP, show_default=False),
    train: bool = typer.Option(True, "--train/--infer", help="Training (default) or inference."),
    gpu: list[str] | None = typer.Option(None, "--gpu", help="A catalog GPU (repeatable)."),
    all_gpus: bool = typer.Option(False, "--all-gpus", help="Every GPU in the catalog."),
    batch_size: int | None = BatchOpt,
    seq_len: int | None = SeqLenOpt,
    dtype: str | None = DtypeOpt,
    optimizer: str = OptimizerOpt,
    lora_rank: int | None = LoraRankOpt,
    lora_targets: str = LoraTargetsOpt,
    checkpointing: bool | None = CheckpointingOpt,
    gpus: int | None = typer.Option(
        None, "--gpus", help="GPUs the job is spread over (default: --tp's, or 1)."
    ),
    zero: int = typer.Option(0, "--zero", help="ZeRO stage 0-3 (3 = FSDP full shard)."),
    tp: int = TpOpt,
    image_size: int | None = typer.Option(None, "--image-size", help="CNN input side (224)."),
    engine: str | None = EngineOpt,
    kv_dtype: str | None = KvDtypeOpt,
    attention: str = typer.Option(
        "sdpa", "--attention", help="transformers: sdpa (no scores kept) or eager."
    ),
    gpu_memory_utilization: float = typer.Option(
        0.9, "--gpu-memory-utilization", help="vLLM: its share of the GPU's memory."
    ),
    gpu_layers: int | None = typer.Option(
        None,
        "--gpu-layers",
        help="llama.cpp's -ngl: blocks on the GPU (default: as many as fit).",
        show_default=False,
    ),
    prefill_chunk: int | None = typer.Option(
        None,
        "--prefill-chunk",
        help="vLLM's max_num_batched_tokens (default: 2048, 8192 on 70 GiB+ GPUs).",
        show_default=False,
    ),
    measure: bool = typer.Option(
        False, "--measure", help="Also run real steps on this machine's GPU and store both."
    ),
    device: str = typer.Option("cuda:0", "--device", help="The GPU --measure uses: cuda:N."),
    timeout: float = typer.Option(900.0, "--timeout", min=1, help="Seconds --measure may take."),
    list_models: bool = typer.Option(False, "--list", help="List the known models and exit."),
    json_out: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    if list_models:
        _list(json_out)
        return
    if model is None:
        fail("give a MODEL (see `gpuscout fit --list`) or a path to a config.json")
    options = jobs.FitOptions(
        model,
        mode="train" if train else "infer",
        batch_size=batch_size,
        seq_len=seq_len,
        dtype=dtype,
        optimizer=optimizer,
        lora_rank=lora_rank,
        lora_targets=lora_targets,
        checkpointing=checkpointing,
        gpus=gpus,
        zero=zero,
        tp=tp,
        image_size=image_size,
        engine=engine,
        kv_dtype=kv_dtype,
        attention=attention,
        gpu_memory_utilization=gpu_memory_utilization,
        gpu_layers=gpu_layers,
        prefill_chunk=prefill_chunk,
        gpu=tuple(gpu or ()),
        all_gpus=all_gpus,
        measure=measure,
        device=device,
        timeout_s=timeout,
    )
    try:
        out = jobs.fit(
            db,
            options,
            None if json_out else _announce,
            gpus_here=local_gpus,
            env=run_fingerprint,
            measure_target=MEASURE_TARGET,
        )
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json(
            {
                "model": out.model,
                "estimate": out.estimate,
                "gpus": out.gpus,
                "measured": out.measured,
                "run_id": out.run_id,
                "speeds": out.speeds,
            }
        )
    else:
        render(out.estimate, list(out.gpus), out.measured, out.speeds)
        say_saved(out.run_id)
    if out.exit_code:
        raise typer.Exit(out.exit_code)


def _announce(label: str, done: int, total: int) -> None:
    err_console.print(f"[dim]{label} in a worker process (Ctrl-C stops it)[/]")


def _list(json_out: bool) -> None:
    models = jobs.models()
    if json_out:
        print_json(models)
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("id", "family", "params", "name"):
        table.add_column(col, justify="right" if col == "params" else "left", no_wrap=col == "id")
    for m in models:
        table.add_row(m.id, m.family, _count(m.params), m.name)
    console.print(table)
    console.print("[dim]or give a path to a Hugging Face config.json[/]")


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


# -- rendering -------------------------------------------------------------------------


def _gib(n: int | float | None) -> str:
    return "n/a" if n is None else f"{n / GIB:,.2f}"


def _what(req: FitRequest) -> str:
    spec = req.model
    parts = [req.mode, req.dtype]
    if req.mode == "train":
        if req.lora:
            kind = "QLoRA" if req.quantized_base else "LoRA"
            parts.append(f"{kind} r={req.lora_rank} ({req.lora_targets})")
        elif req.dtype != "fp32":
            parts[-1] = f"{req.dtype} mixed precision"
        parts.append(req.optimizer)
        if req.checkpointing:
            parts.append("checkpointing")
    size = f"batch {req.batch_size}"
    if spec.is_transformer:
        size += f" x {req.effective_seq_len} tokens"
    elif spec.family == "cnn":
        size += f" x {req.effective_image_size}px"
    parts.append(size)
    if req.gpus > 1 and req.mode == "infer":
        parts.append(f"{req.gpus} GPUs (tensor parallel {req.tp})")
    elif req.gpus > 1:
        parts.append(f"{req.gpus} GPUs (ZeRO-{req.zero}, TP {req.tp})")
    return ", ".join(parts)


def render(
    est: MemoryEstimate,
    fits: list[GpuFit],
    measured: Measured | None,
    speeds: tuple[LlmSpeed | None, ...] = (),
) -> None:
    req = est.request
    spec = req.model
    console.print(
        f"[bold]{spec.name}[/] ({spec.id}): {_count(spec.params)} parameters, {spec.family}; "
        f"{_what(req)}"
    )
    console.print(_terms_table(est))
    console.print(f"largest: {est.dominant.replace('_', ' ')}. lever: {est.lever}")
    if est.assumptions:
        console.print(f"[dim]{est.assumptions}[/]")
    for warning in est.warnings:
        console.print(f"[yellow]warning: {warning}[/]")
    for note in est.notes:
        console.print(f"[dim]- {note}[/]")
    console.print(_gpu_table(req, fits, speeds))
    console.print(f"[dim]{_gpu_table_key(req)}[/]")
    if any(speeds):
        console.print(f"[dim]{_speed_key(req)}[/]")
    if measured is not None:
        _render_measured(est, measured)


def _terms_table(est: MemoryEstimate) -> Table:
    terms = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    terms.add_column("per GPU")
    terms.add_column("GiB", justify="right")
    rows = [
        ("weights", est.weights_bytes),
        ("gradients", est.gradients_bytes),
        ("optimizer", est.optimizer_bytes),
        ("activations", est.activations_bytes),
        ("KV cache", est.kv_cache_bytes),
        ("overhead", est.overhead_bytes),
    ]
    for name, value in rows:
        if value or name in ("weights", "overhead"):
            terms.add_row(name, _gib(value))
    terms.add_row("[bold]peak[/]", f"[bold]{_gib(est.total_bytes)}[/]")
    terms.add_row("band", f"{_gib(est.low_bytes)} - {_gib(est.high_bytes)}")
    if est.host_bytes:
        terms.add_row("system RAM", _gib(est.host_bytes))
    return terms


def _gpu_columns(req: FitRequest) -> tuple[str, ...]:
    if req.mode == "infer" and req.engine == "vllm":
        return ("gpu", "GiB", "budget", "need", "starts", "max batch", "max context")
    if req.mode == "infer" and req.engine == "llama.cpp":
        return ("gpu", "GiB", "need", "all on GPU", "GPU layers", "RAM GiB", "max context")
    return ("gpu", "GiB", "need", "fits", "max batch", "max context")


def _gpu_table(
    req: FitRequest, fits: list[GpuFit], speeds: tuple[LlmSpeed | None, ...] = ()
) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    columns = _gpu_columns(req) + (("decode tok/s", "prefill tok/s") if any(speeds) else ())
    for col in columns:
        table.add_column(col, justify="left" if col == "gpu" else "right", no_wrap=col == "gpu")
    transformer = req.model.is_transformer
    for i, f in enumerate(fits):
        yes = "[green]yes[/]" if f.fits else "[red]no[/]"
        context = "" if f.max_seq_len is None and not transformer else _cap(f.max_seq_len)
        cells = {
            "gpu": f.gpu_id,
            "GiB": f"{f.memory_bytes / GIB:g}",
            "budget": _gib(f.budget_bytes),
            "need": _gib(f.need_bytes),
            "starts": yes,
            "fits": yes,
            "all on GPU": yes,
            "GPU layers": f"{f.gpu_layers}/{f.total_layers}",
            "RAM GiB": _gib(f.host_bytes),
            "max batch": _cap(f.max_batch_size),
            "max context": context,
        }
        speed = speeds[i] if i < len(speeds) else None
        cells["decode tok/s"] = f"{speed.decode_tokens_per_s:,.0f}" if speed else ""
        cells["prefill tok/s"] = f"{speed.prefill_tokens_per_s:,.0f}" if speed else ""
        table.add_row(*(cells[c] for c in columns))
    return table


def _speed_key(req: FitRequest) -> str:
    key = (
        "tokens/s: decode at batch 1 and prefill, from each GPU's bandwidth and rates with "
        "llama.cpp's published efficiencies (docs/predict-published.md)"
    )
    if req.engine != "llama.cpp":
        key += f"; {req.engine}'s own speed is not validated"
    if req.tp > 1:
        key += f"; {req.tp} GPUs' bandwidth added, their all-reduces not counted"
    return key


def _gpu_table_key(req: FitRequest) -> str:
    if req.mode == "infer" and req.engine == "vllm":
        return (
            "budget = gpu_memory_utilization x the memory a process sees; starts when weights, "
            "activations and the KV cache for the context fit in it; max context = what its "
            "KV cache holds at this batch"
        )
    if req.mode == "infer" and req.engine == "llama.cpp":
        return (
            "need = GPU memory with the layers shown on the GPU; the rest of the weights and "
            "their KV cache in system RAM (slower); max context with every layer on the GPU"
        )
    return (
        "need = peak + 5% allocator margin; fits when need <= 98.5% of the GPU's memory; "
        "max batch at this context, max context at this batch"
    )


def _cap(n: int | None) -> str:
    if n is None:
        return "[red]none[/]"
    return f">= {n:,}" if n >= 1 << 20 else f"{n:,}"


def _render_measured(est: MemoryEstimate, m: Measured) -> None:
    where = f"{m.device_name or m.device} ({m.device})"
    if m.status != "ok":
        console.print(f"[red]measure on {where}: {m.status}[/] {(m.error or '').strip()[-300:]}")
        return
    if m.peak_bytes is None:
        console.print(f"measured on {where}: batch {est.request.batch_size} ran out of memory")
    else:
        err = m.error_pct(est.total_bytes)
        console.print(
            f"measured on {where}: peak {_gib(m.peak_bytes)} GiB = allocator "
            f"{_gib(m.allocated_peak_bytes)} + outside it {_gib(m.context_bytes)} "
            f"({m.context_source}); predicted {_gib(est.total_bytes)} GiB ({err:+.1f}%)"
        )
    if m.search_error:
        console.print(f"[red]the largest-batch search stopped:[/] {m.search_error}")
    elif m.max_batch is not None or m.trials:
        most = "none" if m.max_batch is None else _cap(m.max_batch)
        capped = " (the search's cap)" if m.max_batch_capped else ""
        console.print(f"largest batch that ran: {most}{capped}")
        if m.search_stopped:  # a lower bound: the limit came before the boundary
            console.print(f"[yellow]{m.search_stopped}[/]")
