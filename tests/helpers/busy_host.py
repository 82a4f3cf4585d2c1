"""CPU-bound neighbour processes, as on a laptop with a browser and a build running."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@contextmanager
def busy_neighbours(seconds: float = 60.0) -> Iterator[None]:
    """One CPU-bound process per CPU (at least two), as a laptop with a build running."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_spin, args=(seconds,), daemon=True)
        for _ in range(max(2, os.cpu_count() or 2))
    ]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5)  # let them reach their loops
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(5)
