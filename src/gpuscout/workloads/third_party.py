"""Optional comparisons: the programs people actually run, beside our two versions.

A workload names its comparison in its record (``WorkloadSpec.comparison``: the
package it needs, how the verdict names it, and the function that runs it in the
worker). ``available`` says whether that package is importable without importing it,
so the suite can record a clean "skipped".
"""

from __future__ import annotations

import importlib.util

from gpuscout.workloads.spec import Comparison


def available(comparison: Comparison | None, workload: str) -> str | None:
    """None when the comparison can run, else why not."""
    if comparison is None:
        return f"no comparison program for {workload}"
    package = comparison.package
    if importlib.util.find_spec(package) is None:
        return f"{package} is not installed (pip install {package})"
    return None
