"""From stored runs to a ``Report``: which runs, then what they measured, section by section.

Without run ids the report takes, for each part of the picture (the doctor's findings,
the micro-benchmark ceilings, the workloads), the newest run that holds that part: after
a `gpuscout run` that is the one run; after separate `doctor`, `bench micro` and
`bench workload` commands it is the newest of each. Only runs from the same host as the
newest one are combined, so an imported run from another machine is never mixed in.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from gpuscout import __version__
from gpuscout._types import Finding, Result, RunRecord, Status
from gpuscout.errors import UsageError
from gpuscout.report import fmt
from gpuscout.report.document import (
    CeilingRow,
    Report,
    Roof,
    Roofline,
    RooflinePoint,
    Unavailable,
    WorkloadRow,
    safely,
)
from gpuscout.report.profiles import is_profile, profile_rows
from gpuscout.store import Store
from gpuscout.timing.load import Disturbance, disturbance
from gpuscout.workloads import registry

ROLES = ("findings", "ceilings", "workloads", "profiles")
_PRECISION_ORDER = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8")


def is_workload(r: Result) -> bool:
    return "workload" in r.extra


def _role_kinds(role: str, kind: str) -> bool:
    if role == "profiles":  # only `gpuscout profile` stores one
        return kind == "profile"
    if kind == "run":
        return True
    if role == "findings":
        return kind == "doctor"
    if role == "ceilings":
        return kind.startswith("bench")
    return kind == "workload"


def _roles(store: Store, run: RunRecord) -> set[str]:
    """The parts of the picture ``run`` holds (a `gpuscout run` may hold all three)."""
    wanted = {role for role in ROLES if _role_kinds(role, run.kind)}
    held = set()
    if "findings" in wanted and store.findings(run.id):
        held.add("findings")
    if wanted & {"ceilings", "workloads", "profiles"}:
        held |= wanted & {_role_of(r) for r in store.results(run.id)}
    return held


def _role_of(r: Result) -> str:
    if is_workload(r):
        return "workloads"
    return "profiles" if is_profile(r) else "ceilings"


def select_runs(store: Store, run_ids: Sequence[int] | None = None) -> list[RunRecord]:
    """The runs a report covers, oldest first; UsageError when there is nothing to report."""
    if run_ids:
        return sorted({i: store.get_run(i) for i in run_ids}.values(), key=lambda r: r.id)
    runs = [r for r in store.list_runs(limit=200) if r.status != "running"]
    if not runs:
        raise UsageError(f"no runs in {store.label} yet", "run `gpuscout run` first")
    holds: dict[int, set[str]] = {}

    def held(run: RunRecord) -> set[str]:  # read a run only when the search reaches it
        if run.id not in holds:
            holds[run.id] = _roles(store, run)
        return holds[run.id]

    anchor = next((run for run in runs if held(run)), runs[0])  # the newest with anything
    host = anchor.fingerprint.get("host")
    chosen: dict[int, RunRecord] = {anchor.id: anchor}
    for role in ROLES:
        match = None if role in held(anchor) else _newest_holding(role, runs, host, held)
        if match is not None:
            chosen[match.id] = match
    return sorted(chosen.values(), key=lambda r: r.id)


def _newest_holding(
    role: str, runs: Sequence[RunRecord], host: Any, held: Callable[[RunRecord], set[str]]
) -> RunRecord | None:
    """The newest run of ``host`` that holds ``role``; runs of other kinds are not read."""
    for run in runs:  # newest first
        if (
            run.fingerprint.get("host") == host
            and _role_kinds(role, run.kind)
            and role in held(run)
        ):
            return run
    return None


def merged_results(store: Store, runs: Sequence[RunRecord]) -> list[Result]:
    """Every result of ``runs``; where two runs measured the same thing the newer one wins."""
    by_key: dict[tuple[str, str], Result] = {}
    for run in sorted(runs, key=lambda r: r.id):
        for r in store.results(run.id):
            by_key.pop((r.name, r.device), None)
            by_key[(r.name, r.device)] = r
    return list(by_key.values())


def device_names(fp: Mapping[str, Any], results: Sequence[Result]) -> dict[str, str]:
    names: dict[str, str] = {"cpu": str(fp.get("cpu_model") or "CPU")}
    gpus = fp.get("gpus")
    for g in gpus if isinstance(gpus, list) else []:
        if isinstance(g, dict) and g.get("name"):
            names[f"cuda:{g.get('index', 0)}"] = str(g["name"])
    for r in results:  # what torch called the device beats NVML's index order
        if r.device != "cpu" and r.extra.get("device_name"):
            names[r.device] = str(r.extra["device_name"])
    return names


def machine_rows(fp: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    cores = f"{fp.get('physical_cores') or '?'} cores / {fp.get('logical_cores') or '?'} threads"
    rows = [
        ("Host", str(fp.get("host") or fmt.NA)),
        ("CPU", f"{fp.get('cpu_model') or fmt.NA} ({cores})"),
        ("Memory", fmt.gib(fp.get("ram_total_bytes"))),
        (
            "OS",
            str(fp.get("os") or fmt.NA) + (f" ({fp['container']})" if fp.get("container") else ""),
        ),
        ("GPUs", fmt.gpu_list(fp)),
    ]
    if fp.get("driver_version"):
        rows.append(
            (
                "NVIDIA driver",
                f"{fp['driver_version']} (CUDA up to {fp.get('driver_cuda_version') or fmt.NA})",
            )
        )
    torch = fp.get("torch_version")
    if torch:
        build = fp.get("torch_cuda_build") or fp.get("torch_hip_build")
        rows.append(("PyTorch", f"{torch} ({f'CUDA {build}' if build else 'CPU build'})"))
    rows.append(("Python", str(fp.get("python_version") or fmt.NA)))
    return tuple(rows)


def _best(rows: dict[tuple[str, str], CeilingRow], row: CeilingRow) -> None:
    key = (row.device, row.what)
    if key not in rows or row.measured > rows[key].measured:
        rows[key] = row


def ceiling_rows(results: Sequence[Result], names: Mapping[str, str]) -> tuple[CeilingRow, ...]:
    """The best figure per device and benchmark (matmul: over sizes) against its peak."""
    rows: dict[tuple[str, str], CeilingRow] = {}
    for r in results:
        if is_workload(r) or r.status != "ok" or r.figure is None:
            continue
        parts = r.name.split("/")
        if parts[0] == "matmul" and len(parts) >= 2:
            what = f"matmul {parts[1]}"
        elif parts[0] in ("memory", "transfer", "launch"):
            what = " ".join(parts)
        else:
            continue
        peak = r.extra.get("peak")
        peak_f = float(peak) if isinstance(peak, (int, float)) and peak > 0 else None
        row = CeilingRow(
            device=r.device,
            device_name=names.get(r.device, r.device),
            what=what,
            measured=float(r.figure),
            unit=r.unit,
            peak=peak_f,
            peak_source=str(r.extra.get("ceiling_source") or "") if peak_f else "",
            fraction=float(r.figure) / peak_f if peak_f else None,
            noisy=bool(r.stats.noisy) if r.stats else False,
        )
        if parts[0] == "launch":  # a latency: lower is better, keep the first
            rows.setdefault((row.device, row.what), row)
        else:
            _best(rows, row)

    def order(row: CeilingRow) -> tuple[int, str, int, str]:
        kind = row.what.split()[0]
        rank = {"matmul": 0, "memory": 1, "transfer": 2, "launch": 3}.get(kind, 4)
        prec = row.what.split()[1] if kind == "matmul" else ""
        p = _PRECISION_ORDER.index(prec) if prec in _PRECISION_ORDER else 9
        return (0 if row.device == "cpu" else 1, row.device, rank * 10 + p, row.what)

    return tuple(sorted(rows.values(), key=order))


def normal_precision(raw: str) -> str:
    """ "bfloat16" -> "bf16" by the catalog's spellings; one it does not know ("nf4") stays."""
    from gpuscout.catalog import normalize_precision

    try:
        return normalize_precision(raw)
    except UsageError:
        return raw.strip().lower()


def _precision(extra: Mapping[str, Any]) -> str:
    """What the workload's ceiling was taken at (tf32 for an fp32 matmul on tensor cores)."""
    return normal_precision(str(extra.get("ceiling_precision") or extra.get("dtype") or "fp32"))


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def workload_rows(results: Sequence[Result], names: Mapping[str, str]) -> tuple[WorkloadRow, ...]:
    mine = [r for r in results if is_workload(r)]
    cpu_best: dict[tuple[str, Any], float] = {}
    for r in mine:
        if r.device == "cpu" and r.status == "ok" and r.figure:
            key = (str(r.extra["workload"]), r.extra.get("variant"))
            cpu_best[key] = max(cpu_best.get(key, 0.0), float(r.figure))
    rows = []
    for r in mine:
        e = r.extra
        key = (str(e["workload"]), e.get("variant"))
        base = cpu_best.get(key)
        rows.append(
            WorkloadRow(
                workload=key[0],
                variant=None if key[1] is None else str(key[1]),
                device=r.device,
                device_name=names.get(r.device, r.device),
                impl=str(e.get("impl") or "?"),
                figure=r.figure,
                unit=r.unit,
                status=r.status,
                error=r.error,
                step_time_s=_num(e.get("step_time_s")),
                achieved_tflops=_num(e.get("achieved_tflops")),
                fraction=r.peak_fraction,
                dtype=_precision(e) if r.status == "ok" else None,
                speedup_vs_cpu=float(r.figure) / base if base and r.figure else None,
                above_ceiling=bool(e.get("above_ceiling")),
            )
        )
    return tuple(rows)


def roofline(
    results: Sequence[Result], ceilings: Sequence[CeilingRow], names: Mapping[str, str]
) -> Roofline:
    points: list[RooflinePoint] = []
    missing: list[str] = []
    for r in results:
        if not is_workload(r) or r.status != "ok":
            continue
        point = _roofline_point(r)
        if point is None:
            missing.append(f"{r.name} on {r.device}")
        else:
            points.append(point)
    roofs: list[Roof] = []
    for device, precision in dict.fromkeys((p.device, p.precision) for p in points):
        roof = _roof(results, ceilings, names, device, precision)
        if roof is not None:
            roofs.append(roof)
    return Roofline(tuple(roofs), tuple(points), tuple(missing))


def _roofline_point(r: Result) -> RooflinePoint | None:
    """Where a workload figure sits (FLOPs per byte, achieved TFLOPS); None without both."""
    flops, moved = _num(r.extra.get("flops_per_step")), _num(r.extra.get("bytes_per_step"))
    achieved = _num(r.extra.get("achieved_tflops"))
    if not flops or not moved or not achieved:
        return None
    label = f"{r.extra['workload']} {r.extra.get('impl', '')}".strip()
    if r.extra.get("variant"):
        label += f" ({r.extra['variant']})"
    return RooflinePoint(label, r.device, _precision(r.extra), flops / moved, achieved)


def _roof(
    results: Sequence[Result],
    ceilings: Sequence[CeilingRow],
    names: Mapping[str, str],
    device: str,
    precision: str,
) -> Roof | None:
    """One device's roof at one precision: measured ceilings, else what its workloads
    were judged against; None without both a peak and a bandwidth."""
    mine = [c for c in ceilings if c.device == device]
    peak = max((c.measured for c in mine if c.what == f"matmul {precision}"), default=None)
    bw = max((c.measured for c in mine if c.what.startswith("memory")), default=None)
    source = "measured (bench micro)"
    if peak is None or bw is None:
        judged_peak, judged_source, judged_bw = _judged_against(results, device)
        if peak is None and judged_peak is not None:
            peak, source = judged_peak, judged_source
        bw = bw if bw is not None else judged_bw
    if not peak or not bw:
        return None
    return Roof(device, names.get(device, device), precision, peak, bw, source)


def _judged_against(
    results: Sequence[Result], device: str
) -> tuple[float | None, str, float | None]:
    """(peak TFLOPS and its source, bandwidth GB/s): the first ceilings the workloads on
    ``device`` were judged against."""
    peak: float | None = None
    source = ""
    bw: float | None = None
    for r in results:
        e = r.extra
        if r.device != device or not is_workload(r) or not _num(e.get("ceiling_value")):
            continue
        if e.get("ceiling_unit") == "TFLOPS" and peak is None:
            peak, source = float(e["ceiling_value"]), str(e.get("ceiling_source"))
        elif e.get("ceiling_unit") == "GB/s" and bw is None:
            bw = float(e["ceiling_value"])
    return peak, source, bw


def summary_lines(
    findings: Sequence[Finding],
    rows: tuple[WorkloadRow, ...] | Unavailable,
    disturbed: Disturbance | None = None,
) -> list[str]:
    """The answer box: whether the figures can be trusted, readiness, then per workload."""
    lines = [] if disturbed is None else [disturbed.line()]
    lines += _readiness(findings, disturbed)
    if isinstance(rows, Unavailable):
        return lines
    for wl in dict.fromkeys(r.workload for r in rows):
        line = _workload_line(wl, rows)
        if line is not None:
            lines.append(line)
    return lines


def _readiness(findings: Sequence[Finding], disturbed: Disturbance | None) -> list[str]:
    fails = [f for f in findings if f.status is Status.FAIL]
    warns = [f for f in findings if f.status is Status.WARN]
    if fails:
        ids = ", ".join(dict.fromkeys(f.id for f in fails))
        problems = fmt.plural(len(fails), "readiness problem")
        return [f"{problems} to fix first: {ids} (fixes below)."]
    if not findings:
        return []
    extra = f" ({fmt.plural(len(warns), 'warning')} below)" if warns else ""
    if disturbed is None:
        return [f"This machine is ready for deep-learning work{extra}."]
    # Readiness is known; what it measures at is not, until a quiet rerun.
    return [f"The readiness checks passed{extra}."]


def _workload_line(wl: str, rows: Sequence[WorkloadRow]) -> str | None:
    """One workload's best GPU against its best CPU (its first variant), in words."""
    ok = [r for r in rows if r.workload == wl and r.status == "ok" and r.figure]
    if not ok:
        return None
    variant = ok[0].variant
    ok = [r for r in ok if r.variant == variant]
    best_gpu = _best_figure(r for r in ok if r.device != "cpu")
    cpu = _best_figure(r for r in ok if r.device == "cpu")
    return _line(wl + (f" ({variant})" if variant else ""), best_gpu, cpu)


def _line(name: str, best_gpu: WorkloadRow | None, cpu: WorkloadRow | None) -> str | None:
    if best_gpu and cpu and best_gpu.speedup_vs_cpu:
        return f"{name}: " + _gpu_against_cpu(best_gpu, cpu, best_gpu.speedup_vs_cpu)
    if cpu:
        return f"{name}: {fmt.num(cpu.figure, cpu.unit)} on the CPU; no GPU measured."
    if best_gpu:
        return f"{name}: {fmt.num(best_gpu.figure, best_gpu.unit)} on {best_gpu.device_name}."
    return None


def _best_figure(rows: Iterable[WorkloadRow]) -> WorkloadRow | None:
    return max(rows, key=lambda r: r.figure or 0, default=None)


def _gpu_against_cpu(gpu: WorkloadRow, cpu: WorkloadRow, s: float) -> str:
    how = f"{fmt.ratio(s)} faster" if s >= 1 else f"{fmt.ratio(1 / s)} slower"
    return (
        f"the GPU ({gpu.device_name}) runs it {how} than the CPU "
        f"({fmt.num(gpu.figure, gpu.unit)} vs {fmt.num(cpu.figure, cpu.unit)})."
    )


def build_report(
    store: Store,
    run_ids: Sequence[int] | None = None,
    *,
    forecast: bool = True,
    now: _dt.datetime | None = None,
) -> Report:
    """Everything the report shows, from the store; ``forecast`` False skips predictions,
    fit and cost (the parts that need the predict and fit packages)."""
    runs = select_runs(store, run_ids)
    results = merged_results(store, runs)
    newest = runs[-1]
    # The newest run's findings that has any (a bench run stores none).
    findings = next((tuple(f) for f in (store.findings(r.id) for r in reversed(runs)) if f), ())
    fp = newest.fingerprint
    names = device_names(fp, results)
    ceilings = safely(lambda: ceiling_rows(results, names))
    workloads = safely(lambda: workload_rows(results, names))
    roof = safely(lambda: roofline(results, ceilings if isinstance(ceilings, tuple) else (), names))
    notes = _notes(runs, results)
    disturbed = disturbance(results)
    summary = summary_lines(findings, workloads, disturbed)
    profiled = [(run.id, r) for run in runs if run.kind == "profile" for r in store.results(run.id)]
    profiles = safely(lambda: profile_rows(profiled, names))
    if isinstance(profiles, tuple):
        summary += [f"Your script {p.script}: {p.words}." for p in profiles]
    if forecast:
        from gpuscout.report.forecast import forecasts

        prediction, fit, advice = forecasts(results, fp)
        verdict = getattr(advice, "verdict", None)
        if isinstance(verdict, str) and verdict:  # the answer, right after readiness
            summary.insert(int(bool(findings)) + int(disturbed is not None), verdict)
    else:
        skipped = Unavailable("not computed (forecast disabled)")
        prediction, fit, advice = skipped, skipped, skipped
    when = (now or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0)
    return Report(
        title=f"gpuscout report: {fp.get('host') or 'unknown host'}",
        generated_at=when.isoformat(),
        gpuscout_version=__version__,
        runs=tuple(runs),
        summary=tuple(summary),
        notes=tuple(notes),
        machine=machine_rows(fp),
        findings=findings,
        ceilings=ceilings,
        workloads=workloads,
        roofline=roof,
        prediction=prediction,
        fit=fit,
        advice=advice,
        profiles=profiles,
    )


def _notes(runs: Sequence[RunRecord], results: Sequence[Result]) -> list[str]:
    notes = []
    hosts = {str(r.fingerprint.get("host")) for r in runs}
    if len(hosts) > 1:
        notes.append(
            f"These runs come from {len(hosts)} different hosts: {', '.join(sorted(hosts))}."
        )
    bad = [r for r in results if r.status not in ("ok", "skipped")]
    if bad:
        notes.append(
            f"{fmt.plural(len(bad), 'measurement')} did not complete "
            "(failed, timeout or out of memory)."
        )
    for wl in dict.fromkeys(str(r.extra["workload"]) for r in results if _stand_in(r)):
        spec = registry.find(wl)
        if spec is not None and spec.data is not None:
            data = spec.data
            notes.append(
                f"{data.model_words} trained on synthetic stand-in data (no {data.label} "
                f"files): its speed is real, its accuracy is not {data.label}'s."
            )
    return notes


def _stand_in(r: Result) -> bool:
    return is_workload(r) and bool(r.extra.get("synthetic_data"))
