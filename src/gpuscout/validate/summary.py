"""A GPU check's output (what ``gpuscout.validate.gpu_check`` writes) as the Markdown
section of docs/benchmarks.md.

    python scripts/gpu_summary.py out/                       # Markdown on stdout
    python scripts/gpu_summary.py out/gpu_check.tar.gz --out summary.md
    python scripts/gpu_summary.py main.tar.gz extended.tar.gz  # two calls as one section

Reads whatever is there: any file may be missing, empty or cut off (a step stopped by
its cap or the deadline). No figure is ever made up: a value that is missing or failed
is printed as such, and the "not measured" list gives each step that did not end ok,
with its status from steps.json and the last line of its stderr. Each figure comes with
its command, as steps.json recorded it. Helpers that read the folder: summary_io.py.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpuscout.fit.estimate import CUDA_CONTEXT_BYTES
from gpuscout.report import fmt
from gpuscout.validate.gpu_check import EXTENDED, MAIN
from gpuscout.validate.summary_io import (
    KNOWN,
    NOT,
    Run,
    cell,
    compare,
    err,
    flags,
    gib,
    is_num,
    max_cuda,
    measured,
    not_recorded,
    pick,
    plain_cell,
    result_text,
    results_of,
    size_of,
    table,
    verdict,
    wall,
)
from gpuscout.workloads.registry import names as workload_names

MATMUL_N = 8192
# The reference figures: plain PyTorch on an H100 80GB SXM, TFLOPS and GB/s.
H100_REFERENCE_TFLOPS = {"bf16": 763.0, "fp16": 736.0, "tf32": 396.0, "fp32": 51.0, "fp8": 1361.0}
# (row, gpuscout result name, plain_torch_reference.py key, the H100 reference GB/s)
BANDWIDTH = (
    ("device copy", "memory/copy", "copy_gbs", 3000.0),
    ("device triad", "memory/triad", "triad_gbs", None),
    ("H2D pinned", "transfer/h2d/pinned", "h2d_pinned_gbs", 54.0),
    ("H2D pageable", "transfer/h2d/pageable", "h2d_pageable_gbs", 17.0),
    ("D2H pinned", "transfer/d2h/pinned", "d2h_pinned_gbs", None),
    ("D2H pageable", "transfer/d2h/pageable", "d2h_pageable_gbs", None),
)
TRANSFER_BYTES = 2**30  # plain_torch_reference.py's transfer size: the full run's largest
FIT_TOLERANCE_PCT = 10.0  # the goal: predicted peak memory within 10% of measured
WALL_GOALS_S = {"bench_micro_quick": 60.0, "bench_micro_full": 300.0}
RUN_GOAL_S = 120.0  # the goal: `gpuscout run` within 2 minutes on the H100
TEXT_LINES = 150  # text outputs are quoted at most this long; the file has the rest
TEXTS = ("pytest_gpu.txt", "pytest_gpu_slow.txt", "run.txt", "workloads_tuned.txt", "advise.txt")
ARCHIVE = "gpu_check.tar.gz"
REHEARSAL = (
    "**A rehearsal on the CPU (`--device cpu` or `--tiny`): no figure below is a GPU measurement.**"
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def gpu_names(run: Run, nvml: dict[str, Any]) -> str:
    """The GPUs NVML named and the driver, or why versions.json names none."""
    gpus = [g for g in nvml.get("gpus") or [] if isinstance(g, dict)]
    if not gpus:
        return f"{NOT} ({nvml.get('error') or run.why('versions.json')})"
    return f"{', '.join(str(g.get('name')) for g in gpus)}, {nvml.get('driver')}"


def torch_text(torch: dict[str, Any]) -> tuple[str, str]:
    """torch's version with the CUDA it was built for, and the CUDA devices it sees."""
    built = f"built for CUDA {torch.get('cuda_build')}" if torch.get("cuda_build") else "no CUDA"
    version = f"torch {torch['version']} ({built})" if torch.get("version") else f"torch {NOT}"
    seen = [f"{d.get('name')} (CC {d.get('capability')})" for d in torch.get("devices") or []]
    return version, ", ".join(seen) or "no CUDA device"


def device_line(run: Run) -> str:
    """Date, GPU and driver, the CUDA the driver supports, python and torch."""
    v = _dict(run.json("versions.json"))
    nvml, torch = v.get("nvml") or {}, v.get("torch") or {}
    doctor = _dict(run.json("doctor.json"))
    nv = (doctor.get("system") or {}).get("nvidia") or {} if doctor else {}
    cuda = max_cuda(nvml.get("cuda_driver_version") or nv.get("cuda_driver_version"))
    version, seen = torch_text(torch)
    return (
        f"Date: {v.get('date') or NOT}. Device (NVML name, driver): {gpu_names(run, nvml)}; "
        f"the driver supports CUDA up to {cuda}. Python {v.get('python') or NOT}, {version}; "
        f"torch sees {seen}."
    )


def header(run: Run) -> list[str]:
    invocations = [str(m.get("invocation")) for m in run.meta if m.get("invocation")]
    inv = "; then ".join(f"`{i}`" for i in invocations) or "not recorded (no steps.json)"
    rehearsal = [m for m in run.meta if m.get("tiny") or m.get("device") == "cpu"]
    out = [
        *([REHEARSAL, ""] if rehearsal else []),
        device_line(run),
        "",
        f"Invocation: {inv}. Each step's command (`$OUT` is the output folder) and its result "
        "from steps.json (cut off: stopped at its cap or at the deadline):",
        "",
    ]
    rows = []
    for name, rec in run.records.items():
        rows.append([name, f"`{rec.get('command')}`", result_text(rec)])
    if not run.records:
        rows = [[s.name, f"`{run.command(s.name)}`", not_recorded(run)] for s in MAIN]
    db = run.path("home/gpuscout.db").is_file()
    store = ["", "Results store: `home/gpuscout.db`."] if db else []
    return out + table(["step", "command", "result"], rows) + store + pytest_lines(run)


def doctor_section(run: Run) -> list[str]:
    """`gpuscout doctor`: the driver, torch, each GPU and every finding; the text output
    where the JSON one is missing."""
    out = [
        "",
        "### `gpuscout doctor`",
        "",
        f"Command: `{run.command('doctor_json')}` (and without `--json`: doctor.txt).",
        "",
    ]
    doc = run.json("doctor.json")
    if not isinstance(doc, dict):
        txt = run.text("doctor.txt")
        out.append(f"doctor.json: {run.why('doctor.json')}.")
        return [*out, "", "```", txt.rstrip(), "```"] if txt else out
    return [*out, *table(["", "doctor"], doctor_rows(doc)), "", *findings(doc)]


def doctor_rows(doc: dict[str, Any]) -> list[list[str]]:
    """The doctor's driver, torch and GPU rows."""
    system = doc.get("system") or {}
    nv = system.get("nvidia") or {}
    rows = [
        ["driver", str(nv.get("driver_version") or f"{fmt.NA} ({nv.get('state')})")],
        ["max CUDA (driver)", max_cuda(nv.get("cuda_driver_version"))],
        *torch_rows(system),
    ]
    for g in (g for g in nv.get("gpus") or [] if isinstance(g, dict)):
        rows += gpu_rows(g)
    return rows


def torch_rows(system: dict[str, Any]) -> list[list[str]]:
    """The version, CUDA build and architectures of the torch the doctor found."""
    fws = [f for f in system.get("frameworks") or [] if isinstance(f, dict)]
    torch = next((f for f in fws if f.get("name") == "torch"), {})
    return [
        ["torch", str(torch.get("version") or fmt.NA)],
        ["torch CUDA build", str(torch.get("cuda_build") or fmt.NA)],
        ["torch arch list", " ".join(torch.get("arch_list") or []) or fmt.NA],
    ]


def gpu_rows(g: dict[str, Any]) -> list[list[str]]:
    cc = g.get("compute_capability")
    return [
        [f"GPU {g.get('index')}", str(g.get("name"))],
        ["memory", fmt.gib(g.get("memory_total_bytes"))],
        ["compute capability", ".".join(map(str, cc)) if isinstance(cc, list) else fmt.NA],
        [
            "PCIe",
            f"gen{g.get('pcie_gen_current')} x{g.get('pcie_width_current')} "
            f"(max gen{g.get('pcie_gen_max')} x{g.get('pcie_width_max')})",
        ],
        ["catalog row", str(g.get("catalog_id") or "none")],
    ]


def findings(doc: dict[str, Any]) -> list[str]:
    found = [f for f in doc.get("findings") or [] if isinstance(f, dict)]
    n = {s: sum(f.get("status") == s for f in found) for s in ("pass", "warn", "fail", "skip")}
    verdict = f"{fmt.plural(n['fail'], 'check')} FAILED" if n["fail"] else "no check failed"
    out = [
        f"Exit code {doc.get('exit_code')}: {verdict}; {n['pass']} ok, "
        f"{fmt.plural(n['warn'], 'warning')}, {n['skip']} skipped. Findings:",
        "",
    ]
    for f in found:
        subject = f"[{f['subject']}] " if f.get("subject") else ""
        out.append(f"- {f.get('status')} `{f.get('id')}` {subject}{f.get('summary')}")
    return out


def versus_plain(
    full: dict[str, Any] | None, quick: dict[str, Any] | None, p: Any, size: int | None
) -> list[str]:
    """gpuscout / plain from the full run, else from --quick (said so), and within 3%."""
    if measured(full) or not measured(quick):
        return [*compare(full, p, size), flags(full)]
    ratio, within = compare(quick, p, size)
    return [f"{ratio} (quick)" if ratio != fmt.NA else ratio, within, flags(quick)]


def micro_section(run: Run) -> list[str]:
    """The micro-benchmarks, full and --quick, against plain PyTorch and the H100's
    reference figures, with the wall times against their goals."""
    full = results_of(run.json("bench_full.json"))
    quick = results_of(run.json("bench_quick.json"))
    plain = run.json("plain_reference.json")
    plain = plain if isinstance(plain, dict) else {}
    head = ["figure", "gpuscout full", "gpuscout --quick", "plain PyTorch", "H100 reference"]
    rows = []
    for d in ("bf16", "fp16", "tf32", "fp32", "fp8", "fp64", "int8"):
        unit = "TOPS" if d == "int8" else "TFLOPS"
        g, q = pick(full, f"matmul/{d}", MATMUL_N), pick(quick, f"matmul/{d}", MATMUL_N)
        p = plain.get(f"matmul_{d}_{MATMUL_N}_{unit.lower()}")
        ref = fmt.num(H100_REFERENCE_TFLOPS[d]) if d in H100_REFERENCE_TFLOPS else "none"
        row = [f"matmul {d} {MATMUL_N}^3 ({unit})", cell(g, MATMUL_N), cell(q, MATMUL_N)]
        rows.append([*row, plain_cell(p), ref, *versus_plain(g, q, p, MATMUL_N)])
    for label, name, key, ref_gbs in BANDWIDTH:
        size = TRANSFER_BYTES if name.startswith("transfer") else None
        g, q, p = pick(full, name, size), pick(quick, name, size), plain.get(key)
        ref = fmt.num(ref_gbs) if ref_gbs else "none"
        row = [f"{label} (GB/s)", cell(g, size), cell(q, size), plain_cell(p), ref]
        rows.append([*row, *versus_plain(g, q, p, size)])
    files = ("bench_full.json", "bench_quick.json", "plain_reference.json")
    src = "; ".join(f"{f} {run.problems.get(f, 'read')} (`{run.command_of(f)}`)" for f in files)
    if plain.get("device") or plain.get("torch"):
        src += f"; plain_reference ran on {plain.get('device')} with torch {plain.get('torch')}"
    walls = "; ".join(wall(run, s, g) for s, g in WALL_GOALS_S.items())
    return [
        "",
        "### Micro-benchmarks against plain PyTorch (goal: within 3%)",
        "",
        *table([*head, "gpuscout / plain", "within 3%", "flags"], rows),
        "",
        f"Sources: {src}.",
        "",
        f"Wall times: {walls}.",
    ]


def workload_row(r: dict[str, Any]) -> list[str]:
    e = r.get("extra") or {}
    figure = f"{cell(r)} {r.get('unit')}" if measured(r) else cell(r)
    frac = r.get("peak_fraction")
    note = ", ".join(str(e[k]) for k in ("model", "dtype", "decode_mode") if e.get(k))
    return [
        str(r.get("name")),
        str(r.get("device")),
        figure,
        fmt.seconds(e.get("time_s")),
        gib(e.get("peak_mem_bytes") or e.get("nvml_peak_mem_bytes")),
        fmt.pct(frac) if is_num(frac) else fmt.NA,
        note,
    ]


def workloads_section(run: Run) -> list[str]:
    """Every workload at quick size, both implementations, as its step recorded it."""
    out, rows = ["", "### Workloads at quick size: reference and tuned", ""], []
    for name in workload_names():
        f = f"workload_{name}.json"
        doc = run.json(f)
        if not isinstance(doc, dict):
            out.append(f"- {f}: {run.why(f)}.")
            continue
        out.append(f"- {f}: `{run.command_of(f)}`, exit code {doc.get('exit_code')}.")
        rows += [workload_row(r) for r in results_of(doc)]
    head = ["result", "device", "figure", "time", "peak memory", "of ceiling", "model"]
    return [*out, "", *table(head, rows)] if rows else out


def goal_figure(name: str, g: dict[str, Any]) -> str:
    """The figure a goal is judged on, from workload_goals.json's keys (judge_*)."""
    if name == "mlp":
        res = [r for r in g.get("results") or [] if isinstance(r, dict) and r.get("status") == "ok"]
        t = {r.get("name"): r.get("time_s") for r in res}
        acc = g.get("accuracy_delta")
        delta = f"{100 * acc:+.2f} points" if is_num(acc) else fmt.NA
        return (
            f"tuned {fmt.seconds(t.get('mlp/tuned'))}, tutorial loop "
            f"{fmt.seconds(t.get('mlp/reference'))} (speed-up {fmt.ratio(g.get('speedup'))}); "
            f"accuracy delta {delta}"
        )
    if name == "cnn":
        return (
            f"{fmt.num(g.get('images_per_s'))} images/s compiled "
            f"(compile speed-up {fmt.ratio(g.get('compile_speedup'))})"
        )
    if name == "llm":
        return (
            f"{fmt.num(g.get('tokens_per_s'))} tokens/s, "
            f"{fmt.pct(g.get('tuned_fraction_of_bound'))} of the bound of "
            f"{fmt.num(g.get('bandwidth_bound_tokens_per_s'))} tokens/s "
            f"({g.get('bound_source') or 'no bound source'})"
        )
    return f"wall {fmt.seconds(g.get('wall_s'))}"


def goal_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name in ("mlp", "cnn", "llm", "quick"):
        g = doc.get(name)
        if not isinstance(g, dict):
            if name != "quick":  # the workload_goals step asks for mlp, cnn and llm
                rows.append([name, NOT, "", "not judged", "missing from the file (cut off?)"])
            continue
        checks = g.get("checks") or {}
        met = {"True": "met", "False": "not met"}.get(str(g.get("met")), "not judged")
        failed = ", ".join(f"failed: {k}" for k, ok in checks.items() if not ok)
        why = str(g.get("why") or g.get("note") or failed)
        rows.append([name, goal_figure(name, g), str(g.get("goal") or "none"), met, why])
    return rows


def workload_goals_section(run: Run) -> list[str]:
    """The workload goals as workload_goals.json judged them, and `gpuscout run`'s wall
    time against its goal."""
    out, rows = ["", "### Workload goals", ""], []
    doc = run.json("workload_goals.json")
    if isinstance(doc, dict):
        cmd = run.command_of("workload_goals.json")
        out += [f"workload_goals.json: {doc.get('device')}, {doc.get('date')} (`{cmd}`).", ""]
        rows += goal_rows(doc)
    else:
        out += [f"workload_goals.json: {run.why('workload_goals.json')}.", ""]
    rec = run.records.get("gpuscout_run")
    if rec is not None and rec.get("status") in ("ok", "failed", "cut off"):
        figure = f"{result_text(rec)}: `{rec.get('command')}`"
        goal = f"<= {fmt.seconds(RUN_GOAL_S)}"
        rows.append(["gpuscout run", figure, goal, verdict(rec, RUN_GOAL_S), ""])
    return out + table(["goal", "figure", "target", "verdict", "why"], rows) if rows else out


def fit_measure(run: Run) -> list[str]:
    """`fit --measure`'s one case: predicted against measured peak, and the context."""
    out = ["", "#### `fit --measure`", ""]
    doc = run.json("fit_measure.json")
    if not isinstance(doc, dict) or not isinstance(doc.get("estimate"), dict):
        return [*out, f"fit_measure.json: {run.why('fit_measure.json')}."]
    est, m = doc["estimate"], doc.get("measured") or {}
    req, model = est.get("request") or {}, doc.get("model") or {}
    peak, predicted = m.get("peak_bytes"), est.get("total_bytes")
    e = (predicted - peak) / peak * 100 if is_num(predicted) and is_num(peak) and peak else None
    got = gib(peak) if m.get("status") == "ok" else f"{m.get('status')}: {m.get('error')}"
    batch = f"{m.get('max_batch')}{' (the search was capped)' * bool(m.get('max_batch_capped'))}"
    rows = [
        ["case", f"{model.get('name')}, {req.get('mode')}, batch {req.get('batch_size')}"],
        ["device", str(m.get("device_name") or m.get("device") or fmt.NA)],
        ["predicted peak", gib(predicted)],
        ["measured peak", got],
        ["fit error", err(e)],
        ["within 10%", fmt.yes_no(abs(e) <= FIT_TOLERANCE_PCT) if is_num(e) else fmt.NA],
        ["CUDA context, measured", f"{gib(m.get('context_bytes'))} ({m.get('context_source')})"],
        ["CUDA context, assumed by fit", gib(CUDA_CONTEXT_BYTES)],
        ["allocator peak / reserved", f"{gib(m.get('allocated_peak_bytes'))} / "
         f"{gib(m.get('reserved_peak_bytes'))}"],
        ["largest batch that ran", batch],
    ]  # fmt: skip
    return [*out, f"Command: `{run.command_of('fit_measure.json')}`.", "", *table(["", ""], rows)]


def fit_table(run: Run, doc: dict[str, Any], cases: list[dict[str, Any]]) -> list[str]:
    kind = str(doc.get("kind"))
    out = [f"Command: `{doc.get('command')}` ({doc.get('date')}), {kind}."]
    if kind != "measured":
        out[-1] += " Not a GPU measurement, so the goal (within 10% on a GPU) is not judged."
    rows, within, judged, closer_fit, comparable = [], 0, 0, 0, 0
    for r in cases:
        m = r.get("measurement") or {}
        got = gib(r.get("measured_bytes"))
        if m.get("status") not in (None, "ok"):
            got = f"{m.get('status')}: {str(m.get('error') or '')[-60:]}"
        e, a = r.get("predicted_error_pct"), r.get("accelerate_error_pct")
        judged += is_num(e)
        within += is_num(e) and abs(e) <= FIT_TOLERANCE_PCT
        closer = "not comparable"
        if is_num(e) and is_num(a):
            comparable += 1
            closer_fit += abs(e) < abs(a)
            closer = "fit" if abs(e) < abs(a) else "accelerate" if abs(a) < abs(e) else "tie"
        ok = fmt.yes_no(abs(e) <= FIT_TOLERANCE_PCT) if is_num(e) else fmt.NA
        row = [str(r.get("case")), gib(r.get("predicted_bytes")), got, err(e), ok]
        basis = str(r.get("accelerate_basis") or "")
        rows.append([*row, gib(r.get("accelerate_bytes")), err(a), basis, closer])
    head = ["case", "fit predicted", "measured", "fit error", "within 10%", "accelerate"]
    return [
        *out,
        "",
        *table([*head, "accelerate error", "accelerate basis", "closer"], rows),
        "",
        f"{within} of the {judged} cases with a figure are within 10% ({len(cases) - judged} "
        f"of {len(cases)} have none). fit is closer than accelerate in {closer_fit} of the "
        f"{comparable} cases where accelerate gives an estimate.",
    ]


def fit_section(run: Run) -> list[str]:
    """`fit`'s predicted peak memory against the measured one: `fit --measure`'s case and
    fit_validate's table (or what a cut-off run printed of it)."""
    out = ["", "### `fit`: predicted against measured peak memory (goal: within 10%)"]
    out += fit_measure(run)
    out += ["", "#### `scripts/fit_validate.py` (every workload, Llama 1B and 8B)", ""]
    doc = run.json("fit_validate.json")
    cases = (
        [r for r in doc.get("rows") or [] if isinstance(r, dict)] if isinstance(doc, dict) else []
    )
    if isinstance(doc, dict) and cases:
        return out + fit_table(run, doc, cases)
    # fit_validate.md is written row by row: what a cut-off run did measure
    md = run.text("fit_validate.md")
    out.append(f"fit_validate.json: {run.why('fit_validate.json')}.")
    return [*out, "", "fit_validate.md as printed:", "", md.rstrip()] if md else out


def dist_run(run: Run, name: str, title: str) -> list[str]:
    """One `bench dist` output: its collectives at their largest size, and its scaling."""
    doc = run.json(name)
    out = ["", f"#### {title}", ""]
    if not isinstance(doc, dict):
        return [*out, f"{name}: {run.why(name)}."]
    s = doc.get("summary") or {}
    out += [
        f"`{run.command_of(name)}`: {s.get('world_size')} rank(s), backend {s.get('backend')}, "
        f"{s.get('device')} tensors, torch {s.get('torch')}, {s.get('duration_s')} s; exit code "
        f"{doc.get('exit_code')}.",
        "",
    ]
    rs = [r for r in results_of(doc) if str(r.get("name", "")).startswith("dist/")]
    coll = [r for r in rs if str(r["name"]).split("/")[1] != "scaling"]
    rows = []
    for op in dict.fromkeys(str(r["name"]).split("/")[1] for r in coll):
        r = max((r for r in coll if str(r["name"]).split("/")[1] == op), key=size_of)
        e = r.get("extra") or {}
        size = str(r["name"]).split("/")[-1]
        rows.append([op, size, cell(r), fmt.num(e.get("algbw_gbs")), fmt.seconds(e.get("time_s"))])
    out += table(["collective", "largest size", "busbw GB/s", "algbw GB/s", "time"], rows)
    return out + scaling_rows(rs)


def scaling_rows(rs: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in rs:
        e = r.get("extra") or {}
        if "scaled_workload" in e:
            fig = f"{cell(r)} {r.get('unit')}"
            rows.append([str(e["scaled_workload"]), str(e.get("processes")), fig])
            rows[-1] += [fmt.pct(e.get("efficiency")), fmt.pct(e.get("comm_share"))]
    head = ["workload", "processes", "throughput", "efficiency", "comm share"]
    return ["", *table(head, rows)] if rows else []


def dist_section(run: Run) -> list[str]:
    """`gpuscout bench dist`: one NCCL rank, and two gloo ranks sharing the GPU."""
    return [
        "",
        "### `gpuscout bench dist`",
        *dist_run(run, "dist_nccl_1rank_quick.json", "NCCL, one rank (--quick)"),
        *dist_run(
            run, "dist_gloo_cuda_2ranks_quick.json", "gloo, CUDA tensors, two ranks (--quick)"
        ),
    ]


def texts(run: Run) -> list[str]:
    out: list[str] = []
    for name in (*TEXTS, "dist_nccl_1rank_full.txt"):
        if not run.path(name).is_file():
            continue
        text = run.text(name)
        if text is None:
            continue
        lines = text.rstrip().splitlines()
        more = f" (first {TEXT_LINES} of {len(lines)} lines)" if len(lines) > TEXT_LINES else ""
        out += ["", f"<details><summary>{name}{more}</summary>", "", "```", *lines[:TEXT_LINES]]
        out += ["```", "", "</details>"]
    return ["", "### Outputs as printed", *out] if out else []


def pytest_lines(run: Run) -> list[str]:
    """pytest's last line ("2 failed, 30 passed in 41.0s") and the tests that failed."""
    out: list[str] = []
    for name, what in (("pytest_gpu.txt", "tests/gpu"), ("pytest_gpu_slow.txt", "slow ones")):
        if not run.path(name).is_file():
            continue
        text = run.text(name)
        if text is None:
            continue
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        failed = [f"- `{ln[:160]}`" for ln in lines if ln.startswith(("FAILED ", "ERROR "))]
        out += ["", f"GPU tests (`{what}`): `{lines[-1][:200]}`.", *([""] if failed else [])]
        out += failed[:30]
    return out


def missing_line(run: Run, name: str) -> str | None:
    """The line for step ``name`` when its result is not measured: its result file's
    state and why (None when it ended ok and its result file reads)."""
    rec, step = run.records.get(name), KNOWN.get(name)
    result = str(rec.get("result") or rec.get("stdout") or "") if rec else ""
    result = result or (step.result_file if step else "")
    if not result:
        return None
    _ = run.json(result) if result.endswith(".json") else run.text(result)  # notes problems
    if rec is not None and rec.get("status") == "ok" and result not in run.problems:
        return None
    return f"- `{result}`: {run.why(result)}"


def not_measured(run: Run) -> list[str]:
    """Every step that did not end ok, with its result file's state and why; the steps
    that ended ok but wrote nothing usable; the known steps this run did not have."""
    names = list(run.records)
    if not names:  # no record: the main steps, and any other step whose file is there
        names = [s.name for s in MAIN]
        names += [
            n for n, s in KNOWN.items() if n not in names and run.path(s.result_file).exists()
        ]
    lines = [line for line in (missing_line(run, n) for n in names) if line]
    if not run.meta:
        why = run.problems.get("steps.json", "missing")
        lines.insert(0, f"- `steps.json`: {why}, so no step has a record")
    unrun = [s.name for s in (*MAIN, *EXTENDED) if s.name not in names]
    if unrun:
        lines.append(f"- not among this run's steps: {', '.join(dict.fromkeys(unrun))}")
    return ["", "### Not measured in this run", "", *(lines or ["Nothing: every step wrote."])]


def summarize(roots: Sequence[Path] | Path) -> str:
    run = Run([roots] if isinstance(roots, Path) else list(roots))
    out = ["## NVIDIA GPU run", ""]
    parts = (
        header,
        doctor_section,
        micro_section,
        workloads_section,
        workload_goals_section,
        fit_section,
        dist_section,
        texts,
        not_measured,
    )
    for part in parts:
        try:
            out += part(run)
        except Exception as exc:  # a file of an unforeseen shape costs one section, not all
            out += ["", f"({part.__name__}: could not be read: {type(exc).__name__}: {exc})"]
    return "\n".join(out) + "\n"


def unpack(path: Path, tmp: Path) -> Path:
    """The folder to read for ``path``: an archive unpacked, a check's work folder, or the
    folder's archive when the loose files are gone."""
    if path.is_dir() and (path / "work").is_dir():
        return path / "work"
    if path.is_dir() and not (path / ARCHIVE).is_file():
        return path
    archive = path / ARCHIVE if path.is_dir() else path
    dest = Path(tempfile.mkdtemp(dir=tmp))
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("paths", type=Path, nargs="+", help="output folders or gpu_check.tar.gz")
    ap.add_argument("--out", type=Path, help="write the Markdown here instead of stdout")
    args = ap.parse_args(argv)
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print(f"not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        text = summarize([unpack(p, Path(tmp)) for p in args.paths])
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
