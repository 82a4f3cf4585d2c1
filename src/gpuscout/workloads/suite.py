"""``run_workloads``: each (workload, device, implementation) in its own worker process.

Names, models and devices are checked before anything heavy starts (a typo costs
nothing). Each run is isolated (DESIGN rule 12): an out-of-memory error, a crash or a
hang becomes a Result with status "oom", "failed" or "timeout", and the suite goes on.
Ceilings are attached afterwards, in this process, from the store or the catalog.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gpuscout._types import Result, Stats
from gpuscout.errors import GpuscoutError, UsageError
from gpuscout.probe.devices import DEVICE_HINT as DEVICE_HINT
from gpuscout.probe.devices import resolve_devices as _resolve_devices
from gpuscout.timing.load import host_load, mark_busy
from gpuscout.workloads import registry
from gpuscout.workloads.base import IMPLS, WorkloadConfig
from gpuscout.workloads.ceilings import Ceiling, attach, from_catalog, from_store

# (label, done, total): called before each run and once at the end (label "done").
Progress = Callable[[str, int, int], None]

UNITS = {"mlp": "samples/s", "cnn": "images/s", "encoder": "sequences/s", "llm": "tokens/s"}
TIMEOUT_S = {"mlp": 900.0, "cnn": 1200.0, "encoder": 1800.0, "llm": 2400.0}
QUICK_TIMEOUT_S = 300.0
# What `gpuscout run` measures: the seed experiment and a small CNN, on every device.
QUICK_WORKLOADS = ("mlp", "cnn")
# On a CPU the quick MLP trains 1 epoch on 20,000 images instead of 5 on 60,000, to keep
# `gpuscout run` near a minute on two cores; the GPU keeps the tutorial's full run.
QUICK_CPU_MLP = {"epochs": 1, "limit_samples": 20_000}


def available_devices() -> list[str]:
    try:
        import torch
    except ImportError as exc:
        raise GpuscoutError(
            f"workloads need PyTorch, which cannot be imported ({exc})",
            "pip install torch  (see https://pytorch.org/get-started/locally/)",
        ) from None
    return ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]


def resolve_devices(
    spec: str | Sequence[str] | None, available: Sequence[str] | None = None
) -> list[str]:
    """cpu, cuda, cuda:N, all (and comma lists) -> device strings, or UsageError."""
    return _resolve_devices(
        spec, (lambda: available) if available is not None else available_devices
    )


def resolve_names(names: str | Sequence[str]) -> list[str]:
    items = [names] if isinstance(names, str) else list(names)
    words = [w.strip().lower() for item in items for w in item.split(",") if w.strip()]
    if not words or "all" in words:
        return registry.names()
    return [registry.check(w) for w in dict.fromkeys(words)]


def resolve_impls(impl: str) -> tuple[str, ...]:
    if impl == "both":
        return IMPLS
    if impl not in IMPLS:
        raise UsageError(f"unknown implementation {impl!r}", "use reference, tuned or both")
    return (impl,)


def plan(
    names: str | Sequence[str],
    devices: Sequence[str],
    impl: str = "both",
    *,
    quick: bool = False,
    options: Mapping[str, Any] | None = None,
    **fields: Any,
) -> list[WorkloadConfig]:
    """The configs to run, in order: workload, then device, then implementation."""
    wanted = resolve_names(names)
    if fields.get("model") is not None and len(wanted) > 1:
        raise UsageError("--model applies to one workload", "name one workload with --model")
    for name in wanted:
        registry.check_model(name, fields.get("model"))
    configs = []
    for name in wanted:
        for device in devices:
            for which in resolve_impls(impl):
                f = dict(fields)
                if quick and name == "mlp" and device == "cpu":
                    for key, value in QUICK_CPU_MLP.items():
                        f[key] = f.get(key) or value
                configs.append(
                    WorkloadConfig(
                        name, device, which, quick=quick, options=dict(options or {}), **f
                    )
                )
    return configs


def _label(cfg: WorkloadConfig) -> str:
    return f"{cfg.name} {cfg.impl} on {cfg.device}"


def to_results(cfg: WorkloadConfig, status: str, value: Any, error: str | None) -> list[Result]:
    """Results from what a worker sent back (or the outcome's failure)."""
    base = f"{cfg.name}/{cfg.impl}"
    common = {"workload": cfg.name, "impl": cfg.impl, "quick": cfg.quick}
    if status != "ok" or not isinstance(value, dict):
        text = (error or "no result").rstrip()
        last = text.splitlines()[-1] if text else status
        extra = common | ({"traceback": text} if "Traceback" in text else {})
        return [Result(base, cfg.device, None, UNITS[cfg.name], status, error=last, extra=extra)]
    env = value.get("env", {})
    out = []
    for fig in value.get("figures", []):
        variant = fig.get("variant")
        name = f"{base}/{variant}" if variant else base
        extra = dict(fig.get("extra", {})) | env | common | {"variant": variant}
        figure = fig.get("figure")
        stats = Stats(**fig["stats"]) if fig.get("stats") else None
        if figure is None or not math.isfinite(float(figure)):
            out.append(
                Result(
                    name,
                    cfg.device,
                    None,
                    fig["unit"],
                    "failed",
                    stats,
                    None,
                    f"non-finite figure {figure}",
                    extra,
                )
            )
        else:
            out.append(
                Result(name, cfg.device, float(figure), fig["unit"], "ok", stats, extra=extra)
            )
    return out


def _run(cfg: WorkloadConfig, isolate: bool, timeout_s: float, comparison: bool) -> list[Result]:
    from gpuscout.workloads import child

    fn = child.run_comparison if comparison else child.run_one
    if not isolate:  # in-process, for tests and debugging: no timeout, no crash guard
        try:
            return to_results(cfg, "ok", fn(dataclasses.asdict(cfg)), None)
        except Exception as exc:
            from gpuscout.isolate import is_oom

            return to_results(cfg, "oom" if is_oom(exc) else "failed", None, repr(exc))
    from gpuscout.isolate import run_isolated

    out = run_isolated(
        fn,
        {"cfg": dataclasses.asdict(cfg)},
        timeout_s=timeout_s,
        stdout="devnull" if comparison else "stderr",
    )
    return to_results(cfg, out.status, out.value, out.error)


def device_ceiling(
    device: str, results: Sequence[Result], db: Path | str | None, given: Ceiling | None
) -> Ceiling:
    """The caller's ceiling, else measured (store), else the catalog's datasheet."""
    measured = given if given is not None else from_store(db, device)
    sample = next((r for r in results if r.device == device and r.status == "ok"), None)
    name = sample.extra.get("device_name") if sample else None
    memory = sample.extra.get("memory_total_bytes") if sample else None
    return measured.merged(from_catalog(name, memory)) if device != "cpu" else measured


def run_workloads(
    names: str | Sequence[str],
    devices: str | Sequence[str] | None = "all",
    impl: str = "both",
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    model: str | None = None,
    data_dir: str | Path | None = None,
    limit_samples: int | None = None,
    steps: int | None = None,
    seq_len: int | None = None,
    seed: int = 0,
    compile: bool | None = None,
    quick: bool = False,
    compare: bool = False,
    options: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
    db: Path | str | None = None,
    ceilings: Mapping[str, Ceiling] | None = None,
    progress: Progress | None = None,
    isolate: bool = True,
) -> list[Result]:
    """Run workloads ``names`` ("all", one, or several) on ``devices`` with ``impl``
    ("reference", "tuned" or "both"); one Result per figure, failures included.

    ``compile`` None lets each workload decide (on for tuned GPU runs). ``quick`` is
    the set ``gpuscout run`` uses. ``compare`` adds the optional Keras
    (mlp) and Hugging Face (llm) programs, "skipped" when not installed. ``db`` is where
    measured ceilings are looked up; ``ceilings`` (device -> Ceiling) overrides that.
    Raises UsageError / UnknownNameError for bad names before running anything.
    """
    devs = resolve_devices(devices)
    fields = {
        "epochs": epochs,
        "batch_size": batch_size,
        "model": model,
        "data_dir": None if data_dir is None else str(data_dir),
        "limit_samples": limit_samples,
        "steps": steps,
        "seq_len": seq_len,
        "seed": seed,
        "compile": compile,
    }
    configs = plan(names, devs, impl, quick=quick, options=options, **fields)
    if compare:  # one comparison per (workload, device) that has a comparison program
        pairs = dict.fromkeys((c.name, c.device) for c in configs if c.name in registry.COMPARISONS)
        first = {(c.name, c.device): c for c in reversed(configs)}
        configs += [
            dataclasses.replace(
                first[p], impl="tuned", options=dict(first[p].options) | {"compare": True}
            )
            for p in pairs
        ]
    if data_dir is None and any(c.name == "mlp" for c in configs):
        from gpuscout.data.datasets import FASHION, prefetch

        note = prefetch(FASHION)  # once, here: workers only read the cache
        configs = [
            dataclasses.replace(c, options=dict(c.options) | {"data_note": note})
            if c.name == "mlp"
            else c
            for c in configs
        ]
    results: list[Result] = []
    for i, cfg in enumerate(configs):
        comparison = bool(cfg.options.get("compare"))
        label = _label(cfg) if not comparison else f"{cfg.name} comparison on {cfg.device}"
        if progress is not None:
            progress(label, i, len(configs))
        if comparison:
            results.extend(_comparison(cfg, isolate, timeout_s))
            continue
        limit = timeout_s or (QUICK_TIMEOUT_S if quick else TIMEOUT_S[cfg.name])
        # Other processes' load over the worker's whole life (the worker's own CPU time
        # is subtracted once it is reaped): a busy neighbour is recorded on the figure.
        with host_load() as load:
            got = _run(cfg, isolate, limit, comparison=False)
        results.extend(mark_busy(got, load.busy_pct))
    if progress is not None:
        progress("done", len(configs), len(configs))
    given = dict(ceilings or {})
    for device in devs:
        ceiling = device_ceiling(device, results, db, given.get(device))
        results = [attach(r, ceiling) if r.device == device else r for r in results]
    return results


def _comparison(cfg: WorkloadConfig, isolate: bool, timeout_s: float | None) -> list[Result]:
    from gpuscout.workloads.third_party import available

    program = registry.COMPARISONS[cfg.name]
    ccfg = dataclasses.replace(cfg, impl="tuned")
    why = available(cfg.name)
    name = f"{cfg.name}/{program}"
    if why is not None:
        return [
            Result(
                name,
                cfg.device,
                None,
                UNITS[cfg.name],
                "skipped",
                error=why,
                extra={"workload": cfg.name, "impl": program},
            )
        ]
    got = _run(ccfg, isolate, timeout_s or TIMEOUT_S[cfg.name], comparison=True)
    return [
        dataclasses.replace(
            r,
            name=r.name.replace(f"{cfg.name}/tuned", name, 1),
            extra=dict(r.extra) | {"impl": program},
        )
        for r in got
    ]
