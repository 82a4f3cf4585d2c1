"""Check gpuscout's cross-GPU predictor against Lambda's published training table.

Lambda's single-GPU table (ResNet-50 and BERT SQuAD training, AMP and TF32, 11 GPUs) is
the validation set for the predictor (the project's reference notes, benchmark-anchors.md,
section 1). Two validations, both through the predictor's public path (``predict_results``,
what ``gpuscout advise`` and the report call), with no model arithmetic in this script:

a. From the defaults (what a CPU-only user gets): a workload figure measured on the CPU
   in bf16, projected onto each GPU with the published priors (``predict.defaults``).
   H100 SXM, H200 and A100 SXM are in-sample (the priors were fitted on them).
b. Calibrated on one GPU, predicting the others (the cross-GPU goal, a median error of
   <= 15%, with published figures standing in for measurements): each GPU's Lambda step
   becomes the stored Result a gpuscout run on that GPU would write, is calibrated there,
   and projected onto the others; one row of the matrix per anchor GPU.

Errors are on the step time, as in scripts/predict_validate.py: (predicted - published) /
published, positive when gpuscout predicts the GPU slower than Lambda measured it.

    python scripts/predict_published.py                  # markdown tables
    python scripts/predict_published.py --out p.json     # and the figures as JSON
    python scripts/predict_published.py --recount        # recount FLOPs/bytes (torch)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from gpuscout._types import Result
from gpuscout.catalog import GpuSpec, find_gpu, match_local_gpu
from gpuscout.predict import predict_results

SOURCE = (
    "Lambda deep-learning benchmark (github.com/lambdal/deeplearning-benchmark), "
    "pytorch/pytorch-train-throughput-{fp16,fp32}.csv and -v2-*.csv, single GPU, "
    "as tabulated in the project's reference notes (benchmark-anchors.md, section 1)"
)
COLUMNS = ("resnet50-amp", "resnet50-tf32", "bert-large-amp", "bert-large-tf32", "bert-base-amp")


@dataclass(frozen=True)
class Published:
    label: str  # as Lambda names the GPU
    gpu_id: str  # the catalog row
    short: str  # a column header
    figures: tuple[float, ...]  # in COLUMNS order; samples/s


# AMP = mixed precision fp16 on the tensor cores; "TF32" = Lambda's "fp32" column, which
# is TF32 on Ampere and newer (and true FP32 on the V100). "V100 16GB" is Lambda Cloud's
# V100 at 300 W: the SXM2 card (the PCIe one is 250 W).
LAMBDA = (
    Published("H100 SXM5 80GB (v2)", "h100-sxm5-80gb", "H100 SXM", (2790, 1895, 311, 148, 850)),
    Published("H100 PCIe 80GB (v2)", "h100-pcie-80gb", "H100 PCIe", (1976, 1248, 204, 100, 580)),
    Published("H200 SXM 141GB (v2)", "h200-sxm-141gb", "H200", (3079, 2259, 350, 181, 932)),
    Published("B200 192GB (v2)", "b200", "B200", (3076, 2967, 523, 281, 1405)),
    Published("A100 80GB SXM4", "a100-sxm4-80gb", "A100 SXM", (1582, 1066, 152, 75, 443)),
    Published("A100 80GB PCIe", "a100-pcie-80gb", "A100 PCIe", (1527, 1014, 140, 70, 415)),
    Published("RTX 4090", "rtx-4090", "4090", (1301, 721, 93, 44, 297)),
    Published("RTX 6000 Ada", "rtx-6000-ada", "6000 Ada", (1146, 647, 79, 44, 255)),
    Published("RTX A6000", "rtx-a6000", "A6000", (916, 514, 68, 33, 198)),
    Published("RTX 3090", "rtx-3090", "3090", (905, 513, 52, 24, 172)),
    Published("V100 16GB", "v100-sxm2-16gb", "V100", (833, 369, 57, 12, 189)),
)
# The GPUs whose Lambda figures the priors in predict/defaults.py were fitted on.
IN_SAMPLE = frozenset({"h100-sxm5-80gb", "h200-sxm-141gb", "a100-sxm4-80gb"})
# Lambda's ResNet-50 recipe stops at ~3,080 img/s whatever the GPU (H200 3,079, B200 3,076):
# there the figure measures the harness, not the GPU.
HARNESS_CEILING = frozenset({("resnet50-amp", "b200"), ("resnet50-amp", "h200-sxm-141gb")})


@dataclass(frozen=True)
class Work:
    """One Lambda column as a gpuscout workload figure: what one step does, counted by
    gpuscout.count.flops on the meta device (``--recount`` repeats the count)."""

    workload: str  # "cnn" | "encoder"
    model: str
    amp: bool  # False: fp32 storage, TF32 matmuls
    batch: int  # gpuscout's GPU batch (cnn 256, encoder 32), as defaults.py uses
    flops_per_sample: float
    bytes_per_sample: float
    host_ops: int  # per step, fused optimizer
    params: int
    unit: str
    seq_len: int | None = None


RESNET50, BERT_LARGE, BERT_BASE = 25_557_032, 335_172_410, 109_512_762
_IMG, _SEQ = "images/s", "sequences/s"
WORKS = {
    "resnet50-amp": Work("cnn", "resnet50", True, 256, 24.535e9, 115.0e6, 405, RESNET50, _IMG),
    "resnet50-tf32": Work("cnn", "resnet50", False, 256, 24.535e9, 226.8e6, 405, RESNET50, _IMG),
    "bert-large-amp": Work("encoder", "bert-large", True, 32, 8.137e11, 6.518e8, 1249,
                           BERT_LARGE, _SEQ, 384),
    "bert-large-tf32": Work("encoder", "bert-large", False, 32, 8.137e11, 8.846e8, 1249,
                            BERT_LARGE, _SEQ, 384),
    "bert-base-amp": Work("encoder", "bert-base", True, 32, 2.6736e11, 2.2658e8, 637,
                          BERT_BASE, _SEQ, 384),
}  # fmt: skip
CPU_STEP_S = 30.0  # the CPU's own step: it only sets "speedup", which is not compared here


def spec_of(row: Published) -> GpuSpec:
    """The catalog row of a Lambda GPU; raises (with the row named) if it is missing."""
    try:
        spec = find_gpu(row.gpu_id)
    except Exception as exc:
        raise SystemExit(f"Lambda's {row.label!r}: no catalog row {row.gpu_id!r} ({exc})") from exc
    if spec.id != row.gpu_id:
        raise SystemExit(f"Lambda's {row.label!r}: {row.gpu_id!r} resolved to {spec.id!r}")
    return spec


def nvml_name(spec: GpuSpec) -> str:
    """The name NVML would report, checked to map back onto ``spec`` (as a real run's
    stored Result is mapped by ``predict``)."""
    name = spec.aliases[0] if spec.aliases else spec.name
    got = match_local_gpu(name, spec.memory_bytes)
    if got is None or got.id != spec.id:
        raise SystemExit(f"{name!r} maps to {got.id if got else None}, not {spec.id}")
    return name


def workload_result(w: Work, spec: GpuSpec | None, step_s: float) -> Result:
    """The Result a tuned gpuscout run of ``w`` stores (workloads/suite.py, training.py):
    on ``spec`` (a GPU), or on the CPU when ``spec`` is None."""
    gpu = spec is not None
    if w.amp:  # bf16 autocast; fp16 on a GPU without bf16 (Lambda's AMP is fp16)
        dtype = "bf16" if spec is None or spec.bf16_tensor_tflops else "fp16"
        ceiling = dtype
    else:  # fp32 tensors with TF32 matmuls, as NGC's containers run them
        dtype, ceiling = "fp32", "tf32" if gpu else "fp32"
    variant = f"seq{w.seq_len}" if w.seq_len else None
    extra: dict[str, Any] = {
        "workload": w.workload,
        "impl": "tuned",
        "variant": variant,
        "model": w.model,
        "batch_size": w.batch,
        "step_time_s": step_s,
        "flops_per_step": w.flops_per_sample * w.batch,
        "bytes_per_step": w.bytes_per_sample * w.batch,
        "host_ops_per_step": w.host_ops,
        "params": w.params,
        "dtype": dtype,
        "ceiling_precision": ceiling,
        "compile": gpu,  # tuned runs compile on a GPU only (workloads.base.use_compile)
    }
    extra |= {"seq_len": w.seq_len} if w.seq_len else {"image_size": 224}
    if spec is not None:
        extra |= {"device_name": nvml_name(spec), "memory_total_bytes": spec.memory_bytes}
    name = f"{w.workload}/tuned" + (f"/{variant}" if variant else "")
    return Result(name, "cuda:0" if gpu else "cpu", w.batch / step_s, w.unit, extra=extra)


def step_error(predicted: float, published: float) -> float:
    """Relative error of the step time, from two throughputs: (n/p - n/m) / (n/m)."""
    return published / predicted - 1.0


def median_abs(errors: Iterable[float]) -> float | None:
    vals = [abs(e) for e in errors]
    return statistics.median(vals) if vals else None


def score(
    predicted: Mapping[str, float],
    published: Mapping[str, float],
    in_sample: Iterable[str] = (),
    capped: Iterable[str] = (),
) -> dict[str, Any]:
    """Errors of ``predicted`` against ``published`` (both samples/s by GPU id), and the
    median absolute error of the in-sample and out-of-sample GPUs."""
    ins, cap = set(in_sample), set(capped)
    rows: list[dict[str, Any]] = [
        {
            "gpu_id": g,
            "published": published[g],
            "predicted": predicted[g],
            "ratio": predicted[g] / published[g],
            "error": step_error(predicted[g], published[g]),
            "in_sample": g in ins,
            "harness_ceiling": g in cap,
        }
        for g in published
        if g in predicted
    ]
    oos = [r["error"] for r in rows if not r["in_sample"]]
    return {
        "rows": rows,
        "median_abs_error_in_sample": median_abs(r["error"] for r in rows if r["in_sample"]),
        "median_abs_error_out_of_sample": median_abs(oos),
        "median_abs_error_out_of_sample_uncapped": median_abs(
            r["error"] for r in rows if not r["in_sample"] and not r["harness_ceiling"]
        ),
        "n_in_sample": sum(r["in_sample"] for r in rows),
        "n_out_of_sample": len(oos),
    }


def published_column(column: str, rows: Sequence[Published] = LAMBDA) -> dict[str, float]:
    i = COLUMNS.index(column)
    return {r.gpu_id: float(r.figures[i]) for r in rows}


def from_defaults(
    columns: Sequence[str] = ("resnet50-amp", "bert-large-amp"), rows: Sequence[Published] = LAMBDA
) -> dict[str, Any]:
    """Validation (a): a CPU bf16 figure projected with the published priors."""
    specs = [spec_of(r) for r in rows]
    out: dict[str, Any] = {}
    for col in columns:
        w = WORKS[col]
        pred = predict_results([workload_result(w, None, CPU_STEP_S)], None, specs)
        if pred.calibrated:
            raise SystemExit("a CPU figure was calibrated: the defaults path was not taken")
        proj = {p.gpu_id: p for p in pred.projections if p.gpus == 1}
        cap = {g for c, g in HARNESS_CEILING if c == col}
        s = score({g: p.throughput for g, p in proj.items()}, published_column(col, rows),
                  IN_SAMPLE, cap)  # fmt: skip
        for r in s["rows"]:
            p = proj[r["gpu_id"]]
            r |= {
                "low": w.batch / p.step_high_s,
                "high": w.batch / p.step_low_s,
                "bound": p.bound,
                "precision": p.precision,
            }
            r["in_range"] = r["low"] <= r["published"] <= r["high"]
        s["n_in_range"] = sum(r["in_range"] for r in s["rows"])
        out[col] = s | {"basis": pred.calibrations[0].ceiling_source}
    return out


def calibrated(
    columns: Sequence[str] = COLUMNS, rows: Sequence[Published] = LAMBDA
) -> dict[str, Any]:
    """Validation (b): each GPU's published step as the measurement, projected onto the
    others; a matrix of errors (anchor x target) per column."""
    specs = [spec_of(r) for r in rows]
    out: dict[str, Any] = {}
    for col in columns:
        w, pub = WORKS[col], published_column(col, rows)
        matrix: dict[str, dict[str, float]] = {}
        for anchor in specs:
            r = workload_result(w, anchor, w.batch / pub[anchor.id])
            pred = predict_results([r], None, specs)
            if not pred.calibrations[0].calibrated:
                raise SystemExit(f"{col}: could not calibrate on {anchor.id}")
            got = {p.gpu_id: p.throughput for p in pred.projections if p.gpus == 1}
            if abs(got[anchor.id] / pub[anchor.id] - 1) > 1e-6:
                raise SystemExit(f"{col}: {anchor.id} does not reproduce its own figure")
            others = {g: t for g, t in got.items() if g != anchor.id}
            matrix[anchor.id] = {g: step_error(t, pub[g]) for g, t in others.items()}
        per_anchor = {a: median_abs(e.values()) for a, e in matrix.items()}
        out[col] = {
            "matrix": matrix,
            "median_abs_error_per_anchor": per_anchor,
            "median_abs_error": median_abs(e for row in matrix.values() for e in row.values()),
        }
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.0%}"


def _abs_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def markdown(a: Mapping[str, Any], b: Mapping[str, Any], rows: Sequence[Published] = LAMBDA) -> str:
    short = {r.gpu_id: r.short for r in rows}
    out: list[str] = []
    for col, s in a.items():
        unit = WORKS[col].unit
        out += [f"#### (a) {col} from the defaults ({unit})", "",
                "| GPU | Lambda | gpuscout (range) | gpuscout / Lambda | step error | fit "
                "| bound |",
                "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in s["rows"]:
            fit = "in-sample" if r["in_sample"] else "out-of-sample"
            fit += ", harness ceiling" if r["harness_ceiling"] else ""
            out.append(
                f"| {short[r['gpu_id']]} | {r['published']:,.0f} | {r['predicted']:,.0f} "
                f"({r['low']:,.0f}-{r['high']:,.0f}) | {r['ratio']:.2f} | {_pct(r['error'])} "
                f"| {fit} | {r['bound']} |"
            )
        out += ["", f"Median |step error|: in-sample {_abs_pct(s['median_abs_error_in_sample'])} "
                f"(n={s['n_in_sample']}), out-of-sample "
                f"{_abs_pct(s['median_abs_error_out_of_sample'])} (n={s['n_out_of_sample']}), "
                f"out-of-sample without harness-capped figures "
                f"{_abs_pct(s['median_abs_error_out_of_sample_uncapped'])}. Lambda's figure "
                f"is inside gpuscout's range for {s['n_in_range']} of {len(s['rows'])} GPUs.",
                ""]  # fmt: skip
    ids = [r.gpu_id for r in rows]
    for col, s in b.items():
        out += [f"#### (b) {col}, calibrated on one GPU (row) and predicting the others "
                "(column): step error", "",
                "| anchor | " + " | ".join(short[g] for g in ids) + " | median abs |",
                "|---" * (len(ids) + 2) + "|"]  # fmt: skip
        for a_id, errs in s["matrix"].items():
            cells = ["-" if g == a_id else _pct(errs.get(g)) for g in ids]
            med = _abs_pct(s["median_abs_error_per_anchor"][a_id])
            out.append(f"| {short[a_id]} | " + " | ".join(cells) + f" | {med} |")
        m = s["matrix"]
        pair = ""
        if "h100-sxm5-80gb" in m and "h200-sxm-141gb" in m:
            pair = (f" H100 SXM -> H200 {_pct(m['h100-sxm5-80gb']['h200-sxm-141gb'])}, "
                    f"H200 -> H100 SXM {_pct(m['h200-sxm-141gb']['h100-sxm5-80gb'])}.")  # fmt: skip
        out += ["", f"Median |step error| over all pairs: {_abs_pct(s['median_abs_error'])}.{pair}",
                ""]  # fmt: skip
    return "\n".join(out)


def _count(w: Work) -> tuple[float, float, int]:
    """(FLOPs, bytes per sample, host ops per step) of ``w``, counted on the meta device
    with the workloads' own functions, as workloads/cnn.py and encoder.py count them."""
    import torch

    from gpuscout.count.flops import TRAIN_MULTIPLIER, count_forward_flops, training_traffic
    from gpuscout.workloads.encoder import check_model, make_encoder
    from gpuscout.workloads.resnet import make_resnet

    if w.workload == "cnn":
        model = flops_model = make_resnet(w.model, 1000).to("meta")
        shape: tuple[int, ...] = (w.batch, 3, 224, 224)
        optimizer = "sgd-momentum"
    else:
        with torch.device("meta"):  # FLOPs on eager attention, traffic on SDPA (no seq^2)
            flops_model = make_encoder(check_model(w.model), sdpa=False)
            model = make_encoder(check_model(w.model), sdpa=True)
        shape, optimizer = (w.batch, w.seq_len or 0), "adamw"

    def batch() -> Any:
        if w.workload == "cnn":
            return torch.empty(*shape, device="meta")
        return torch.zeros(*shape, dtype=torch.long, device="meta")

    flops = TRAIN_MULTIPLIER * count_forward_flops(flops_model, lambda: flops_model(batch()))
    nbytes, ops, _ = training_traffic(model, lambda: model(batch()), optimizer=optimizer,
                                      optimizer_impl="fused",
                                      activation_bytes_per_elem=2 if w.amp else 4)  # fmt: skip
    return flops / w.batch, nbytes / w.batch, int(ops)


def recount() -> dict[str, tuple[float, float, int]]:
    """``_count`` of every column (needs torch; a few seconds)."""
    return {col: _count(w) for col, w in WORKS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", help="write both validations as JSON to this file")
    ap.add_argument("--recount", action="store_true", help="check the FLOPs/bytes table (torch)")
    args = ap.parse_args(argv)
    if args.recount:
        bad = 0
        for col, (f, n, ops) in recount().items():
            w = WORKS[col]
            ok = abs(f / w.flops_per_sample - 1) < 1e-3 and abs(n / w.bytes_per_sample - 1) < 1e-3
            ok = ok and ops == w.host_ops
            bad += not ok
            print(f"{col:16} flops {f:.4e} bytes {n:.4e} ops {ops}: {'ok' if ok else 'DIFFERS'}")
        return 1 if bad else 0
    a, b = from_defaults(), calibrated()
    print(f"Source: {SOURCE}.\n")
    print(markdown(a, b))
    if args.out:
        doc = {
            "source": SOURCE,
            "published": [asdict(r) for r in LAMBDA],
            "columns": list(COLUMNS),
            "workloads": {k: asdict(w) for k, w in WORKS.items()},
            "from_defaults": a,
            "calibrated": b,
        }
        with open(args.out, "w") as fh:
            json.dump(doc, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
