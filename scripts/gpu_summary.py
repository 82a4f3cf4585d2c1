"""Turn a GPU run's output folder (what scripts/gpu_check.sh writes under $OUT) into the
Markdown section of docs/benchmarks.md.

    python scripts/gpu_summary.py out/                      # Markdown on stdout
    python scripts/gpu_summary.py out/ --out out/summary.md

Reads whatever is there: any file may be missing, empty or cut off (a step stopped by
the deadline). No figure is ever made up: a value that is missing or failed is printed
as such, and the "not measured" list gives each missing step's exit code from timings.txt.
The per-step commands are read from gpu_check.sh itself, so they cannot drift from it.
Helpers that read the folder are in gpu_summary_io.py beside this file.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from gpu_summary_io import (
    NOT,
    STEPS,
    UNTIMED,
    Run,
    cell,
    compare,
    err,
    flags,
    gib,
    is_num,
    max_cuda,
    pick,
    plain_cell,
    results_of,
    size_of,
    step_commands,
    table,
    wall,
)

from gpuscout.report import fmt

MATMUL_N = 8192
# The issue's figures: plain PyTorch on an H100 80GB SXM (issue 3), TFLOPS and GB/s.
ISSUE_TFLOPS = {"bf16": 763.0, "fp16": 736.0, "tf32": 396.0, "fp32": 51.0, "fp8": 1361.0}
# (row, gpuscout result name, plain_torch_reference.py key, the issue's GB/s)
BANDWIDTH = (
    ("device copy", "memory/copy", "copy_gbs", 3000.0),
    ("device triad", "memory/triad", "triad_gbs", None),
    ("H2D pinned", "transfer/h2d/pinned", "h2d_pinned_gbs", 54.0),
    ("H2D pageable", "transfer/h2d/pageable", "h2d_pageable_gbs", 17.0),
    ("D2H pinned", "transfer/d2h/pinned", "d2h_pinned_gbs", None),
    ("D2H pageable", "transfer/d2h/pageable", "d2h_pageable_gbs", None),
)
TRANSFER_BYTES = 2**30  # plain_torch_reference.py's transfer size: the full run's largest
FIT_TOLERANCE_PCT = 10.0  # issue 5: predicted peak memory within 10% of measured
WALL_GOALS_S = {"bench micro --quick": 60.0, "bench micro (full, cuda:0)": 300.0}
RUN_GOAL_S = 120.0  # issue 4: `gpuscout run` within 2 minutes on the H100
TEXT_LINES = 150  # text outputs are quoted at most this long; the file has the rest
TEXTS = ("pytest_gpu.txt", "workloads_tuned.txt", "run.txt", "advise.txt")


def header(run: Run, phases: str | None, quick: bool) -> list[str]:
    lines = (run.text("versions.txt") or "").splitlines()
    kv = {k: v.strip() for k, _, v in (ln.strip().partition(" ") for ln in lines)}
    # nvidia-smi's "name, driver_version" line (absent without a driver)
    smi = next((ln.strip() for ln in lines if re.match(r"^[^,]+, [\d.]+$", ln.strip())), NOT)
    doc = run.json("doctor.json")
    nv = (doc.get("system") or {}).get("nvidia") or {} if isinstance(doc, dict) else {}
    inv = "not recorded (gpu_check.sh's pack passes --phases)"
    if phases is not None:
        inv = f'`OUT=<dir> PHASES="{phases}" bash scripts/gpu_check.sh{" --quick" * quick}`'
    out = [
        f"Date: {kv.get('date:', NOT)}. Device (nvidia-smi name, driver): {smi}; the driver "
        f"supports CUDA up to {max_cuda(nv.get('cuda_driver_version'))}. "
        f"Python {kv.get('python', NOT)}, torch {kv.get('torch', NOT)}.",
        "",
        f"Invocation: {inv}. Each step's command (`$OUT` is the output folder), with its "
        "exit code and wall time from timings.txt (exit 124: cut off by the deadline):",
        "",
    ]
    cmds, rows = step_commands(), []
    for step, _ in STEPS:
        t = run.timings.get(step)
        res = "not run" if t is None else t.get("skipped") or f"exit {t['rc']}, {t['wall']} s"
        rows.append([step, f"`{cmds.get(step, 'see scripts/gpu_check.sh')}`", str(res)])
    # the results store: what scripts/predict_validate.py and `gpuscout report --db` read
    db = (
        ["", "Results store: `home/gpuscout.db`."]
        if (run.root / "home/gpuscout.db").is_file()
        else []
    )
    return out + table(["step", "command", "result"], rows) + db + pytest_line(run)


def issue2(run: Run) -> list[str]:
    out = [
        "",
        "### `gpuscout doctor` (issue 2)",
        "",
        "Command: `python -m gpuscout doctor --json` (and without `--json`: doctor.txt).",
        "",
    ]
    doc = run.json("doctor.json")
    if not isinstance(doc, dict):
        txt = run.text("doctor.txt")
        out.append(f"doctor.json: {run.why('doctor.json')}.")
        return [*out, "", "```", txt.rstrip(), "```"] if txt else out
    system = doc.get("system") or {}
    nv = system.get("nvidia") or {}
    fws = [f for f in system.get("frameworks") or [] if isinstance(f, dict)]
    torch = next((f for f in fws if f.get("name") == "torch"), {})
    rows = [
        ["driver", str(nv.get("driver_version") or f"{fmt.NA} ({nv.get('state')})")],
        ["max CUDA (driver)", max_cuda(nv.get("cuda_driver_version"))],
        ["torch", str(torch.get("version") or fmt.NA)],
        ["torch CUDA build", str(torch.get("cuda_build") or fmt.NA)],
        ["torch arch list", " ".join(torch.get("arch_list") or []) or fmt.NA],
    ]
    for g in (g for g in nv.get("gpus") or [] if isinstance(g, dict)):
        cc = g.get("compute_capability")
        rows += [
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
    findings = [f for f in doc.get("findings") or [] if isinstance(f, dict)]
    n = {s: sum(f.get("status") == s for f in findings) for s in ("pass", "warn", "fail", "skip")}
    verdict = f"{fmt.plural(n['fail'], 'check')} FAILED" if n["fail"] else "no check failed"
    out += [
        *table(["", "doctor"], rows),
        "",
        f"Exit code {doc.get('exit_code')}: {verdict}; {n['pass']} ok, "
        f"{fmt.plural(n['warn'], 'warning')}, "
        f"{n['skip']} skipped. Findings:",
        "",
    ]
    for f in findings:
        subject = f"[{f['subject']}] " if f.get("subject") else ""
        out.append(f"- {f.get('status')} `{f.get('id')}` {subject}{f.get('summary')}")
    return out


def issue3(run: Run) -> list[str]:
    full = results_of(run.json("bench_full.json"))
    quick = results_of(run.json("bench_quick.json"))
    plain = run.json("plain_reference.json")
    plain = plain if isinstance(plain, dict) else {}
    head = ["figure", "gpuscout full", "gpuscout --quick", "plain PyTorch", "issue's figure"]
    rows = []
    for d in ("bf16", "fp16", "tf32", "fp32", "fp8", "fp64", "int8"):
        unit = "TOPS" if d == "int8" else "TFLOPS"
        g, q = pick(full, f"matmul/{d}", MATMUL_N), pick(quick, f"matmul/{d}", MATMUL_N)
        p = plain.get(f"matmul_{d}_{MATMUL_N}_{unit.lower()}")
        ref = fmt.num(ISSUE_TFLOPS[d]) if d in ISSUE_TFLOPS else "none"
        row = [f"matmul {d} {MATMUL_N}^3 ({unit})", cell(g, MATMUL_N), cell(q, MATMUL_N)]
        rows.append([*row, plain_cell(p), ref, *compare(g, p, MATMUL_N), flags(g)])
    for label, name, key, ref_gbs in BANDWIDTH:
        size = TRANSFER_BYTES if name.startswith("transfer") else None
        g, q, p = pick(full, name, size), pick(quick, name, size), plain.get(key)
        ref = fmt.num(ref_gbs) if ref_gbs else "none"
        row = [f"{label} (GB/s)", cell(g, size), cell(q, size), plain_cell(p), ref]
        rows.append([*row, *compare(g, p, size), flags(g)])
    files = ("bench_full.json", "bench_quick.json", "plain_reference.json")
    src = "; ".join(f"{f} {run.problems.get(f, 'read')}" for f in files)
    if plain.get("device") or plain.get("torch"):
        src += f"; plain_reference ran on {plain.get('device')} with torch {plain.get('torch')}"
    walls = "; ".join(wall(run, s, g) for s, g in WALL_GOALS_S.items())
    return [
        "",
        "### Micro-benchmarks against plain PyTorch (issue 3)",
        "",
        *table([*head, "full / plain", "within 3%", "flags (full)"], rows),
        "",
        f"Sources: {src}.",
        "",
        f"Wall times: {walls}.",
    ]


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


def issue4(run: Run) -> list[str]:
    out, rows = ["", "### Workload goals (issue 4)", ""], []
    doc = run.json("workload_goals.json")
    if isinstance(doc, dict):
        out += [f"workload_goals.json: {doc.get('device')}, {doc.get('date')}.", ""]
        for name in ("mlp", "cnn", "llm", "quick"):
            g = doc.get(name)
            if not isinstance(g, dict):
                if name != "quick":  # gpu_check.sh asks for mlp, cnn and llm
                    rows.append([name, NOT, "", "not judged", "missing from the file (cut off?)"])
                continue
            checks = g.get("checks") or {}
            verdict = {"True": "met", "False": "not met"}.get(str(g.get("met")), "not judged")
            failed = ", ".join(f"failed: {k}" for k, ok in checks.items() if not ok)
            why = str(g.get("why") or g.get("note") or failed)
            rows.append([name, goal_figure(name, g), str(g.get("goal") or "none"), verdict, why])
    else:
        out += [f"workload_goals.json: {run.why('workload_goals.json')}.", ""]
    t = run.timings.get("gpuscout run")
    if t is not None and "rc" in t:
        met = ("met" if t["wall_s"] <= RUN_GOAL_S else "not met") if t["rc"] == 0 else "not judged"
        goal = f"<= {fmt.seconds(RUN_GOAL_S)}"
        rows.append(["gpuscout run", f"{t['wall']} s wall, exit {t['rc']}", goal, met, ""])
    return out + table(["goal", "figure", "target", "verdict", "why"], rows) if rows else out


def issue5(run: Run) -> list[str]:
    out = ["", "### `fit`: predicted against measured peak memory (issue 5)", ""]
    doc = run.json("fit_validate.json")
    cases = (
        [r for r in doc.get("rows") or [] if isinstance(r, dict)] if isinstance(doc, dict) else []
    )
    if not cases:  # fit_validate.md is written row by row: what a cut-off run did measure
        md = run.text("fit_validate.md")
        out.append(f"fit_validate.json: {run.why('fit_validate.json')}.")
        return [*out, "", "fit_validate.md as printed:", "", md.rstrip()] if md else out
    kind = str(doc.get("kind"))
    out.append(f"Command: `{doc.get('command')}` ({doc.get('date')}), {kind}.")
    if kind != "measured":
        out[-1] += " Not a GPU measurement, so not the issue's goal."
    rows, within, judged, closer_fit, comparable = [], 0, 0, 0, 0
    for r in cases:
        m = r.get("measurement") or {}
        measured = gib(r.get("measured_bytes"))
        if m.get("status") not in (None, "ok"):
            measured = f"{m.get('status')}: {str(m.get('error') or '')[-60:]}"
        e, a = r.get("predicted_error_pct"), r.get("accelerate_error_pct")
        judged += is_num(e)
        within += is_num(e) and abs(e) <= FIT_TOLERANCE_PCT
        closer = "not comparable"
        if is_num(e) and is_num(a):
            comparable += 1
            closer_fit += abs(e) < abs(a)
            closer = "fit" if abs(e) < abs(a) else "accelerate" if abs(a) < abs(e) else "tie"
        ok = fmt.yes_no(abs(e) <= FIT_TOLERANCE_PCT) if is_num(e) else fmt.NA
        row = [str(r.get("case")), gib(r.get("predicted_bytes")), measured, err(e), ok]
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


def dist(run: Run, name: str, title: str) -> list[str]:
    doc = run.json(name)
    out = ["", f"#### {title}", ""]
    if not isinstance(doc, dict):
        return [*out, f"{name}: {run.why(name)}."]
    s = doc.get("summary") or {}
    out += [
        f"{s.get('world_size')} rank(s), backend {s.get('backend')}, {s.get('device')} tensors, "
        f"torch {s.get('torch')}, {s.get('duration_s')} s; exit code {doc.get('exit_code')}.",
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
    rows = []
    for r in rs:
        e = r.get("extra") or {}
        if "scaled_workload" in e:
            fig = f"{cell(r)} {r.get('unit')}"
            rows.append([str(e["scaled_workload"]), str(e.get("processes")), fig])
            rows[-1] += [fmt.pct(e.get("efficiency")), fmt.pct(e.get("comm_share"))]
    head = ["workload", "processes", "throughput", "efficiency", "comm share"]
    return [*out, "", *table(head, rows)] if rows else out


def issue7(run: Run) -> list[str]:
    return [
        "",
        "### `gpuscout bench dist` (issue 7)",
        *dist(run, "dist_nccl_1rank_quick.json", "NCCL, one rank (--quick)"),
        *dist(run, "dist_gloo_cuda_2ranks_quick.json", "gloo, CUDA tensors, two ranks (--quick)"),
    ]


def texts(run: Run) -> list[str]:
    out: list[str] = []
    for name in (*TEXTS, "dist_nccl_1rank_full.txt"):
        text = run.text(name)
        if text is None:
            continue
        lines = text.rstrip().splitlines()
        more = f" (first {TEXT_LINES} of {len(lines)} lines)" if len(lines) > TEXT_LINES else ""
        out += ["", f"<details><summary>{name}{more}</summary>", "", "```", *lines[:TEXT_LINES]]
        out += ["```", "", "</details>"]
    return ["", "### Outputs as printed", *out] if out else []


def pytest_line(run: Run) -> list[str]:
    """pytest's last line ("2 failed, 30 passed in 41.0s") and the tests that failed."""
    text = run.text("pytest_gpu.txt")
    if text is None:
        return []
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    failed = [f"- `{ln[:160]}`" for ln in lines if ln.startswith(("FAILED ", "ERROR "))]
    return [
        "",
        f"GPU tests (`tests/gpu`): `{lines[-1][:200]}`.",
        *([""] if failed else []),
        *failed[:30],
    ]


def not_measured(run: Run) -> list[str]:
    for name in (*UNTIMED, *(f for _, f in STEPS), "timings.txt"):
        run.text(name)  # records the missing and empty ones
    lines = [f"- `{name}`: {run.why(name)}" for name in run.problems]
    return ["", "### Not measured in this run", "", *(lines or ["Nothing: every step wrote."])]


def summarize(root: Path, phases: str | None = None, quick: bool = False) -> str:
    run = Run(root)
    out = ["## NVIDIA GPU run", "", *header(run, phases, quick)]
    for part in (issue2, issue3, issue4, issue5, issue7, texts, not_measured):
        try:
            out += part(run)
        except Exception as exc:  # a file of an unforeseen shape costs one section, not all
            out += ["", f"({part.__name__}: could not be read: {type(exc).__name__}: {exc})"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, help="the $OUT folder of scripts/gpu_check.sh")
    ap.add_argument("--out", type=Path, help="write the Markdown here instead of stdout")
    ap.add_argument("--phases", help="the PHASES gpu_check.sh ran (recorded in the header)")
    ap.add_argument("--quick", action="store_true", help="gpu_check.sh ran with --quick")
    args = ap.parse_args(argv)
    if not args.out_dir.is_dir():
        print(f"not a folder: {args.out_dir}", file=sys.stderr)
        return 2
    text = summarize(args.out_dir, args.phases, args.quick)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
