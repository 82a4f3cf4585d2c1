"""The verdict in plain words, from workload results, and the cross-checks behind it.

For each workload: how much faster the best GPU is than the CPU (tuned against tuned:
the fair comparison), and how much a tutorial-style program leaves on the table (tuned
against reference on the same device). Before any speed is believed, the two
implementations must agree on what they computed (accuracy, loss, generated tokens).
"""

from __future__ import annotations

from collections.abc import Sequence

from gpuscout._types import Result
from gpuscout.timing.load import disturbance
from gpuscout.workloads import registry

ACCURACY_TOLERANCE = 0.02  # tuned vs reference test accuracy, absolute
LOSS_TOLERANCE = 0.05  # tuned vs reference final loss, relative
LOW_PRECISION_FACTOR = 2.0  # bf16 runs get twice the tolerance
SAME_SPEED = 0.05  # within 5% of each other: the same speed, given run-to-run noise


def _primary(results: Sequence[Result], workload: str) -> list[Result]:
    """The figures that stand for ``workload``: its record's primary variant (an
    unknown workload's, or one without: the first variant that ran)."""
    spec = registry.find(workload)
    want = spec.primary_variant if spec is not None else None
    mine = [r for r in results if r.extra.get("workload") == workload]
    if want is None:
        variants = [r.extra.get("variant") for r in mine]
        want = next((v for v in variants if v is not None), None)
    return [r for r in mine if r.extra.get("variant") == want or r.status != "ok"]


def _fig(results: Sequence[Result], device: str, impl: str) -> float | None:
    for r in results:
        if r.device == device and r.extra.get("impl") == impl and r.status == "ok":
            return r.figure
    return None


def _x(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def agreement(reference: Result, tuned: Result) -> str | None:
    """None when the two runs computed the same thing within tolerance, else why not."""
    a, b = reference.extra, tuned.extra
    low = b.get("dtype") not in (None, "fp32") or a.get("dtype") not in (None, "fp32")
    factor = LOW_PRECISION_FACTOR if low else 1.0
    if a.get("accuracy") is not None and b.get("accuracy") is not None:
        diff = abs(float(a["accuracy"]) - float(b["accuracy"]))
        if diff > ACCURACY_TOLERANCE * factor:
            return f"test accuracy differs by {diff * 100:.1f} points"
        return None
    if a.get("generated_digest") and a.get("dtype") == b.get("dtype"):
        if a["generated_digest"] != b["generated_digest"]:
            return "generated different tokens from the same prompt and weights"
        return None
    key = "loss_check" if "loss_check" in a and "loss_check" in b else "loss"
    if a.get(key) is not None and b.get(key) is not None:
        la, lb = float(a[key]), float(b[key])
        rel = abs(la - lb) / max(abs(la), 1e-12)
        if rel > LOSS_TOLERANCE * factor:
            what = "the loss after 3 steps" if key == "loss_check" else "the final loss"
            return f"{what} differs by {rel * 100:.1f}% ({la:.4g} vs {lb:.4g})"
    return None


def _by(rs: Sequence[Result], device: str, impl: str) -> Result | None:
    return next(
        (r for r in rs if r.device == device and r.extra.get("impl") == impl and r.status == "ok"),
        None,
    )


def _summary(wl: str, rs: Sequence[Result]) -> str | None:
    best: dict[str, float] = {}
    for d in dict.fromkeys(r.device for r in rs):
        figs = [f for f in (_fig(rs, d, "tuned"), _fig(rs, d, "reference")) if f]
        if figs:
            best[d] = max(figs)
    gpus = [d for d in best if d != "cpu"]
    top = max(gpus, key=lambda g: best[g]) if gpus else None
    cpu = best.get("cpu")
    parts = _gpu_vs_cpu(top, best)
    where = top or ("cpu" if cpu else None)
    if where is not None:
        parts += _tuned_vs_reference(rs, where)
    return f"on {wl}: " + "; ".join(parts) + "." if parts else None


def _gpu_vs_cpu(top: str | None, best: dict[str, float]) -> list[str]:
    cpu = best.get("cpu")
    if top is not None and cpu:
        ratio = best[top] / cpu
        if ratio >= 1:
            return [f"your GPU ({top}) is {_x(ratio)} faster than your CPU"]
        return [f"your GPU ({top}) is {_x(1 / ratio)} slower than your CPU"]
    if top is None and cpu:
        return ["no GPU was measured"]
    return []


def _tuned_vs_reference(rs: Sequence[Result], where: str) -> list[str]:
    ref = _fig(rs, where, "reference")
    tuned = _fig(rs, where, "tuned")
    if not ref or not tuned:
        return []
    if abs(tuned / ref - 1) < SAME_SPEED:
        return ["the tuned and tutorial-style versions run at the same speed there"]
    if tuned >= ref:
        return [f"a tutorial-style program leaves {_x(tuned / ref)} on the table there"]
    return [f"the tuned version is {_x(ref / tuned)} slower than tutorial-style there"]


def programs() -> dict[str, str]:
    """Comparison program (its package, the Results' impl) -> how the verdict names it."""
    return {
        s.comparison.package: s.comparison.program
        for s in registry.specs()
        if s.comparison is not None
    }


def _comparisons(wl: str, rs: Sequence[Result]) -> list[str]:
    """How the third-party program as people run it compares with the tuned version."""
    lines = []
    names = programs()
    for r in rs:
        impl = str(r.extra.get("impl"))
        if impl not in names or r.status != "ok" or not r.figure:
            continue
        tuned = _fig(rs, r.device, "tuned")
        versus = f"; the tuned version is {_x(tuned / r.figure)} faster" if tuned else ""
        if tuned and tuned < r.figure:
            versus = f"; it is {_x(r.figure / tuned)} faster than the tuned version"
        lines.append(f"{wl} on {r.device}: {names[impl]} runs at {r.figure:,.0f} {r.unit}{versus}.")
    return lines


def _problems(wl: str, rs: Sequence[Result]) -> list[str]:
    lines = [
        f"{wl}: {r.extra.get('impl')} on {r.device} {r.status}: {r.error}"
        for r in rs
        if r.status not in ("ok", "skipped")
    ]
    for d in dict.fromkeys(r.device for r in rs):
        ref, tuned = _by(rs, d, "reference"), _by(rs, d, "tuned")
        if ref is not None and tuned is not None and (why := agreement(ref, tuned)):
            lines.append(f"{wl} on {d}: the two implementations disagree: {why}.")
    return lines


def verdict(results: Sequence[Result], *, say_disturbed: bool = True) -> str:
    """A few plain lines for people: one per workload, then any problems. When the
    figures were disturbed (a busy host, a throttled GPU), that comes first, unless
    ``say_disturbed`` is False because the caller has already said it."""
    lines: list[str] = []
    disturbed = disturbance(results) if say_disturbed else None
    if disturbed is not None:
        lines.append(disturbed.line())
    workloads = dict.fromkeys(str(r.extra["workload"]) for r in results if "workload" in r.extra)
    for wl in workloads:
        rs = _primary(results, wl)
        summary = _summary(wl, rs)
        if summary:
            lines.append(summary)
        lines.extend(_comparisons(wl, rs))
        lines.extend(_problems(wl, rs))
    lines.extend(stand_ins(results))
    return "\n".join(lines) if lines else "no workload results."


def stand_ins(results: Sequence[Result]) -> list[str]:
    """A line for each workload that trained on synthetic stand-in data where its record
    names a real dataset (its files were missing)."""
    lines = []
    for wl in dict.fromkeys(
        str(r.extra.get("workload")) for r in results if r.extra.get("synthetic_data")
    ):
        spec = registry.find(wl)
        if spec is not None and spec.data is not None:
            label = spec.data.label
            lines.append(
                f"{wl} trained on synthetic stand-in data (no {label} files): its accuracy "
                f"is not {label}'s; pass --data-dir to use the real files."
            )
    return lines
