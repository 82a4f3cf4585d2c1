"""Check the predictor against measurements: calibrate on one GPU, predict another.

Given two runs of the same workloads on two GPUs (e.g. an H100 and an H200), each
measured workload figure of run A is calibrated on A's GPU and projected onto B's GPU,
and compared with what B measured; then the other way round. Prints, per workload
figure and direction, the measured and predicted step times and the absolute error,
then the median absolute error (the goal: <= 15%).

    python scripts/predict_validate.py --a h100.db --b h200.db          # newest runs
    python scripts/predict_validate.py --db all.db --runs 3 7 --json    # one store

It invents no figures: with no GPU-measured workload on either side it says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from gpuscout._types import Result
from gpuscout.predict.basis import Basis, bases, local_ceilings, measured_gpu_host_op_s
from gpuscout.predict.project import (
    MICRO_PREFIXES,
    calibration_for,
    measured_spec,
    project_one,
    run_results,
)


def _key(b: Basis) -> tuple[str, str, str | None]:
    return (b.workload, b.impl, b.variant)


def _gpu_bases(results: Sequence[Result]) -> dict[tuple[str, str, str | None], Basis]:
    return {_key(b): b for b in bases(results) if b.on_gpu}


def direction(source: Sequence[Result], target: Sequence[Result]) -> list[dict[str, Any]]:
    """Every figure measured on a GPU in both: calibrated on ``source``, predicted for
    ``target``'s GPU, against ``target``'s measurement."""
    ceilings = local_ceilings(source)
    host = measured_gpu_host_op_s(ceilings)
    src, dst = _gpu_bases(source), _gpu_bases(target)
    rows = []
    for key in sorted(set(src) & set(dst), key=str):
        a, b = src[key], dst[key]
        spec = measured_spec(b)  # an unknown GPU cannot be a projection target
        row: dict[str, Any] = {
            "workload": "/".join(k for k in key if k),
            "from": a.device_name,
            "to": b.device_name,
            "measured_step_s": b.step_s,
        }
        if spec is None:
            rows.append(row | {"error": f"{b.device_name} is not in the catalog"})
            continue
        c, _ = calibration_for(a, ceilings, host)
        p = project_one(c, spec)
        if p is None or not c.cal.calibrated:
            rows.append(row | {"error": "could not calibrate on the source GPU"})
            continue
        # Compared as throughput, so a different batch on the two sides still compares.
        predicted = b.samples_per_step / p.throughput
        row |= {
            "predicted_step_s": predicted,
            "predicted_low_s": predicted * p.step_low_s / p.step_s,
            "predicted_high_s": predicted * p.step_high_s / p.step_s,
            "abs_error": abs(predicted - b.step_s) / b.step_s,
            "bound": p.bound,
            "same_batch": a.batch_size == b.batch_size,
        }
        rows.append(row)
    return rows


def validate(results_a: Sequence[Result], results_b: Sequence[Result]) -> dict[str, Any]:
    forward, backward = direction(results_a, results_b), direction(results_b, results_a)
    errors = [r["abs_error"] for r in forward + backward if "abs_error" in r]
    return {
        "a_to_b": forward,
        "b_to_a": backward,
        "median_abs_error": statistics.median(errors) if errors else None,
        "figures": len(errors),
    }


def _load(path: str, run_id: int | None, datasheet: bool) -> list[Result]:
    from gpuscout.store import Store

    with Store.open(path) as store:
        _, results, _ = run_results(store, run_id)
    if datasheet:  # drop measured ceilings: calibrate against the catalog instead
        results = [r for r in results if not r.name.startswith(MICRO_PREFIXES)]
    return results


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--a", help="store file of run A (default: --db)")
    ap.add_argument("--b", help="store file of run B (default: --db)")
    ap.add_argument("--db", help="one store holding both runs")
    ap.add_argument(
        "--runs", nargs=2, type=int, metavar=("A", "B"), help="run ids (default: newest)"
    )
    ap.add_argument("--datasheet", action="store_true", help="ignore measured ceilings")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)
    path_a, path_b = args.a or args.db, args.b or args.db
    if path_a is None or path_b is None:
        ap.error("give --a and --b, or --db with --runs")
    run_a, run_b = args.runs if args.runs else (None, None)
    if path_a == path_b and run_a is None:
        ap.error("one store needs --runs A B")
    report = validate(_load(path_a, run_a, args.datasheet), _load(path_b, run_b, args.datasheet))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for name in ("a_to_b", "b_to_a"):
        for r in report[name]:
            if "error" in r:
                print(f"{r['workload']:28} {r['from']} -> {r['to']}: {r['error']}")
                continue
            print(
                f"{r['workload']:28} {r['from']} -> {r['to']}: measured "
                f"{r['measured_step_s'] * 1e3:9.3f} ms, "
                f"predicted {r['predicted_step_s'] * 1e3:9.3f} ms "
                f"({r['predicted_low_s'] * 1e3:.3f}-{r['predicted_high_s'] * 1e3:.3f}), "
                f"error {r['abs_error']:6.1%}, {r['bound']}-bound"
            )
    med = report["median_abs_error"]
    if med is None:
        print("no workload was measured on a catalog GPU in both runs: nothing to compare")
        return 1
    print(f"median absolute error over {report['figures']} figures: {med:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
