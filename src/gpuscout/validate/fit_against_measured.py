"""Predicted vs measured peak memory for `gpuscout fit`, with accelerate's estimate beside.

    python scripts/fit_validate.py --out fit.json            # on a GPU machine: cuda:0
    python scripts/fit_validate.py --only llama-3-8b         # the cases of one model
    python scripts/fit_validate.py --simulate --out sim.json # no GPU: fake tensors on CPU

Cases: every gpuscout workload as it runs on a GPU (mlp, cnn, encoder at 128 and 512,
llm at batch 1 and 8), Llama-shaped 1B and 8B models in inference at several batch sizes
and context lengths, and LoRA fine-tuning of both. Each measurement runs in its own
worker process (gpuscout.fit.measure.driver.measure): measured peak = the allocator's
maximum + the process's memory outside the allocator (CUDA context, loaded modules).

accelerate's `estimate-memory` needs the Hugging Face Hub for configs; here its own
functions run on a config.json written to a temporary directory (transformers builds the
model on the meta device). Where accelerate or transformers is missing, or the model is
not a transformers model, the column says "not comparable".

``--simulate`` replays each case on fake tensors (fit/measure/simulate.py) and compares
fit's allocator share with the bytes autograd keeps: a CPU-side check of the arithmetic,
not a GPU measurement (no context, no cuDNN/cuBLAS workspaces).

Markdown goes to stdout and JSON to --out, both as each case ends.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpuscout._types import to_jsonable
from gpuscout.fit import FitRequest, ModelSpec, estimate, load_model
from gpuscout.fit.measure.driver import measure
from gpuscout.workloads.registry import workload_model

GIB = 1024**3


def cases() -> list[tuple[str, FitRequest]]:
    mlp, cnn, enc, llm = (workload_model(w) for w in ("mlp", "cnn", "encoder", "llm"))
    one, eight = load_model("llama-3.2-1b"), load_model("llama-3-8b")
    out = [
        ("mlp workload", FitRequest(mlp, dtype="fp32", batch_size=32, optimizer="adam")),
        ("cnn workload", FitRequest(cnn, batch_size=256, optimizer="sgd-momentum")),
        ("encoder workload s128", FitRequest(enc, batch_size=32, seq_len=128)),
        ("encoder workload s512", FitRequest(enc, batch_size=32, seq_len=512)),
        ("llm workload b1", FitRequest(llm, mode="infer", batch_size=1, seq_len=256)),
        ("llm workload b8", FitRequest(llm, mode="infer", batch_size=8, seq_len=256)),
    ]
    for b, s in ((1, 2048), (8, 4096), (32, 8192), (4, 32768)):
        out.append((f"1B infer b{b} s{s}", FitRequest(one, mode="infer", batch_size=b, seq_len=s)))
    for b, s in ((1, 2048), (8, 4096), (16, 8192)):
        out.append(
            (f"8B infer b{b} s{s}", FitRequest(eight, mode="infer", batch_size=b, seq_len=s))
        )
    lora = [("1B", one, 4, 2048), ("1B", one, 4, 4096), ("8B", eight, 1, 2048)]
    lora += [("8B", eight, 1, 4096), ("8B", eight, 4, 1024)]
    for name, spec, b, s in lora:
        out.append(
            (f"{name} LoRA r16 b{b} s{s}", FitRequest(spec, lora_rank=16, batch_size=b, seq_len=s))
        )
    return out


# -- accelerate -------------------------------------------------------------------------


def hf_config(spec: ModelSpec) -> dict[str, Any] | None:
    """A transformers config.json for ``spec``, or None (not a transformers model)."""
    if spec.family == "decoder" and spec.norm == "rmsnorm" and not spec.positions:
        return {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": spec.hidden,
            "intermediate_size": spec.intermediate,
            "num_attention_heads": spec.heads,
            "num_key_value_heads": spec.kv_heads,
            "head_dim": spec.head_dim,
            "num_hidden_layers": spec.layers,
            "vocab_size": spec.vocab,
            "max_position_embeddings": spec.max_seq_len or 4096,
            "tie_word_embeddings": spec.tied_embeddings,
        }
    if spec.family == "encoder":
        return {
            "model_type": "bert",
            "architectures": ["BertForMaskedLM"],
            "hidden_size": spec.hidden,
            "intermediate_size": spec.intermediate,
            "num_attention_heads": spec.heads,
            "num_hidden_layers": spec.layers,
            "vocab_size": spec.vocab,
            "max_position_embeddings": spec.positions or 512,
            "type_vocab_size": spec.type_vocab or 1,
        }
    return None


def accelerate_estimate(req: FitRequest) -> tuple[float | None, str]:
    """What `accelerate estimate-memory` reports for the request's row: the float16 "Total
    Size" (inference) or "Training using Adam" (training; it has no LoRA mode, so LoRA
    gets the load size). Built the way its create_empty_model builds (AutoModel)."""
    config = hf_config(req.model)
    if config is None:
        return None, "not comparable (not a transformers model)"
    try:
        from accelerate import init_empty_weights  # type: ignore[import-not-found]
        from accelerate.commands.estimate import (  # type: ignore[import-not-found]
            calculate_maximum_sizes,
            estimate_training_usage,
        )
        from transformers import AutoConfig, AutoModel  # type: ignore[import-not-found]
    except ImportError as exc:
        return None, f"not comparable ({exc.name} is not installed)"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "config.json").write_text(json.dumps(config))
            cfg = AutoConfig.from_pretrained(tmp)
            with init_empty_weights():
                model = AutoModel.from_config(cfg)
        total, _ = calculate_maximum_sizes(model)
    except Exception as exc:  # another transformers or accelerate version: a side column
        return None, f"not comparable ({type(exc).__name__}: {str(exc)[:80]})"
    if req.mode == "infer":
        return total / 2, "float16 total size"
    if req.lora:
        return total / 2, "float16 total size (no LoRA mode)"
    return float(max(estimate_training_usage(total, "float16").values())), "Adam, float16"


# -- running ----------------------------------------------------------------------------


def run_case(name: str, req: FitRequest, args: argparse.Namespace) -> dict[str, Any]:
    est = estimate(req)
    row: dict[str, Any] = {"case": name, "predicted_bytes": est.total_bytes, "estimate": est}
    acc, basis = accelerate_estimate(req)
    row |= {"accelerate_bytes": acc, "accelerate_basis": basis}
    t0 = time.perf_counter()
    if args.simulate:
        from gpuscout.fit.measure.simulate import simulate_peak

        sim = simulate_peak(req)
        row |= {"kind": "simulated", "measured_bytes": sim["peak_bytes"], "simulation": sim}
        row["predicted_bytes"] = est.total_bytes - est.overhead_bytes  # the allocator's part
    else:
        m = measure(req, args.device, search=False, timeout_s=args.timeout)
        row |= {"kind": "measured", "measured_bytes": m.peak_bytes, "measurement": m}
    row["seconds"] = round(time.perf_counter() - t0, 1)
    measured = row["measured_bytes"]
    for key in ("predicted", "accelerate"):
        value = row[f"{key}_bytes"]
        ok = measured and value is not None
        row[f"{key}_error_pct"] = (value - measured) / measured * 100 if ok else None
    return row


def _gib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / GIB:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def markdown_header(kind: str) -> str:
    return (
        f"| case | fit predicted GiB | {kind} GiB | fit error | accelerate GiB | accelerate "
        "error | accelerate basis | context GiB |\n|---|---:|---:|---:|---:|---:|---|---:|"
    )


def markdown_row(r: dict[str, Any]) -> str:
    m = r.get("measurement")
    context = _gib(m.context_bytes) if m is not None else "n/a"
    if m is not None and m.status != "ok":
        context = f"{m.status}: {(m.error or '')[-60:]}"
    return (
        f"| {r['case']} | {_gib(r['predicted_bytes'])} | {_gib(r['measured_bytes'])} | "
        f"{_pct(r['predicted_error_pct'])} | {_gib(r['accelerate_bytes'])} | "
        f"{_pct(r['accelerate_error_pct'])} | {r['accelerate_basis']} | {context} |"
    )


def write_json(path: Path, rows: list[dict[str, Any]], kind: str) -> None:
    doc = {
        "date": time.strftime("%Y-%m-%d"),
        "host": platform.node(),
        "python": platform.python_version(),
        "kind": kind,
        "command": " ".join(sys.argv),
        "rows": rows,
    }
    path.write_text(json.dumps(to_jsonable(doc), indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--out", type=Path, help="write the JSON here")
    ap.add_argument("--only", help="only cases whose name contains this text")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    ap.add_argument("--simulate", action="store_true", help="fake tensors on the CPU, no GPU")
    args = ap.parse_args(argv)
    todo = [(n, r) for n, r in cases() if not args.only or args.only in n]
    kind = "simulated (allocator only)" if args.simulate else "measured"
    print(markdown_header(kind), flush=True)
    rows: list[dict[str, Any]] = []
    for name, req in todo:
        print(f"... {name}", file=sys.stderr, flush=True)
        rows.append(run_case(name, req, args))
        # Row by row, so a run stopped part-way (a time limit) keeps what it measured.
        print(markdown_row(rows[-1]), flush=True)
        if args.out:
            write_json(args.out, rows, kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
