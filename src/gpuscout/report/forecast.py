"""The report's forward-looking sections: predictions, the fit table and the cost table.

They come from ``gpuscout.predict`` and ``gpuscout.fit``, imported here, lazily, so
that a failure in either (or either missing) costs its section and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gpuscout._types import Result
from gpuscout.report.document import FitCell, FitRow, FitTable, Unavailable, safely
from gpuscout.report.gather import is_workload, normal_precision
from gpuscout.workloads import registry

if TYPE_CHECKING:
    from gpuscout.catalog import GpuSpec
    from gpuscout.predict import Advice, Prediction

# The GPUs a report projects onto and fits against: a spread over segments, generations
# and prices, so a reader sees the whole range; the machine's own GPUs are added.
REPORT_GPUS = (
    "rtx-3060-12gb",
    "rtx-4060-ti-16gb",
    "rtx-4090",
    "rtx-5090",
    "rtx-a6000",
    "rtx-6000-ada",
    "l4",
    "l40s",
    "a100-sxm4-80gb",
    "h100-sxm5-80gb",
    "h200-sxm-141gb",
    "b200",
)

# Two familiar models beside the measured ones, to show what each GPU can hold.
REFERENCE_FITS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("Llama 3 8B · inference, for scale", "llama-3-8b", {"mode": "infer", "dtype": "bf16"}),
    (
        "Llama 3 8B · QLoRA fine-tune, for scale",
        "llama-3-8b",
        {"mode": "train", "dtype": "nf4", "lora_rank": 16, "checkpointing": True},
    ),
)


def report_gpus(fp: Mapping[str, Any]) -> list[GpuSpec]:
    from gpuscout.catalog import find_gpu

    ids = list(REPORT_GPUS)
    gpus = fp.get("gpus")
    for g in gpus if isinstance(gpus, list) else []:
        if isinstance(g, dict) and g.get("catalog_id") and g["catalog_id"] not in ids:
            ids.append(str(g["catalog_id"]))
    out = []
    for gpu_id in ids:
        try:
            out.append(find_gpu(gpu_id))
        except Exception:  # a renamed catalog row costs one column, not the section
            continue
    return sorted(out, key=lambda s: (s.memory_gb, s.memory_bandwidth_gbs))


def prediction(
    results: Sequence[Result], fp: Mapping[str, Any], gpus: Sequence[GpuSpec]
) -> Prediction:
    from gpuscout.predict import predict_results

    return predict_results(results, fp, gpus)


def _fit_requests(results: Sequence[Result]) -> list[tuple[str, Any]]:
    """(label, FitRequest) for each measured workload (one per workload and variant)."""
    from gpuscout.fit import FitRequest, load_model

    out: list[tuple[str, Any]] = []
    seen: set[tuple[str, Any]] = set()
    # The tuned run on a GPU first: its batch and precision are what a user would run.
    ordered = sorted(results, key=lambda r: (r.extra.get("impl") != "tuned", r.device == "cpu"))
    for r in ordered:
        if not is_workload(r) or r.status != "ok":
            continue
        key = (str(r.extra["workload"]), r.extra.get("variant"))
        if key in seen:
            continue
        seen.add(key)
        out.append(_measured_request(r))
    for label, model_id, options in REFERENCE_FITS:
        try:
            out.append((label, FitRequest(model=load_model(model_id), **options)))
        except Exception:
            continue
    return out


def _measured_request(r: Result) -> tuple[str, Any]:
    """The fit question a measured figure asks: its model, batch, length and precision."""
    from gpuscout.fit import FitRequest

    e = r.extra
    wl, variant = str(e["workload"]), e.get("variant")
    spec = registry.get(wl)
    model = spec.model_spec(str(e["model"]) if e.get("model") else None)
    infer = spec.task == "infer" or str(variant or "").startswith(("decode", "prefill"))
    batch = e.get("batch_size")
    seq = e.get("seq_len") or e.get("prompt_len")
    req = FitRequest(
        model=model,
        mode="infer" if infer else "train",
        batch_size=int(batch) if isinstance(batch, int) and batch > 0 else 1,
        seq_len=int(seq) if isinstance(seq, int) and seq > 0 else None,
        dtype=normal_precision(str(e.get("dtype") or "fp32")),
    )
    return f"{model.name} · measured {wl}{f' {variant}' if variant else ''}", req


def fit_table(results: Sequence[Result], gpus: Sequence[GpuSpec]) -> FitTable:
    from gpuscout.fit import estimate, fit_across

    rows = []
    for label, req in _fit_requests(results):
        est = estimate(req)
        fits = fit_across(req, gpus)
        rows.append(
            FitRow(
                label=label,
                model_id=req.model.id,
                mode=req.mode,
                batch_size=req.batch_size,
                seq_len=req.seq_len if req.seq_len is not None else req.model.default_seq_len,
                dtype=req.dtype,
                need_bytes=est.total_bytes,
                low_bytes=est.low_bytes,
                high_bytes=est.high_bytes,
                dominant=est.dominant,
                cells=tuple(FitCell(f.gpu_id, f.fits, f.max_batch_size) for f in fits),
            )
        )
    columns = tuple((g.id, g.name, g.memory_bytes) for g in gpus)
    return FitTable(columns, tuple(rows))


def advice(results: Sequence[Result], fp: Mapping[str, Any]) -> Advice:
    """The advisor's verdict on the measured work, over the whole catalog (it picks the
    best option per segment itself)."""
    from gpuscout.predict import advise

    return advise(results=results, system=fp)


def forecasts(
    results: Sequence[Result], fp: Mapping[str, Any]
) -> tuple[Prediction | Unavailable, FitTable | Unavailable, Advice | Unavailable]:
    """The three sections; each failure (predict or fit missing or broken) costs its own."""
    gpus = safely(lambda: report_gpus(fp))
    if isinstance(gpus, Unavailable):
        return gpus, gpus, gpus
    fit = safely(lambda: fit_table(results, gpus))
    if not any(is_workload(r) and r.status == "ok" for r in results):
        none = Unavailable("no workload was measured in these runs (gpuscout run measures some)")
        return none, fit, none
    return safely(lambda: prediction(results, fp, gpus)), fit, safely(lambda: advice(results, fp))
