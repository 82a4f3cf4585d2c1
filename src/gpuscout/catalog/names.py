"""How GPU names are compared: the words that matter, without brand noise or punctuation.

"NVIDIA GeForce RTX 4090", "GeForce RTX 4090", "rtx-4090" and "RTX4090" all reduce to the
key "rtx4090"; "Tesla T4" and "NVIDIA T4" both to "t4". Only vendor and marketing words
that never tell two GPUs apart are dropped ("Quadro" stays: Quadro RTX 6000 and RTX 6000
Ada are different cards).
"""

from __future__ import annotations

import re
from typing import Final

NOISE_WORDS: Final = frozenset(
    {"nvidia", "geforce", "tesla", "amd", "radeon", "instinct", "apple", "generation", "gpu"}
)
# Series words people leave out ("4090" for "RTX 4090"); a name may also be looked up
# without its leading series word.
SERIES_WORDS: Final = frozenset({"rtx", "gtx", "rx"})

# Words that say a name means the laptop GPU, which shares its desktop sibling's number.
LAPTOP_WORDS: Final = frozenset({"laptop", "mobile"})

_WORD_RE: Final = re.compile(r"[a-z0-9]+")


def tokens(name: str) -> tuple[str, ...]:
    """Lower-case words without noise: "NVIDIA A100-SXM4-40GB" -> (a100, sxm4, 40gb)."""
    return tuple(w for w in _WORD_RE.findall(name.lower()) if w not in NOISE_WORDS)


def normalize(name: str) -> str:
    """The comparison key: the words joined with nothing, so "10 GB" and "10gb" agree."""
    return "".join(tokens(name))


def keys(name: str) -> set[str]:
    """Every exact key a name answers to: itself, and itself without a leading series word."""
    words = tokens(name)
    if not words:
        return set()
    out = {"".join(words)}
    if words[0] in SERIES_WORDS and len(words) > 1:
        out.add("".join(words[1:]))
    return out
