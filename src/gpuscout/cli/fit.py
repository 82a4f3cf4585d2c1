"""`gpuscout fit MODEL`: will it fit? Memory per GPU, term by term, across catalog GPUs;
`--measure` checks the prediction on the local GPU and stores both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from gpuscout.cli._common import (
    DbOpt,
    JsonOpt,
    console,
    err_console,
    fail,
    fail_from,
    print_json,
    run_fingerprint,
)
from gpuscout.errors import GpuscoutError

HELP = (
    "Will it fit? Memory per GPU for training or inference (weights, gradients, optimizer, "
    "activations, KV cache, overhead) and, across catalog GPUs, whether it fits, the largest "
    "batch and the longest context. No framework needed; --measure checks it on this GPU."
)
MODEL_HELP = (
    "A model id or name (llama-3-8b, bert-base, resnet50, mlp, ...; see --list), a Hugging "
    "Face repo id we ship, or a path to a config.json."
)
GIB = 1024**3
# Tests replace these: the worker target --measure runs, and the local-GPU probe.
MEASURE_TARGET: Callable[..., dict[str, Any]] | None = None


def register(app: typer.Typer) -> None:
    app.command("fit", help=HELP, short_help="Will a model fit in GPU memory?")(fit_command)


def local_gpus() -> list[tuple[str | None, int | None]]:
    """(catalog id, total memory) of each local NVIDIA GPU; [] when NVML sees none."""
    try:
        from gpuscout._types import NvmlState
        from gpuscout.probe.nvml import probe_nvidia
        from gpuscout.probe.system import with_catalog_ids

        info = with_catalog_ids(probe_nvidia())
        if info.state != NvmlState.OK:
            return []
        return [(g.catalog_id, g.memory_total_bytes) for g in info.gpus if not g.lost]
    except Exception:  # a broken driver must not stop an arithmetic command
        return []


def fit_command(
    model: str | None = typer.Argument(None, help=MODEL_HELP, show_default=False),
    train: bool = typer.Option(True, "--train/--infer", help="Training (default) or inference."),
    gpu: list[str] | None = typer.Option(None, "--gpu", help="A catalog GPU (repeatable)."),
    all_gpus: bool = typer.Option(False, "--all-gpus", help="Every GPU in the catalog."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Per GPU (default: 1, or the workload's own)."
    ),
    seq_len: int | None = typer.Option(
        None, "--seq-len", help="Tokens per sample (default: the model's; infer: the context)."
    ),
    dtype: str | None = typer.Option(
        None, "--dtype", help="fp32, bf16, fp16, fp8, int8, int4, nf4 (default: the model's)."
    ),
    optimizer: str = typer.Option(
        "adamw", "--optimizer", help="sgd, sgd-momentum, adam, adamw, adam8bit."
    ),
    lora_rank: int | None = typer.Option(
        None, "--lora-rank", help="Train LoRA adapters of this rank (QLoRA with int8/int4/nf4)."
    ),
    lora_targets: str = typer.Option(
        "attention", "--lora-targets", help="attention (q, k, v, o) or all (every linear)."
    ),
    checkpointing: bool = typer.Option(
        False, "--checkpointing", help="Activation (gradient) checkpointing per layer."
    ),
    gpus: int = typer.Option(1, "--gpus", help="GPUs the job is spread over."),
    zero: int = typer.Option(0, "--zero", help="ZeRO stage 0-3 (3 = FSDP full shard)."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree."),
    image_size: int | None = typer.Option(None, "--image-size", help="CNN input side (224)."),
    measure: bool = typer.Option(
        False, "--measure", help="Also run real steps on this machine's GPU and store both."
    ),
    device: str = typer.Option("cuda:0", "--device", help="The GPU --measure uses: cuda:N."),
    timeout: float = typer.Option(900.0, "--timeout", min=1, help="Seconds --measure may take."),
    list_models: bool = typer.Option(False, "--list", help="List the known models and exit."),
    json_out: bool = JsonOpt,
    db: Path | None = DbOpt,
) -> None:
    from gpuscout.fit import FitRequest, estimate, fit_across, load_model

    if list_models:
        _list(json_out)
        return
    if model is None:
        fail("give a MODEL (see `gpuscout fit --list`) or a path to a config.json")
    if gpu and all_gpus:
        fail("give --gpu NAME or --all-gpus, not both", "drop one of them")
    try:
        spec = load_model(model)
        req = FitRequest(
            spec,
            mode="train" if train else "infer",
            batch_size=batch_size if batch_size is not None else spec.default_batch_size or 1,
            seq_len=seq_len,
            dtype=dtype or spec.default_dtype,
            optimizer=optimizer,
            lora_rank=lora_rank,
            checkpointing=checkpointing,
            gpus=gpus,
            zero=zero,
            tp=tp,
            lora_targets=lora_targets,
            image_size=image_size,
        )
        est = estimate(req)
        specs = _gpu_specs(gpu, all_gpus)
        fits = fit_across(est.request, specs)
        measured = None
        run_id = None
        if measure:
            measured, run_id = _measure(est, device, timeout, db, quiet=json_out)
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json(
            {"model": spec, "estimate": est, "gpus": fits, "measured": measured, "run_id": run_id}
        )
    else:
        render(est, fits, measured)
        if run_id is not None:
            err_console.print(f"[dim]saved as run {run_id} (gpuscout show {run_id})[/]")
    if measured is not None and not measured.complete:
        raise typer.Exit(1)


def _gpu_specs(names: list[str] | None, all_gpus: bool) -> list[Any]:
    from gpuscout.catalog import find_gpu, load_gpus
    from gpuscout.fit import default_gpus

    if all_gpus:
        return list(load_gpus())
    if names:
        return [find_gpu(n) for n in names]
    local = [find_gpu(cid) for cid, _ in local_gpus() if cid]
    return list({g.id: g for g in [*local, *default_gpus()]}.values())


def _measure(
    est: Any, device: str, timeout: float, db: Path | None, quiet: bool
) -> tuple[Any, int]:
    from gpuscout.fit.measure.driver import check_measurable, cuda_device, fit_results, measure
    from gpuscout.fit.on_gpu import max_batch_within

    req = check_measurable(est.request)
    device = cuda_device(device)
    local = local_gpus()
    if not local and MEASURE_TARGET is None:
        fail("--measure needs an NVIDIA GPU with CUDA, and NVML finds none on this machine")
    if not quiet:
        err_console.print(f"[dim]measuring on {device} in a worker process (Ctrl-C stops it)[/]")
    # The search brackets the prediction for the local GPU: up to 4x it (64 at least).
    # NVML's order stands in for CUDA's here: only the search's upper end depends on it.
    index = int(device.rpartition(":")[2])
    mem = local[index][1] if index < len(local) else None
    guess = max_batch_within(req, mem) if mem else None
    cap = min(65_536, max(64, 4 * (guess or 16)))
    measured = measure(req, device, cap=cap, timeout_s=timeout, target=MEASURE_TARGET)
    if measured.status == "no_cuda":
        fail(f"--measure needs CUDA: {measured.error}")
    usable = measured.memory_total_bytes
    predicted_max = max_batch_within(req, usable) if usable else None
    from gpuscout.store import Store

    store = Store.open(db)
    try:
        with store.run("fit", run_fingerprint()) as run:
            run.add_results(fit_results(est, measured, predicted_max))
            run.summary.update(
                {
                    "model": req.model.id,
                    "mode": req.mode,
                    "predicted_bytes": est.total_bytes,
                    "measured_bytes": measured.peak_bytes,
                    "error_pct": measured.error_pct(est.total_bytes),
                }
            )
            if not measured.complete:
                run.status = "failed"
            return measured, run.id
    finally:
        store.close()


def _list(json_out: bool) -> None:
    from rich import box
    from rich.table import Table

    from gpuscout.fit import list_models

    models = list_models()
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


def _what(req: Any) -> str:
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
    if req.gpus > 1:
        parts.append(f"{req.gpus} GPUs (ZeRO-{req.zero}, TP {req.tp})")
    return ", ".join(parts)


def render(est: Any, fits: list[Any], measured: Any) -> None:
    from rich import box
    from rich.table import Table

    req = est.request
    spec = req.model
    console.print(
        f"[bold]{spec.name}[/] ({spec.id}): {_count(spec.params)} parameters, {spec.family}; "
        f"{_what(req)}"
    )
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
    console.print(terms)
    console.print(f"largest: {est.dominant.replace('_', ' ')}. lever: {est.lever}")
    for note in est.notes:
        console.print(f"[dim]- {note}[/]")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("gpu", "GiB", "need", "fits", "max batch", "max context"):
        table.add_column(col, justify="left" if col == "gpu" else "right", no_wrap=col == "gpu")
    for f in fits:
        table.add_row(
            f.gpu_id,
            f"{f.memory_bytes / GIB:g}",
            _gib(f.need_bytes),
            "[green]yes[/]" if f.fits else "[red]no[/]",
            _cap(f.max_batch_size),
            "" if f.max_seq_len is None and not spec.is_transformer else _cap(f.max_seq_len),
        )
    console.print(table)
    console.print(
        "[dim]need = peak + 5% allocator margin; fits when need <= 98.5% of the GPU's memory; "
        "max batch at this context, max context at this batch[/]"
    )
    if measured is not None:
        _render_measured(est, measured)


def _cap(n: int | None) -> str:
    if n is None:
        return "[red]none[/]"
    return f">= {n:,}" if n >= 1 << 20 else f"{n:,}"


def _render_measured(est: Any, m: Any) -> None:
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
