"""Find a catalog GPU from what a person types or what the driver reports.

The rule, in order (the first step that finds anything decides):

1. an exact id ("h100-sxm5-80gb");
2. an exact name or alias after normalising (see names.py): "NVIDIA GeForce RTX 4090",
   "RTX 4090", "rtx4090" and "4090" are all exact for rtx-4090, and an NVML name is
   exact for its row, so "H200" means the H200 SXM that NVML calls "NVIDIA H200";
3. every typed word starts a different word of one of a row's names: "h100 sxm" finds
   h100-sxm5-80gb. A laptop row is found this way only when a word says laptop ("laptop",
   "mobile"): "rtx 3080 ti" names the desktop card, never the 3080 Ti Laptop GPU, and a word
   like "laptop" never matches a desktop row's names.

One row found: that row. Several: the name is ambiguous and AmbiguousGpuError lists them
(there is no guessing: "h100" names three GPUs with different speeds). None:
UnknownNameError with up to three close matches.

``match_local`` maps a name NVML reports (plus its memory) onto a row and never raises;
memory tells apart rows NVML names alike (RTX 3080 10 GB / 12 GB) and rejects a row whose
memory contradicts the device, so a prediction is never based on the wrong card.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from typing import Final

from gpuscout.catalog.gpu import GpuSpec
from gpuscout.catalog.loader import load_gpus
from gpuscout.catalog.names import LAPTOP_WORDS, keys, normalize, tokens
from gpuscout.errors import GpuscoutError, UnknownNameError, UsageError

# NVML's total memory is a little under the marketed size (ECC and reserved memory: a
# T4 with ECC on reports 15 of 16 GiB); a wider gap means a different card.
MEMORY_MATCH_LOW: Final = 0.85
MEMORY_MATCH_HIGH: Final = 1.10
_MIG_RE: Final = re.compile(r"\s+MIG\b.*$", re.IGNORECASE)


class AmbiguousGpuError(UsageError):
    """A name that matches several catalog GPUs; ``candidates`` are their ids."""

    def __init__(self, name: str, candidates: Sequence[str]) -> None:
        super().__init__(
            f"GPU name {name!r} is ambiguous: it matches {', '.join(candidates)}",
            "give one of these ids",
        )
        self.candidates = tuple(candidates)
        self.suggestions = list(candidates)  # same attribute as UnknownNameError


class GpuIndex:
    """Name lookup over a set of GpuSpec rows (the shipped catalog or a test's own rows)."""

    def __init__(self, specs: Sequence[GpuSpec]) -> None:
        self.specs = tuple(specs)
        self._by_id = {s.id: s for s in self.specs}
        self._exact: dict[str, list[GpuSpec]] = {}
        self._words: list[tuple[GpuSpec, tuple[tuple[str, ...], ...]]] = []
        for spec in self.specs:
            names = (spec.id, spec.name, *spec.aliases)
            for key in set().union(*(keys(n) for n in names)):
                self._exact.setdefault(key, []).append(spec)
            self._words.append((spec, tuple(t for t in map(tokens, names) if t)))

    def candidates(self, name: str) -> tuple[GpuSpec, ...]:
        """Every row ``name`` could mean under the module's rule, in catalog order."""
        query = name.strip()
        if query.lower() in self._by_id:
            return (self._by_id[query.lower()],)
        words = tokens(query)
        if not words:
            return ()
        exact = self._exact.get("".join(words))
        if exact:
            return tuple(exact)
        # A laptop GPU shares its desktop sibling's number but not its speed: "rtx 3080 ti"
        # (a desktop card) must not fall through to the 3080 Ti Laptop row.
        laptop_ok = not LAPTOP_WORDS.isdisjoint(words)
        return tuple(
            s
            for s, names in self._words
            if (laptop_ok or s.form_factor != "laptop") and any(_covers(words, n) for n in names)
        )

    def find(self, name: str) -> GpuSpec:
        found = self.candidates(name)
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousGpuError(name, [s.id for s in found])
        exc = UnknownNameError("GPU", name, self.suggest(name))
        if not exc.hint:  # nothing close: point at the list instead of a dead end
            exc.hint = "`gpuscout gpus` lists every GPU in the catalog"
        raise exc

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """Up to ``n`` ids whose names look like ``name`` (difflib), best first."""
        by_key: dict[str, str] = {}
        for spec in self.specs:
            for key in set().union(*(keys(x) for x in (spec.id, spec.name, *spec.aliases))):
                by_key.setdefault(key, spec.id)
        query = normalize(name) or name.lower()
        out: list[str] = []
        for key in difflib.get_close_matches(query, list(by_key), n=4 * n, cutoff=0.6):
            if by_key[key] not in out:
                out.append(by_key[key])
        return out[:n]

    def match_local(self, name: str, memory_total_bytes: int | None = None) -> GpuSpec | None:
        """The row for a device NVML reports as ``name``; None when unknown or unsure."""
        base = _MIG_RE.sub("", name)
        mig = base != name
        found = self.candidates(base)
        # A MIG instance reports its slice's memory, and Apple rows list the largest
        # unified-memory option: neither says which row it is.
        if memory_total_bytes is not None and memory_total_bytes > 0 and not mig:
            gib = memory_total_bytes / 1024**3
            found = tuple(
                s
                for s in found
                if s.vendor == "Apple" or MEMORY_MATCH_LOW <= gib / s.memory_gb <= MEMORY_MATCH_HIGH
            )
        return found[0] if len(found) == 1 else None


def _covers(query: tuple[str, ...], name: tuple[str, ...]) -> bool:
    """Each query word starts a different word of ``name`` (an equal word is taken first)."""
    left = list(name)
    for word in query:
        pick = word if word in left else next((w for w in left if w.startswith(word)), None)
        if pick is None:
            return False
        left.remove(pick)
    return True


@functools.lru_cache(maxsize=1)
def _index() -> GpuIndex:
    return GpuIndex(load_gpus())


def find_gpu(name: str) -> GpuSpec:
    """The catalog GPU ``name`` means; raises UnknownNameError or AmbiguousGpuError (exit 2)."""
    return _index().find(name)


def search_gpus(name: str) -> tuple[GpuSpec, ...]:
    """Every catalog GPU ``name`` could mean (empty when none); never raises for a bad name."""
    return _index().candidates(name)


def match_local_gpu(name: str, memory_total_bytes: int | None = None) -> GpuSpec | None:
    """Map the name NVML reports (and its total memory) to a catalog row; never raises."""
    if not isinstance(name, str):
        return None
    try:
        return _index().match_local(name, memory_total_bytes)
    except GpuscoutError:  # a broken catalog must not break probing a machine
        return None
