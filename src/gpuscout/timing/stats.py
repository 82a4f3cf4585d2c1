"""Robust statistics over repeated timings: median and spread, never a single sample.

The ``noisy`` rule follows torch.utils.benchmark: a relative inter-quartile range
(IQR / median) above 10% means the run-to-run spread is too wide to trust the median
to a few percent. The IQR is used rather than the coefficient of variation because one
outlier (a GC pause, a context switch) inflates the standard deviation but barely
moves the quartiles; the CV is still reported for readers who want it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gpuscout._types import Stats

NOISY_REL_IQR = 0.10
# Fewer samples than this cannot say anything about spread, so they are flagged noisy.
MIN_SAMPLES_FOR_SPREAD = 3


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted data."""
    if not sorted_samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile q must be in [0, 1], got {q}")
    pos = q * (len(sorted_samples) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_samples) - 1)
    frac = pos - lo
    return sorted_samples[lo] + (sorted_samples[hi] - sorted_samples[lo]) * frac


def summarise(samples: Sequence[float], *, noisy_rel_iqr: float = NOISY_REL_IQR) -> Stats:
    """Summarise timings in seconds. Raises ValueError on an empty or non-finite input."""
    if not samples:
        raise ValueError("cannot summarise zero samples")
    if not all(math.isfinite(s) for s in samples):
        raise ValueError("timing samples must be finite")
    xs = sorted(float(s) for s in samples)
    n = len(xs)
    mean = math.fsum(xs) / n
    # Sample standard deviation (n - 1): these are a sample of the run-to-run distribution.
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    stdev = math.sqrt(var)
    median = percentile(xs, 0.5)
    iqr = percentile(xs, 0.75) - percentile(xs, 0.25)
    cv = stdev / mean if mean > 0 else 0.0
    rel_iqr = iqr / median if median > 0 else 0.0
    noisy = n < MIN_SAMPLES_FOR_SPREAD or rel_iqr > noisy_rel_iqr
    return Stats(
        n=n,
        median_s=median,
        mean_s=mean,
        min_s=xs[0],
        max_s=xs[-1],
        p10_s=percentile(xs, 0.10),
        p90_s=percentile(xs, 0.90),
        iqr_s=iqr,
        cv=cv,
        noisy=noisy,
    )
