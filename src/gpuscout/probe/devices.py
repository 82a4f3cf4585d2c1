"""Device words on the command line (cpu, cuda, cuda:N, all) -> the devices to use.

One parser for every command that runs work on devices (bench micro, bench workload, run).
What exists is asked of ``available`` only after the words parse, so a typo is reported
without importing a framework.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from gpuscout.errors import UsageError

DEVICE_HINT = "use cpu, cuda, cuda:N or all (comma-separated for several)"
_CUDA_RE = re.compile(r"^cuda:(\d+)$")


def resolve_devices(
    spec: str | Sequence[str] | None, available: Callable[[], Sequence[str]]
) -> list[str]:
    """Device words (comma lists allowed) -> device strings in order, or UsageError."""
    words = _words(spec)
    if all(w == "cpu" for w in words) and words:
        return ["cpu"]  # nothing to ask of the framework (importing torch costs seconds)
    have = list(available())
    out: list[str] = []
    for w in words or ["all"]:
        out.extend(d for d in _devices(w, have) if d not in out)
    return out


def _words(spec: str | Sequence[str] | None) -> list[str]:
    """The words, lower-cased, each a known kind of device word (UsageError if not)."""
    items = [spec] if isinstance(spec, str) else list(spec or ["all"])
    words = [w.strip().lower() for item in items for w in item.split(",") if w.strip()]
    for w in words:
        if w not in ("all", "cpu", "cuda") and not _CUDA_RE.match(w):
            raise UsageError(f"unknown device {w!r}", DEVICE_HINT)
    return words


def _devices(word: str, have: list[str]) -> list[str]:
    """The devices one word names, of those the framework ``have``s."""
    gpus = [d for d in have if d != "cpu"]
    if word == "all":
        return have
    if word == "cuda":
        if not gpus:
            raise UsageError("no CUDA GPU is visible to PyTorch", "run `gpuscout doctor`")
        return gpus
    if word != "cpu" and word not in have:
        where = f"this machine has {', '.join(gpus)}" if gpus else "no CUDA GPU is visible"
        raise UsageError(f"no such device {word!r}: {where}", DEVICE_HINT)
    return [word]
