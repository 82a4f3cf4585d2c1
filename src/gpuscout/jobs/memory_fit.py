"""The fit job: will a model fit in GPU memory? The estimate, term by term, across
catalog GPUs; with ``measure``, real steps on this machine's GPU in a worker process,
stored beside the prediction as one run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gpuscout._types import NvmlState
from gpuscout.catalog import GpuSpec, find_gpu, load_gpus
from gpuscout.errors import UnknownNameError, UsageError
from gpuscout.fit import (
    FitRequest,
    GpuFit,
    MemoryEstimate,
    ModelSpec,
    default_gpus,
    estimate,
    fit_across,
    list_models,
    load_model,
)
from gpuscout.fit.measure.driver import (
    DEFAULT_TIMEOUT_S,
    Measured,
    check_measurable,
    cuda_device,
    fit_results,
    measure,
)
from gpuscout.fit.on_gpu import max_batch_within
from gpuscout.fit.quant import parse_format
from gpuscout.fit.request import check_request
from gpuscout.jobs.listening import Progress
from gpuscout.jobs.storing import StoreLike, run_fingerprint, save
from gpuscout.predict.llm_speed import LlmSpeed, gpu_device, predict_llm_speed
from gpuscout.probe.nvml import probe_nvidia
from gpuscout.probe.system import with_catalog_ids

# (catalog id, total memory) of each local NVIDIA GPU.
LocalGpus = Callable[[], list[tuple[str | None, int | None]]]


@dataclass(frozen=True)
class FitOptions:
    """What to train or run (``model``: a shipped id or name, or a config.json path), how
    (``mode`` train or infer, batch, sequence, dtype, optimizer, LoRA, checkpointing, the
    GPUs it is spread over with ZeRO and tensor parallelism), on which catalog GPUs
    (``gpu`` names, or ``all_gpus``; neither: this machine's and a default few), and
    whether to ``measure`` it on this machine's GPU ``device`` within ``timeout_s``."""

    model: str
    mode: str = "train"
    batch_size: int | None = None  # None: 1, or the workload's own
    seq_len: int | None = None
    dtype: str | None = None  # None: the model's
    optimizer: str = "adamw"
    lora_rank: int | None = None
    lora_targets: str = "attention"
    checkpointing: bool | None = None  # None: on for LoRA/QLoRA (PEFT's recipes), else off
    gpus: int | None = None  # None: --tp's degree, or 1
    zero: int = 0
    tp: int = 1
    image_size: int | None = None
    engine: str | None = None  # None: llama.cpp for a GGUF model, else transformers
    kv_dtype: str | None = None
    attention: str = "sdpa"  # "sdpa" (FlashAttention / memory-efficient) or "eager"
    gpu_memory_utilization: float = 0.9
    gpu_layers: int | None = None
    prefill_chunk: int | None = None
    gpu: tuple[str, ...] = ()
    all_gpus: bool = False
    measure: bool = False
    device: str = "cuda:0"
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class FitOutcome:
    model: ModelSpec
    estimate: MemoryEstimate
    gpus: tuple[GpuFit, ...]
    measured: Measured | None  # with ``measure`` only
    exit_code: int  # 1 when a measurement did not complete
    run_id: int | None  # the stored "fit" run, with ``measure`` only
    speeds: tuple[LlmSpeed | None, ...] = ()  # per GPU: a language model's tokens/s


def models() -> tuple[ModelSpec, ...]:
    """Every model shape fit knows by name, in the model table's order."""
    return tuple(list_models())


def local_gpus() -> list[tuple[str | None, int | None]]:
    """(catalog id, total memory) of each local NVIDIA GPU; [] when NVML sees none."""
    try:
        info = with_catalog_ids(probe_nvidia())
        if info.state != NvmlState.OK:
            return []
        return [(g.catalog_id, g.memory_total_bytes) for g in info.gpus if not g.lost]
    except Exception:  # a broken driver must not stop an arithmetic command
        return []


def fit(
    where: StoreLike,
    options: FitOptions,
    progress: Progress | None = None,
    *,
    gpus_here: LocalGpus = local_gpus,
    env: Callable[[], dict[str, Any]] = run_fingerprint,
    measure_target: Callable[..., dict[str, Any]] | None = None,
) -> FitOutcome:
    """The estimate and where it fits; with ``options.measure``, the measurement too
    (``progress`` hears when it starts), stored as one run of kind "fit". The seams:
    ``gpus_here`` finds the local GPUs, ``env`` fingerprints the machine,
    ``measure_target`` replaces the worker's measurement (tests pass a fake)."""
    if options.gpu and options.all_gpus:
        raise UsageError("give --gpu NAME or --all-gpus, not both", "drop one of them")
    spec = load_model(options.model)
    est = estimate(_request(spec, options))
    fits = fit_across(est.request, _gpu_specs(options, gpus_here))
    measured, run_id = None, None
    if options.measure:
        measured = _measure(est, options, progress, gpus_here, measure_target)
        run_id = _store(where, est, measured, env())
    code = 1 if measured is not None and not measured.complete else 0
    speeds = tuple(speed_on(est.request, f) for f in fits)
    return FitOutcome(spec, est, tuple(fits), measured, code, run_id, speeds)


def speed_on(req: FitRequest, fit: GpuFit) -> LlmSpeed | None:
    """Decode and prefill tokens/s of a language model's inference on one GPU where it
    runs (llama.cpp: with the layers that fit; tensor parallel: the GPUs' bandwidth and
    rates added, the all-reduces not counted); None for training or where it does not run."""
    spec = req.model
    runs = fit.fits or (fit.gpu_layers is not None and fit.gpu_layers > 0)
    if req.mode != "infer" or spec.family not in ("decoder", "moe-decoder") or not runs:
        return None
    device = gpu_device(find_gpu(fit.gpu_id))
    if req.tp > 1:
        device = dataclasses.replace(
            device,
            bandwidth_gbs=device.bandwidth_gbs * req.tp,
            tflops_16=device.tflops_16 * req.tp,
            tops_8=None if device.tops_8 is None else device.tops_8 * req.tp,
            tflops_fp8=None if device.tflops_fp8 is None else device.tflops_fp8 * req.tp,
        )
    one = dataclasses.replace(req, tp=1, gpus=1)
    try:
        return predict_llm_speed(one, device, gpu_layers=fit.gpu_layers)
    except (ValueError, ZeroDivisionError):  # a shape the speed model cannot read
        return None


def request_for(o: FitOptions) -> FitRequest:
    """The fit request ``o`` describes: the one question `fit` and `advise --model` ask."""
    return check_request(_request(load_model(o.model), o))


def _request(spec: ModelSpec, o: FitOptions) -> FitRequest:
    lora = o.lora_rank is not None
    if o.attention not in ("sdpa", "eager", "flash"):
        raise UsageError(f"--attention {o.attention!r} is not sdpa or eager")
    return FitRequest(
        spec,
        mode=o.mode,
        batch_size=o.batch_size if o.batch_size is not None else spec.default_batch_size or 1,
        seq_len=o.seq_len,
        dtype=o.dtype or spec.quant or spec.default_dtype,
        optimizer=o.optimizer,
        lora_rank=o.lora_rank,
        checkpointing=o.checkpointing if o.checkpointing is not None else lora,
        gpus=o.gpus if o.gpus is not None else o.tp,
        zero=o.zero,
        tp=o.tp,
        lora_targets=o.lora_targets,
        image_size=o.image_size,
        engine=o.engine or _default_engine(spec, o),
        kv_dtype=o.kv_dtype,
        flash_attention=o.attention != "eager",
        gpu_memory_utilization=o.gpu_memory_utilization,
        gpu_layers=o.gpu_layers,
        prefill_chunk=o.prefill_chunk,
    )


def _default_engine(spec: ModelSpec, o: FitOptions) -> str:
    """llama.cpp for a GGUF model or format (what runs those), else transformers."""
    name = o.dtype or spec.quant
    if o.mode != "infer" or name is None:
        return "transformers"
    try:
        gguf = parse_format(name).kind == "gguf"
    except UnknownNameError:  # the request's own check says so, in one line
        return "transformers"
    return "llama.cpp" if gguf else "transformers"


def _gpu_specs(o: FitOptions, gpus_here: LocalGpus) -> list[GpuSpec]:
    if o.all_gpus:
        return list(load_gpus())
    if o.gpu:
        return [find_gpu(n) for n in o.gpu]
    local = [find_gpu(cid) for cid, _ in gpus_here() if cid]
    return list({g.id: g for g in [*local, *default_gpus()]}.values())


def _measure(
    est: MemoryEstimate,
    o: FitOptions,
    progress: Progress | None,
    gpus_here: LocalGpus,
    target: Callable[..., dict[str, Any]] | None,
) -> Measured:
    req = check_measurable(est.request)
    device = cuda_device(o.device)
    local = gpus_here()
    if not local and target is None:
        raise UsageError(
            "--measure needs an NVIDIA GPU with CUDA, and NVML finds none on this machine"
        )
    if progress is not None:
        progress(f"measuring on {device}", 0, 1)
    # The search brackets the prediction for the local GPU: up to 4x it (64 at least).
    # NVML's order stands in for CUDA's here: only the search's upper end depends on it.
    index = int(device.rpartition(":")[2])
    mem = local[index][1] if index < len(local) else None
    guess = max_batch_within(req, mem) if mem else None
    cap = min(65_536, max(64, 4 * (guess or 16)))
    measured = measure(req, device, cap=cap, timeout_s=o.timeout_s, target=target)
    if measured.status == "no_cuda":
        raise UsageError(f"--measure needs CUDA: {measured.error}")
    return measured


def _store(where: StoreLike, est: MemoryEstimate, m: Measured, env: dict[str, Any]) -> int:
    req = est.request
    usable = m.memory_total_bytes
    predicted_max = max_batch_within(req, usable) if usable else None
    summary = {
        "model": req.model.id,
        "mode": req.mode,
        "predicted_bytes": est.total_bytes,
        "measured_bytes": m.peak_bytes,
        "error_pct": m.error_pct(est.total_bytes),
    }
    results = fit_results(est, m, predicted_max)
    return save(where, "fit", env, results, summary=summary, failed=not m.complete)
