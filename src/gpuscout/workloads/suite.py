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

from gpuscout._types import Ceiling, Result, Stats
from gpuscout.errors import GpuscoutError, UsageError
from gpuscout.isolate.process import target_name
from gpuscout.probe.devices import DEVICE_HINT as DEVICE_HINT
from gpuscout.probe.devices import resolve_devices as _resolve_devices
from gpuscout.timing.load import host_load, mark_busy
from gpuscout.workloads import registry
from gpuscout.workloads.base import IMPLS, WorkloadConfig
from gpuscout.workloads.ceilings import attach, from_catalog, from_store

# (label, done, total): called before each run and once at the end (label "done").
Progress = Callable[[str, int, int], None]

QUICK_TIMEOUT_S = 300.0


def __getattr__(name: str) -> Any:
    """``QUICK_WORKLOADS``: what `gpuscout run` measures (the records with ``quick``),
    read when asked, so importing this module discovers no workload."""
    if name == "QUICK_WORKLOADS":
        return registry.quick_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    return [
        WorkloadConfig(
            name,
            device,
            which,
            quick=quick,
            options=dict(options or {}),
            **_fields(name, device, quick, fields),
        )
        for name in wanted
        for device in devices
        for which in resolve_impls(impl)
    ]


def _fields(name: str, device: str, quick: bool, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with the workload's quick CPU sizes where the caller gave none."""
    f = dict(fields)
    if quick and device == "cpu":
        for key, value in registry.get(name).quick_cpu.items():
            f[key] = f.get(key) or value
    return f


def _label(cfg: WorkloadConfig) -> str:
    if cfg.options.get("compare"):
        return f"{cfg.name} comparison on {cfg.device}"
    return f"{cfg.name} {cfg.impl} on {cfg.device}"


def to_results(cfg: WorkloadConfig, status: str, value: Any, error: str | None) -> list[Result]:
    """Results from what a worker sent back (or the outcome's failure)."""
    base = f"{cfg.name}/{cfg.impl}"
    common = {"workload": cfg.name, "impl": cfg.impl, "quick": cfg.quick}
    if status != "ok" or not isinstance(value, dict):
        text = (error or "no result").rstrip()
        last = text.splitlines()[-1] if text else status
        extra = common | ({"traceback": text} if "Traceback" in text else {})
        unit = registry.get(cfg.name).unit
        return [Result(base, cfg.device, None, unit, status, error=last, extra=extra)]
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

    spec = registry.get(cfg.name)
    fn = child.run_comparison if comparison else child.run_one
    work = spec.comparison.run if comparison and spec.comparison else spec.run
    kwargs: dict[str, Any] = {
        "cfg": dataclasses.asdict(cfg),
        "target": target_name(work),
        "file": registry.source_file(work),
    }
    if not isolate:  # in-process, for tests and debugging: no timeout, no crash guard
        try:
            return to_results(cfg, "ok", fn(**kwargs), None)
        except Exception as exc:
            from gpuscout.isolate import is_oom

            return to_results(cfg, "oom" if is_oom(exc) else "failed", None, repr(exc))
    from gpuscout.isolate import run_isolated

    out = run_isolated(
        fn, kwargs, timeout_s=timeout_s, stdout="devnull" if comparison else "stderr"
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
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run workloads ``names`` ("all", one, or several) on ``devices`` with ``impl``
    ("reference", "tuned" or "both"); one Result per figure, failures included.

    ``compile`` None lets each workload decide (on for tuned GPU runs). ``quick`` is
    the set ``gpuscout run`` uses. ``compare`` adds each workload's third-party program
    where its record names one (Keras, Hugging Face generate), "skipped" when not
    installed. ``db`` is where measured ceilings are looked up; ``ceilings`` (device ->
    Ceiling) overrides that. ``on_result`` hears each result as its run ends (before
    the ceilings are attached, at the end), so a caller can store it straight away.
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
    if compare:
        configs += _comparisons(configs)
    if data_dir is None:
        configs = _prefetched(configs)
    results: list[Result] = []
    for i, cfg in enumerate(configs):
        if progress is not None:
            progress(_label(cfg), i, len(configs))
        got = _measure(cfg, isolate, timeout_s, quick)
        results.extend(got)
        for result in got:
            if on_result is not None:
                on_result(result)
    if progress is not None:
        progress("done", len(configs), len(configs))
    return _with_ceilings(results, devs, db, ceilings)


def _comparisons(configs: Sequence[WorkloadConfig]) -> list[WorkloadConfig]:
    """One comparison per (workload, device) whose record names a comparison program."""
    pairs = dict.fromkeys(
        (c.name, c.device) for c in configs if registry.get(c.name).comparison is not None
    )
    first = {(c.name, c.device): c for c in reversed(configs)}
    return [
        dataclasses.replace(
            first[p], impl="tuned", options=dict(first[p].options) | {"compare": True}
        )
        for p in pairs
    ]


def _prefetched(configs: Sequence[WorkloadConfig]) -> list[WorkloadConfig]:
    """The real datasets the workloads read, fetched once, here: workers only read the
    cache (each config of a workload with one carries the fetch's note)."""
    from gpuscout.data.datasets import prefetch

    notes: dict[str, str] = {}
    out = []
    for c in configs:
        data = registry.get(c.name).data
        if data is None:
            out.append(c)
            continue
        if data.dataset not in notes:
            notes[data.dataset] = prefetch(data.dataset)
        options = dict(c.options) | {"data_note": notes[data.dataset]}
        out.append(dataclasses.replace(c, options=options))
    return out


def _measure(
    cfg: WorkloadConfig, isolate: bool, timeout_s: float | None, quick: bool
) -> list[Result]:
    if cfg.options.get("compare"):
        return _comparison(cfg, isolate, timeout_s)
    limit = timeout_s or (QUICK_TIMEOUT_S if quick else registry.get(cfg.name).timeout_s)
    # Other processes' load over the worker's whole life (the worker's own CPU time
    # is subtracted once it is reaped): a busy neighbour is recorded on the figure.
    with host_load() as load:
        got = _run(cfg, isolate, limit, comparison=False)
    return mark_busy(got, load.busy_pct)


def _with_ceilings(
    results: list[Result],
    devices: Sequence[str],
    db: Path | str | None,
    ceilings: Mapping[str, Ceiling] | None,
) -> list[Result]:
    given = dict(ceilings or {})
    for device in devices:
        ceiling = device_ceiling(device, results, db, given.get(device))
        results = [attach(r, ceiling) if r.device == device else r for r in results]
    return results


def _comparison(cfg: WorkloadConfig, isolate: bool, timeout_s: float | None) -> list[Result]:
    from gpuscout.workloads.third_party import available

    spec = registry.get(cfg.name)
    program = spec.comparison.package if spec.comparison is not None else "comparison"
    name = f"{cfg.name}/{program}"
    why = available(spec.comparison, cfg.name)
    if why is not None:
        extra = {"workload": cfg.name, "impl": program}
        return [Result(name, cfg.device, None, spec.unit, "skipped", error=why, extra=extra)]
    ccfg = dataclasses.replace(cfg, impl="tuned")
    got = _run(ccfg, isolate, timeout_s or spec.timeout_s, comparison=True)
    return [
        dataclasses.replace(
            r,
            name=r.name.replace(f"{cfg.name}/tuned", name, 1),
            extra=dict(r.extra) | {"impl": program},
        )
        for r in got
    ]
