"""Numbers as people read them, shared by the HTML, Markdown and terminal renderings.

Every function takes ``None`` (a figure that could not be measured or computed) and
returns "n/a", so a missing value is never shown as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuscout.predict.wording import usd as usd  # one way to write dollars everywhere

NA = "n/a"


def num(x: float | None, unit: str = "") -> str:
    """Three significant figures below 100, whole numbers with thousands separators above."""
    if x is None:
        return NA
    ax = abs(x)
    if ax >= 1000:
        text = f"{x:,.0f}"
    elif ax >= 100:
        text = f"{x:.0f}"
    elif ax >= 10:
        text = f"{x:.1f}"
    elif ax >= 0.01 or ax == 0:
        text = f"{x:.2f}"
    else:
        text = f"{x:.2g}"
    return f"{text} {unit}".rstrip() if unit else text


def compact(x: float | None) -> str:
    """Three significant figures with k / M / G: 4.36M, 650k, 31.8k, 12.4."""
    if x is None:
        return NA
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def ceiling_pct(fraction: float | None, above: bool) -> str:
    """A workload's share of its ceiling; "!" when it ran faster than that ceiling, which
    then under-measured (a small or noisy micro-benchmark), so the share is not a figure."""
    return pct(fraction) + ("!" if above and fraction is not None else "")


def pct(fraction: float | None) -> str:
    if fraction is None:
        return NA
    return f"{100 * fraction:.1f}%" if abs(fraction) < 0.1 else f"{100 * fraction:.0f}%"


def ratio(x: float | None) -> str:
    """A speed-up: 1.3x, 12x, 0.45x."""
    if x is None:
        return NA
    if x >= 10:
        return f"{x:,.0f}x"
    return f"{x:.2g}x" if x < 0.995 else f"{x:.1f}x"


def seconds(s: float | None) -> str:
    if s is None:
        return NA
    a = abs(s)
    if a >= 3600:
        return f"{s / 3600:.1f} h"
    if a >= 60:
        return f"{s / 60:.1f} min"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if a >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns" if a else "0 s"


def gib(n: float | None) -> str:
    if n is None:
        return NA
    g = n / 2**30
    return f"{g:.0f} GiB" if g >= 10 else f"{g:.1f} GiB" if g >= 0.1 else f"{n / 2**20:.0f} MiB"


def plural(n: int, noun: str, many: str | None = None) -> str:
    """ "1 warning", "2 warnings" ("1 run", "3 runs"); ``many`` for irregular plurals."""
    return f"{n:,} {noun if n == 1 else (many or noun + 's')}"


def hours(h: float | None) -> str:
    if h is None:
        return NA
    return f"{h:,.0f} h" if h >= 10 else f"{h:.1f} h"


def yes_no(flag: bool | None) -> str:
    return NA if flag is None else ("yes" if flag else "no")


def fit_mark(fits: bool, max_batch_size: int | None) -> str:
    """A memory-fit cell: "no", "yes", "batch ≤64", or "any batch" past the search's cap."""
    if not fits:
        return "no"
    if not max_batch_size:
        return "yes"
    from gpuscout.fit.on_gpu import MAX_BATCH  # the search stops there: "any batch you like"

    return "any batch" if max_batch_size >= MAX_BATCH else f"batch ≤{compact(max_batch_size)}"


def gpu_list(fingerprint: Mapping[str, Any]) -> str:
    """ "2x NVIDIA H100 80GB HBM3" from a run's fingerprint; "none" / "n/a"."""
    gpus = fingerprint.get("gpus")
    if not isinstance(gpus, list):
        return NA
    names: dict[str, int] = {}
    for g in gpus:
        name = str(g.get("name") or "unknown GPU") if isinstance(g, dict) else "unknown GPU"
        names[name] = names.get(name, 0) + 1
    if not names:
        return "none"
    return ", ".join(n if c == 1 else f"{c}x {n}" for n, c in names.items())


_CPU_NOISE = ("(R)", "(TM)", "(tm)", " CPU", " Processor")


def short_name(device: str, name: str) -> str:
    """A device as a chart label: "CPU", "H100 80GB HBM3", "RTX 4090" (vendor dropped)."""
    if device == "cpu":
        return "CPU"
    for prefix in ("NVIDIA ", "GeForce ", "AMD ", "Radeon "):
        name = name.removeprefix(prefix)
    return name if len(name) <= 28 else name[:27] + "…"


def short_cpu(name: str) -> str:
    """ "Intel(R) Xeon(R) Platinum 8480+" -> "Xeon Platinum 8480+"."""
    for noise in _CPU_NOISE:
        name = name.replace(noise, "")
    name = name.split(" @ ")[0]
    for vendor in ("Intel ", "AMD "):
        name = name.removeprefix(vendor)
    return " ".join(name.split())
