"""Two runs side by side: every figure both measured, B/A, and what differs between them.

Results are matched by name and device kind ("cpu" or "gpu"), not by device string: a
run from another machine may call its GPU cuda:1, and cuda:0 there is not cuda:0 here.
Where a run measured several GPUs, the n-th GPU of A is matched with the n-th of B.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpuscout._types import Result, RunRecord
from gpuscout.report import fmt
from gpuscout.store import Store

# Units where a smaller figure is the better one (latencies, times).
LOWER_IS_BETTER = frozenset({"s", "ms", "us", "µs", "ns"})

# The fingerprint fields that decide performance, in the order they are shown.
ENV_FIELDS = (
    ("host", "Host"),
    ("gpus", "GPUs"),
    ("driver_version", "NVIDIA driver"),
    ("driver_cuda_version", "Driver CUDA"),
    ("torch_version", "PyTorch"),
    ("torch_cuda_build", "PyTorch CUDA build"),
    ("cudnn_version", "cuDNN"),
    ("cpu_model", "CPU"),
    ("physical_cores", "CPU cores"),
    ("ram_total_bytes", "RAM"),
    ("os", "OS"),
    ("container", "Container"),
    ("python_version", "Python"),
    ("gpuscout_version", "gpuscout"),
)


@dataclass(frozen=True)
class ComparedResult:
    name: str
    device: str  # "cpu", "gpu 0", "gpu 1" ...
    device_a: str | None  # the device strings each run used, None where it lacks the result
    device_b: str | None
    unit: str
    figure_a: float | None
    figure_b: float | None
    ratio: float | None  # B / A
    b_better: bool | None  # does B do better (higher throughput, lower latency)?


@dataclass(frozen=True)
class EnvDifference:
    field: str
    label: str
    a: str
    b: str


@dataclass(frozen=True)
class Comparison:
    run_a: RunRecord
    run_b: RunRecord
    results: tuple[ComparedResult, ...]  # in both runs, A's order
    only_a: tuple[str, ...]  # "name on device"
    only_b: tuple[str, ...]
    differences: tuple[EnvDifference, ...]


def _kinds(results: Sequence[Result]) -> dict[str, str]:
    """Device string -> "cpu" / "gpu N" (GPUs numbered in device-index order)."""
    out: dict[str, str] = {}
    gpus = sorted({r.device for r in results if r.device != "cpu"}, key=_device_order)
    for i, d in enumerate(gpus):
        out[d] = f"gpu {i}"
    out["cpu"] = "cpu"
    return out


def _device_order(device: str) -> tuple[str, int]:
    head, _, tail = device.partition(":")
    return (head, int(tail)) if tail.isdigit() else (device, 0)


def _keyed(results: Sequence[Result]) -> dict[tuple[str, str], Result]:
    kinds = _kinds(results)
    return {(r.name, kinds[r.device]): r for r in results}


def _value(fp: Mapping[str, Any], key: str) -> str:
    if key == "gpus":
        return fmt.gpu_list(fp)
    value = fp.get(key)
    if key == "ram_total_bytes":
        return fmt.gib(value) if isinstance(value, (int, float)) else fmt.NA
    return fmt.NA if value is None or value == "" else str(value)


def env_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[EnvDifference]:
    return [
        EnvDifference(key, label, _value(a, key), _value(b, key))
        for key, label in ENV_FIELDS
        if _value(a, key) != _value(b, key)
    ]


def _ok(r: Result | None) -> float | None:
    return r.figure if r is not None and r.status == "ok" else None


def _row(name: str, kind: str, ra: Result, rb: Result) -> ComparedResult:
    fa, fb = _ok(ra), _ok(rb)
    ratio = fb / fa if fa and fb is not None else None
    better = None
    if ratio is not None and ratio != 1.0:
        better = ratio < 1 if ra.unit in LOWER_IS_BETTER else ratio > 1
    return ComparedResult(name, kind, ra.device, rb.device, ra.unit, fa, fb, ratio, better)


def _family(name: str) -> str | None:
    """ "matmul/bf16/8192" -> "matmul/bf16": results that differ only in problem size."""
    head, _, size = name.rpartition("/")
    return head if head and size.isdigit() else None


def _best_by_family(
    keyed: dict[tuple[str, str], Result], keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Result]:
    best: dict[tuple[str, str], Result] = {}
    for name, kind in keys:
        family, r = _family(name), keyed[(name, kind)]
        figure = _ok(r)
        if family is None or figure is None:
            continue
        old = best.get((family, kind))
        sign = -1.0 if r.unit in LOWER_IS_BETTER else 1.0  # the best latency is the smallest
        if old is None or sign * figure > sign * (_ok(old) or 0.0):
            best[(family, kind)] = r
    return best


def compare_results(
    a: Sequence[Result], b: Sequence[Result]
) -> tuple[list[ComparedResult], list[str], list[str]]:
    """Rows for what both measured; where the sizes differ (a quick run on one machine, a
    full one on the other), each benchmark's best size is compared as "NAME (best size)"."""
    ka, kb = _keyed(a), _keyed(b)
    rows = [_row(key[0], key[1], ra, kb[key]) for key, ra in ka.items() if key in kb]
    left_a = [k for k in ka if k not in kb]
    left_b = [k for k in kb if k not in ka]
    best_a, best_b = _best_by_family(ka, left_a), _best_by_family(kb, left_b)
    paired = set(best_a) & set(best_b)
    for family, kind in sorted(paired):
        rows.append(
            _row(f"{family} (best size)", kind, best_a[(family, kind)], best_b[(family, kind)])
        )
    only_a = [f"{n} on {d}" for n, d in left_a if (_family(n), d) not in paired]
    only_b = [f"{n} on {d}" for n, d in left_b if (_family(n), d) not in paired]
    return rows, only_a, only_b


def compare_runs(store: Store, run_a: int, run_b: int) -> Comparison:
    """UsageError (via the store) when either run does not exist."""
    ra, rb = store.get_run(run_a), store.get_run(run_b)
    rows, only_a, only_b = compare_results(store.results(run_a), store.results(run_b))
    diffs = env_differences(ra.fingerprint, rb.fingerprint)
    return Comparison(ra, rb, tuple(rows), tuple(only_a), tuple(only_b), tuple(diffs))
