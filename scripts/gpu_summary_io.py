"""Reading scripts/gpu_check.sh's output folder for scripts/gpu_summary.py: files read
leniently (missing, empty, cut off), timings.txt, the steps' commands, result lookup.

Nothing here makes up a figure: a value that cannot be read is None, and ``Run.why``
says why, with the step's exit code from timings.txt and the last line of its stderr.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeGuard

from gpuscout.report import fmt

CHECK_SH = Path(__file__).resolve().parent / "gpu_check.sh"
# Each timed step of gpu_check.sh (its name in timings.txt) and the file it writes.
STEPS = (
    ("plain_reference", "plain_reference.json"),
    ("pytest_gpu", "pytest_gpu.txt"),
    ("bench micro --quick", "bench_quick.json"),
    ("bench micro (full, cuda:0)", "bench_full.json"),
    ("bench dist nccl 1 rank --quick", "dist_nccl_1rank_quick.json"),
    ("bench dist gloo+cuda 2 ranks --quick", "dist_gloo_cuda_2ranks_quick.json"),
    ("bench dist nccl 1 rank (full, 1 KiB-1 GiB)", "dist_nccl_1rank_full.txt"),
    ("workload_goals", "workload_goals.json"),
    ("bench workload all tuned", "workloads_tuned.txt"),
    ("gpuscout run", "run.txt"),
    ("gpuscout advise", "advise.txt"),
    ("fit_validate", "fit_validate.json"),
)
UNTIMED = ("versions.txt", "doctor.txt", "doctor.json")  # phase check writes them untimed
NOT = "not measured"
PLAIN_TOLERANCE = 0.03  # issue 3: gpuscout within 3% of plain PyTorch


class Run:
    """The output folder: files read leniently, each problem kept to be reported."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: dict[str, str] = {}  # file -> why it gave nothing
        self.timings = parse_timings(self.text("timings.txt") or "")

    def text(self, name: str) -> str | None:
        path = self.root / name
        if not path.is_file():
            self.problems.setdefault(name, "missing")
            return None
        text = path.read_text(errors="replace")
        if not text.strip():
            self.problems.setdefault(name, "empty")
            return None
        return text

    def json(self, name: str) -> Any:
        text = self.text(name)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:  # cut off mid-write, or an error printed instead
            self.problems[name] = f"not valid JSON ({exc})"
            return None

    def step_of(self, name: str) -> str | None:
        return next((step for step, file in STEPS if file == name), None)

    def why(self, name: str) -> str:
        """Why ``name`` gave nothing: the problem, the step's exit code, its stderr."""
        parts = [self.problems.get(name, "missing")]
        step = self.step_of(name)
        t = self.timings.get(step) if step else None
        if step is None:
            parts.append("written untimed by phase check")
        elif t is None:
            parts.append(f"step `{step}` has no line in timings.txt (its phase did not run)")
        elif t.get("skipped"):
            parts.append(f"step `{step}` skipped: {t['skipped']}")
        else:
            cut = " (cut off by the deadline)" if t["rc"] in (124, 137) else ""
            parts.append(f"step `{step}` exit {t['rc']}{cut}, wall {t['wall']} s")
        err = (self.root / Path(name).with_suffix(".stderr")).as_posix()
        if Path(err).is_file():
            last = [ln for ln in Path(err).read_text(errors="replace").splitlines() if ln.strip()]
            if last:
                parts.append(f"stderr: `{last[-1].strip()[:160]}`")
        return "; ".join(parts)


def parse_timings(text: str) -> dict[str, dict[str, Any]]:
    """timings.txt's lines, "NAME: exit RC, wall S s" or "NAME: skipped, WHY"; the last
    line of a name wins (a folder reused across calls appends)."""
    out: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        m = re.match(r"^(.*): exit (\d+), wall ([\d.]+) s$", line.strip())
        if m:
            # bc prints nine decimals: a tenth of a second is what a wall time means
            out[m[1]] = {"rc": int(m[2]), "wall": f"{float(m[3]):.1f}", "wall_s": float(m[3])}
        elif m := re.match(r"^(.*): skipped, (.*)$", line.strip()):
            out[m[1]] = {"skipped": m[2]}
    return out


def step_commands(script: Path = CHECK_SH) -> dict[str, str]:
    """Each timed step's command line from gpu_check.sh, with $GS spelled out."""
    if not script.is_file():
        return {}
    out: dict[str, str] = {}
    for line in script.read_text().splitlines():
        m = re.match(r'\s*timed ("([^"]+)"|(\S+)) sh -c "(.*)"$', line)
        if m:
            # as one would type it: $OUT expanded by the shell, so in double quotes
            cmd = re.sub(r"'(\$OUT/[^']*)'", r'"\1"', m[4].replace("$GS", "python -m gpuscout"))
            out[m[2] or m[3]] = cmd
    return out


def table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    head = list(head)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]


def is_num(x: Any) -> TypeGuard[float]:
    return isinstance(x, int | float) and not isinstance(x, bool)


def results_of(doc: Any) -> list[dict[str, Any]]:
    rs = doc.get("results") if isinstance(doc, dict) else None
    return [r for r in rs if isinstance(r, dict)] if isinstance(rs, list) else []


def size_of(r: dict[str, Any]) -> int:
    e = r.get("extra") or {}
    return int(e.get("size") or e.get("bytes") or e.get("size_bytes") or 0)


def pick(
    results: list[dict[str, Any]], name: str, size: int | None = None
) -> dict[str, Any] | None:
    """The GPU result ``name`` at ``size`` (else its largest ok size, else any failure)."""
    found = [
        r
        for r in results
        if str(r.get("device", "")).startswith("cuda")
        and (r.get("name") == name or str(r.get("name", "")).startswith(name + "/"))
    ]
    exact = [r for r in found if size is not None and size_of(r) == size]
    ok = [r for r in found if r.get("status") == "ok" and is_num(r.get("figure"))]
    pool = exact or ok or found
    return max(pool, key=size_of) if pool else None


def cell(r: dict[str, Any] | None, size: int | None = None) -> str:
    if r is None:
        return NOT
    if r.get("status") != "ok" or not is_num(r.get("figure")):
        return f"{r.get('status')}: {str(r.get('error') or '')[:80]}".rstrip(": ")
    at = f" (at {size_label(size_of(r))})" if size and size_of(r) != size else ""
    return fmt.num(r["figure"]) + at


def plain_cell(v: Any) -> str:
    return fmt.num(v) if is_num(v) else (str(v)[:80] if v is not None else NOT)


def compare(g: dict[str, Any] | None, p: Any, size: int | None) -> tuple[str, str]:
    """gpuscout / plain, and within 3%: only like against like (same size, both measured)."""
    if g is None or not is_num(g.get("figure")) or not is_num(p) or not p:
        return fmt.NA, fmt.NA
    if size and size_of(g) != size:
        return fmt.NA, f"not comparable (at {size_label(size_of(g))})"
    r = g["figure"] / p
    return f"{r:.3f}", fmt.yes_no(abs(r - 1) <= PLAIN_TOLERANCE)


def size_label(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else str(n)


def max_cuda(v: Any) -> str:
    """NVML's CUDA driver version (13000) as people write it (13.0)."""
    return f"{v // 1000}.{v % 1000 // 10}" if isinstance(v, int) else fmt.NA


def flags(r: dict[str, Any] | None) -> str:
    if r is None or r.get("status") != "ok":
        return fmt.NA
    return ", ".join((r.get("extra") or {}).get("flags") or []) or "none"


def gib(b: Any) -> str:
    return f"{b / 2**30:.2f} GiB" if is_num(b) else fmt.NA


def err(e: Any) -> str:
    return f"{e:+.1f}%" if is_num(e) else fmt.NA


def wall(run: Run, step: str, goal_s: float | None = None) -> str:
    t = run.timings.get(step)
    if t is None or "skipped" in t:
        return f"`{step}`: " + (f"skipped ({t['skipped']})" if t else "not run")
    text = f"`{step}`: {t['wall']} s wall, exit {t['rc']}"
    if goal_s is not None:
        met = ("met" if t["wall_s"] <= goal_s else "not met") if t["rc"] == 0 else "not judged"
        text += f"; goal {fmt.seconds(goal_s)}: {met}"
    return text
