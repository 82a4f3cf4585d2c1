"""Reading a GPU check's output for ``gpuscout.validate.summary``: files read leniently
(missing, empty, cut off), steps.json's records, result lookup and table cells.

Nothing here makes up a figure: a value that cannot be read is None, and ``Run.why``
says why, with the step's status from steps.json and the last line of its stderr.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeGuard

from gpuscout.report import fmt
from gpuscout.validate.gpu_check import EXTENDED, MAIN, Step

NOT = "not measured"
PLAIN_TOLERANCE = 0.03  # the goal: gpuscout within 3% of plain PyTorch
STEPS_JSON = "steps.json"
# Every step the check knows, by name: the commands of a folder that has no steps.json.
KNOWN: dict[str, Step] = {s.name: s for s in (*MAIN, *EXTENDED)}


def step_records(doc: Any) -> list[dict[str, Any]]:
    """steps.json's step records that have at least a name and a status."""
    steps = doc.get("steps") if isinstance(doc, dict) else None
    if not isinstance(steps, list):
        return []
    return [r for r in steps if isinstance(r, dict) and r.get("name") and r.get("status")]


class Run:
    """One or more output folders (a main call's and an --extended one's) read as one:
    a file is read from the first folder that has it; steps.json records are merged,
    a later folder's record of a step replacing an earlier one's. Each problem is kept
    to be reported."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = list(roots)
        self.problems: dict[str, str] = {}  # file -> why it gave nothing
        self.meta: list[dict[str, Any]] = []  # each steps.json, less its steps
        self.records: dict[str, dict[str, Any]] = {}
        for root in self.roots:
            doc = self._load(root / STEPS_JSON)
            if isinstance(doc, dict):
                self.meta.append({k: v for k, v in doc.items() if k != "steps"})
                self.records |= {str(r["name"]): r for r in step_records(doc)}

    def _load(self, path: Path) -> Any:
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(errors="replace"))
        except ValueError as exc:  # a check killed mid-write
            self.problems[STEPS_JSON] = f"not valid JSON ({exc})"
            return None

    @property
    def root(self) -> Path:
        return self.roots[0]

    def path(self, name: str) -> Path:
        found = [r / name for r in self.roots if (r / name).exists()]
        return found[0] if found else self.root / name

    def text(self, name: str) -> str | None:
        path = self.path(name)
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
        """The step that writes the file ``name`` (recorded, else a known one)."""
        for rec in self.records.values():
            if name in (rec.get("result"), rec.get("stdout"), *(rec.get("files") or [])):
                return str(rec["name"])
        return next((s.name for s in KNOWN.values() if name in s.outputs), None)

    def command(self, step: str) -> str:
        rec = self.records.get(step)
        if rec and rec.get("command"):
            return str(rec["command"])
        known = KNOWN.get(step)
        return known.display("cuda:0", False) if known else "not recorded"

    def command_of(self, name: str) -> str:
        step = self.step_of(name)
        return self.command(step) if step else "not recorded"

    def why(self, name: str) -> str:
        """Why ``name`` gave nothing (or not all): the file's state, the step's status,
        the last line of its stderr."""
        parts = [self.problems.get(name) or ("written" if self.path(name).is_file() else "missing")]
        step = self.step_of(name)
        rec = self.records.get(step) if step else None
        if step is None:
            parts.append("no step writes it")
        elif rec is None:
            parts.append(f"step `{step}` {not_recorded(self)}")
        else:
            parts.append(f"step `{step}` {result_text(rec)}")
        if step is not None:
            said = [r / f"{step}.stderr" for r in self.roots if (r / f"{step}.stderr").is_file()]
            last = last_line(said[0]) if said else ""
            if last:
                parts.append(f"stderr: `{last[:160]}`")
        return "; ".join(parts)


def not_recorded(run: Run) -> str:
    if not run.meta:
        return "has no record: no steps.json (the check recorded nothing)"
    return "has no record in steps.json (not in this call's steps)"


def last_line(path: Path) -> str:
    """The last line of a file that is not blank ("" for none, or no file)."""
    if not path.is_file():
        return ""
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def seconds(value: Any) -> str:
    return f"{float(value):.1f} s" if is_num(value) else "no time recorded"


def result_text(rec: dict[str, Any]) -> str:
    """A step record as read in a table: "ok, exit 0, 11.3 s of its 75 s cap"."""
    status, reason, wall = rec.get("status"), rec.get("reason") or "", rec.get("wall_s")
    cap = f" of its {rec.get('cap_s')} s cap" if rec.get("cap_s") else ""
    if status == "ok":
        return f"ok, exit {rec.get('exit_code')}, {seconds(wall)}{cap}"
    if status == "cut off":
        return f"cut off ({reason or 'past its cap'}) after {seconds(wall)}"
    if status == "failed":
        return f"failed ({reason or 'exit ' + str(rec.get('exit_code'))}) after {seconds(wall)}"
    if status == "skipped":
        return f"skipped: {reason}" if reason else "skipped"
    return f"left {status} (the check was killed before it could record the end)"


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


def measured(r: dict[str, Any] | None) -> bool:
    return r is not None and r.get("status") == "ok" and is_num(r.get("figure"))


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
    rec = run.records.get(step)
    if rec is None:
        return f"`{step}`: not run"
    text = f"`{step}`: {result_text(rec)}"
    if goal_s is not None:
        text += f"; goal {fmt.seconds(goal_s)}: {verdict(rec, goal_s)}"
    return text


def verdict(rec: dict[str, Any], goal_s: float) -> str:
    """A wall-time goal: met or not when the step ran to its end; a step cut off past
    the goal did not meet it; anything else cannot be judged."""
    wall_s = rec.get("wall_s")
    if not is_num(wall_s):
        return "not judged"
    if rec.get("status") == "ok":
        return "met" if wall_s <= goal_s else "not met"
    if rec.get("status") == "cut off" and wall_s > goal_s:
        return "not met"
    return "not judged"
