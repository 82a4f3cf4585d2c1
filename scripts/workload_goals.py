"""Measure the workload goals of issue 4 and print one JSON object.

    python scripts/workload_goals.py                   # on a GPU machine: cuda:0
    python scripts/workload_goals.py --device cpu --only mlp
    python scripts/workload_goals.py --device cpu --only quick

Goals (H100), each measured in isolated worker processes through gpuscout itself:

- mlp: Fashion-MNIST MLP, 5 epochs at batch 32. Tutorial loop vs tuned (data on the
  device, CUDA graph of many whole training steps). Goal: tuned <= 1.0 s (the tutorial
  loop takes ~18.6 s). On a CPU the goal is tuned >= 1.25x the tutorial loop.
- cnn: ResNet-50, bf16, batch 256, channels_last, fused SGD: eager vs torch.compile.
- llm: llama-1.1b (TinyLlama shape), batch-1 decoding, tuned (static KV cache, bf16,
  compile/CUDA graphs) vs the bandwidth bound (weight bytes / device bandwidth).
- quick: the set `gpuscout run` uses (mlp + small cnn, both implementations, every
  device), with its wall time.

Ceilings come from the latest `gpuscout bench micro` run in ``--db`` when there is one,
else from the catalog's datasheet; the output says which.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

from gpuscout._types import Result, to_jsonable
from gpuscout.workloads import QUICK_WORKLOADS, run_workloads, verdict


def _brief(r: Result) -> dict[str, Any]:
    e = r.extra
    keys = (
        "time_s", "step_time_s", "accuracy", "loss", "epochs", "batch_size", "dtype", "compile",
        "compile_error", "cuda_graphs", "decode_mode", "peak_mem_bytes", "nvml_peak_mem_bytes",
        "energy_j", "achieved_tflops", "fraction_of_ceiling", "ceiling_kind", "ceiling_value",
        "ceiling_source", "bandwidth_achieved_gbs", "weight_bytes", "ms_per_token", "cold_s",
        "synthetic_data", "device_name", "torch_version", "threads",
    )  # fmt: skip
    out: dict[str, Any] = {"name": r.name, "device": r.device, "status": r.status}
    out["figure"], out["unit"], out["error"] = r.figure, r.unit, r.error
    out |= {k: e[k] for k in keys if k in e}
    return out


def _pick(results: list[Result], name: str) -> Result | None:
    return next((r for r in results if r.name == name and r.status == "ok"), None)


def goal_mlp(device: str, db: str | None) -> dict[str, Any]:
    results = run_workloads("mlp", device, "both", epochs=5, batch_size=32, db=db)
    ref, tuned = _pick(results, "mlp/reference"), _pick(results, "mlp/tuned")
    out: dict[str, Any] = {"results": [_brief(r) for r in results]}
    if ref and tuned:
        t_ref, t_tuned = ref.extra["time_s"], tuned.extra["time_s"]
        out["speedup"] = t_ref / t_tuned
        if device.startswith("cuda"):
            out["goal"] = "tuned <= 1.0 s for 5 epochs at batch 32"
            out["met"] = t_tuned <= 1.0
        else:
            out["goal"] = "tuned >= 1.25x the tutorial loop"
            out["met"] = t_ref / t_tuned >= 1.25
    return out


def goal_cnn(device: str, db: str | None) -> dict[str, Any]:
    kw: dict[str, Any] = {"model": "resnet50", "batch_size": 256, "db": db, "steps": 20}
    eager = run_workloads("cnn", device, "tuned", compile=False, **kw)
    compiled = run_workloads("cnn", device, "tuned", compile=True, **kw)
    ref = run_workloads("cnn", device, "reference", **kw)
    out: dict[str, Any] = {
        "eager": [_brief(r) for r in eager],
        "compiled": [_brief(r) for r in compiled],
        "reference_fp32": [_brief(r) for r in ref],
    }
    e, c = _pick(eager, "cnn/tuned"), _pick(compiled, "cnn/tuned")
    if e and c and e.figure and c.figure:
        out["compile_speedup"] = c.figure / e.figure
    return out


def goal_llm(device: str, db: str | None) -> dict[str, Any]:
    results = run_workloads("llm", device, "both", model="llama-1.1b", batch_size=8, db=db)
    out: dict[str, Any] = {"results": [_brief(r) for r in results]}
    tuned = _pick(results, "llm/tuned/decode-b1")
    if tuned and tuned.extra.get("ceiling_value"):
        bound = tuned.extra["ceiling_value"] * 1e9 / tuned.extra["weight_bytes"]
        out["bandwidth_bound_tokens_per_s"] = bound
        out["tuned_fraction_of_bound"] = (tuned.figure or 0.0) / bound
        out["bound_source"] = tuned.extra.get("ceiling_source")
        out["goal"] = "gpt-fast reaches ~75-80% of bandwidth at batch 1"
    return out


def quick_set(db: str | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    results = run_workloads(QUICK_WORKLOADS, "all", "both", quick=True, db=db)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "results": [_brief(r) for r in results], "verdict": verdict(results)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--only", default="mlp,cnn,llm", help="comma list of mlp, cnn, llm, quick")
    ap.add_argument("--db", default=None, help="results database with bench micro ceilings")
    args = ap.parse_args(argv)
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    report: dict[str, Any] = {
        "host": platform.node(),
        "device": args.device,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    goals = {"mlp": goal_mlp, "cnn": goal_cnn, "llm": goal_llm}
    for name in wanted:
        if name == "quick":
            report["quick"] = quick_set(args.db)
        else:
            report[name] = goals[name](args.device, args.db)
    print(json.dumps(to_jsonable(report), indent=2))


if __name__ == "__main__":
    main()
