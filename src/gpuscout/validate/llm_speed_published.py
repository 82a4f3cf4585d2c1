"""``predict_llm_speed`` held against published llama.cpp speeds, out of sample.

The rows live in tests/predict/fixtures/llm_speed_published.toml with the rule that picks
the calibration rows (the first and the last device by bandwidth in each device class).
``fit`` refits each class's efficiencies on those rows only (decode: least squares on
seconds per token = bytes / bandwidth / eff + layers x t_layer; prefill: the geometric
mean of measured over ideal rate); ``held_out`` predicts every other row with the
constants in ``predict.llm_speed``; ``markdown`` renders the table in
docs/predict-published.md. ``python -m gpuscout.validate.llm_speed_published`` prints it.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gpuscout.catalog import find_gpu
from gpuscout.fit import load_model
from gpuscout.predict.llm_speed import (
    DEVICE_CLASSES,
    HOST_TFLOPS,
    Device,
    Efficiency,
    efficiency_for,
    gpu_device,
    infer_request,
    predict_llm_speed,
    prefill_rate,
    token_cost,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FIXTURE: Final = (
    Path(__file__).resolve().parents[3]
    / "tests"
    / "predict"
    / "fixtures"
    / "llm_speed_published.toml"
)


@dataclass(frozen=True)
class Row:
    """One published figure with the device it ran on."""

    id: str
    device: Device
    sort_key: str  # the device's name for the rule's ties (catalog id for catalog GPUs)
    model: str
    format: str
    engine: str
    test: str  # "pp512" or "tg128"
    tokens_per_s: float
    url: str

    @property
    def tokens(self) -> int:
        return int(self.test[2:])

    @property
    def context(self) -> int:
        """The mean cache length over the test's tokens (llama-bench starts each empty)."""
        return self.tokens // 2


def _device(raw: Mapping[str, Any]) -> tuple[Device, str]:
    if "gpu" in raw:
        gpu = find_gpu(raw["gpu"])
        return gpu_device(gpu), gpu.id
    # a CPU row without FLOPS is a decode (tg) row: the default rate only fills the field
    tflops = raw.get("tflops", HOST_TFLOPS)
    dev = Device(raw["device"], raw["device_class"], raw["bandwidth_gbs"], tflops)
    return dev, raw["device"]


def load_rows(path: Path = FIXTURE) -> list[Row]:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    rows = []
    for raw in doc["row"]:
        device, key = _device(raw)
        rows.append(
            Row(
                raw["id"],
                device,
                key,
                raw["model"],
                raw["format"],
                raw["engine"],
                raw["test"],
                raw["tokens_per_s"],
                raw["url"],
            )
        )
    return rows


def calibration_devices(rows: Sequence[Row]) -> dict[str, tuple[str, ...]]:
    """The fixture's rule: per class, devices ordered by (bandwidth, name); the first and
    the last calibrate (only the first in a class of fewer than three)."""
    out: dict[str, tuple[str, ...]] = {}
    for kind in DEVICE_CLASSES:
        devices = sorted(
            {(r.device.bandwidth_gbs, r.sort_key) for r in rows if r.device.kind == kind}
        )
        if not devices:
            continue
        names = [d[1] for d in devices]
        out[kind] = (names[0],) if len(names) < 3 else (names[0], names[-1])
    return out


def is_calibration(row: Row, chosen: Mapping[str, tuple[str, ...]]) -> bool:
    return row.sort_key in chosen.get(row.device.kind, ())


def _request(row: Row) -> Any:
    return infer_request(load_model(row.model), row.format, row.engine, row.context)


def fit(rows: Sequence[Row]) -> dict[str, Efficiency]:
    """Each class's efficiencies from its calibration rows alone."""
    chosen = calibration_devices(rows)
    out = {}
    for kind, names in chosen.items():
        cal = [r for r in rows if r.device.kind == kind and r.sort_key in names]
        decode, layer_s = _fit_decode([r for r in cal if r.test.startswith("tg")], len(names) > 1)
        prefill = _fit_prefill([r for r in cal if r.test.startswith("pp")])
        out[kind] = Efficiency(decode, layer_s, prefill, f"fitted on {', '.join(names)}")
    return out


def _fit_decode(rows: Sequence[Row], with_layers: bool) -> tuple[float, float]:
    """Least squares of seconds per token on (bytes / bandwidth, layers): 1 / eff and
    t_layer (t_layer 0 without ``with_layers``)."""
    xs, ls, ys = [], [], []
    for r in rows:
        cost = token_cost(_request(r), r.context)
        xs.append(cost.total_bytes / (r.device.bandwidth_gbs * 1e9))
        ls.append(float(len(cost.layer_bytes)))
        ys.append(1.0 / r.tokens_per_s)
    if not with_layers:
        return sum(x * x for x in xs) / sum(x * y for x, y in zip(xs, ys, strict=True)), 0.0
    sxx = sum(x * x for x in xs)
    sll = sum(v * v for v in ls)
    sxl = sum(x * v for x, v in zip(xs, ls, strict=True))
    sxy = sum(x * y for x, y in zip(xs, ys, strict=True))
    sly = sum(v * y for v, y in zip(ls, ys, strict=True))
    det = sxx * sll - sxl * sxl
    inv_eff = (sxy * sll - sly * sxl) / det
    layer_s = (sxx * sly - sxl * sxy) / det
    return 1.0 / inv_eff, layer_s


def _fit_prefill(rows: Sequence[Row]) -> float:
    """The geometric mean of measured tokens/s over the rate's ideal tokens/s."""
    if not rows:
        return 0.0
    logs = []
    for r in rows:
        req = _request(r)
        rate, _ = prefill_rate(r.engine, req.dtype, r.device)
        logs.append(math.log(r.tokens_per_s * token_cost(req, r.context).flops / rate))
    return math.exp(sum(logs) / len(logs))


@dataclass(frozen=True)
class Comparison:
    row: Row
    predicted: float
    calibration: bool

    @property
    def error(self) -> float:
        return self.predicted / self.row.tokens_per_s - 1.0


def compare(rows: Sequence[Row]) -> list[Comparison]:
    """Every row predicted with the constants in predict.llm_speed."""
    chosen = calibration_devices(rows)
    out = []
    for r in rows:
        speed = predict_llm_speed(_request(r), r.device, context=r.context)
        tps = speed.decode_tokens_per_s if r.test.startswith("tg") else speed.prefill_tokens_per_s
        out.append(Comparison(r, tps, is_calibration(r, chosen)))
    return out


def median_abs(errors: Sequence[float]) -> float:
    return statistics.median(abs(e) for e in errors) if errors else math.nan


def _pct(x: float) -> str:
    return f"{x:+.1%}".replace("%", "%")


def markdown(comparisons: Sequence[Comparison]) -> str:
    """The held-out table and the medians, per class and test and over all."""
    held = [c for c in comparisons if not c.calibration]
    lines = [
        "| device | class | format | test | published t/s | predicted t/s | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in held:
        r = c.row
        lines.append(
            f"| {r.device.name} | {r.device.kind} | {r.format} | {r.test} | "
            f"{r.tokens_per_s:,.2f} | {c.predicted:,.2f} | {_pct(c.error)} |"
        )
    lines += ["", "| class | test | held-out rows | median abs error |", "|---|---|---|---|"]
    for kind in DEVICE_CLASSES:
        for test in ("pp512", "tg128"):
            errs = [c.error for c in held if c.row.device.kind == kind and c.row.test == test]
            if errs:
                lines.append(f"| {kind} | {test} | {len(errs)} | {median_abs(errs):.1%} |")
    lines.append(
        f"| **all** | pp + tg | {len(held)} | **{median_abs([c.error for c in held]):.1%}** |"
    )
    return "\n".join(lines)


def constants_table(fitted: Mapping[str, Efficiency]) -> str:
    lines = [
        "| class | decode eff | t_layer (us) | prefill eff | calibration devices |",
        "|---|---|---|---|---|",
    ]
    for kind, eff in fitted.items():
        used = efficiency_for("llama.cpp", kind)
        lines.append(
            f"| {kind} | {used.decode:.3f} | {used.layer_s * 1e6:.1f} | {used.prefill:.3f} | "
            f"{eff.source.removeprefix('fitted on ')} |"
        )
    return "\n".join(lines)


def main() -> None:
    rows = load_rows()
    fitted = fit(rows)
    for kind, eff in fitted.items():
        print(
            f"{kind}: decode {eff.decode:.4f} layer_s {eff.layer_s:.3e} prefill {eff.prefill:.4f}"
        )
    print(constants_table(fitted))
    print()
    print(markdown(compare(rows)))


if __name__ == "__main__":
    main()
