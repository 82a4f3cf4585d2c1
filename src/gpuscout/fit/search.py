"""The largest batch that fits: double until a trial fails, then bisect.

Generic over ``try_batch(n) -> Outcome``, so the same search runs over the arithmetic
(``fit_on``), over real steps on a GPU (fit/measure/trials.py) and, in the tests,
over a fake allocator. A trial that runs out of memory either returns
``Outcome(fits=False)`` or raises an exception ``is_oom`` recognises; anything else
propagates. ``cleanup`` runs after every trial, so a failed trial's memory is released
before the next one starts (on a GPU: drop references, gc, empty the cache).

Memory is assumed to grow with the batch, so one boundary exists. Trials: about
2 log2(answer), each once (results are cached).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One trial: did ``n`` fit, and its peak (bytes) when known."""

    fits: bool
    peak_bytes: int | None = None
    error: str | None = None  # why it did not fit (an out-of-memory message)


@dataclass(frozen=True)
class SearchResult:
    max_batch: int | None  # None: not even ``start`` fits
    peak_bytes: int | None  # at max_batch
    capped: bool  # ``cap`` fit: the real limit may be higher
    trials: tuple[tuple[int, Outcome], ...]  # in the order they ran


def find_max_batch(
    try_batch: Callable[[int], Outcome],
    *,
    start: int = 1,
    cap: int = 1 << 20,
    cleanup: Callable[[], None] | None = None,
    is_oom: Callable[[BaseException], bool] | None = None,
) -> SearchResult:
    """The largest n in [start, cap] for which ``try_batch(n)`` fits."""
    if start < 1 or cap < start:
        raise ValueError(f"need 1 <= start <= cap, got start={start}, cap={cap}")
    done: dict[int, Outcome] = {}
    order: list[tuple[int, Outcome]] = []

    def trial(n: int) -> Outcome:
        if n in done:
            return done[n]
        try:
            out = try_batch(n)
        except Exception as exc:
            if is_oom is None or not is_oom(exc):
                if cleanup is not None:
                    cleanup()
                raise
            out = Outcome(False, None, f"{type(exc).__name__}: {str(exc)[:200]}")
            del exc  # its traceback holds the failed trial's tensors
        if cleanup is not None:
            cleanup()
        done[n] = out
        order.append((n, out))
        return out

    if not trial(start).fits:
        return SearchResult(None, None, False, tuple(order))
    good, bad = start, None
    while bad is None:  # doubling
        nxt = min(good * 2, cap)
        if nxt == good:
            return SearchResult(good, done[good].peak_bytes, True, tuple(order))
        if trial(nxt).fits:
            good = nxt
        else:
            bad = nxt
    while bad - good > 1:  # bisection between the last fit and the first failure
        mid = (good + bad) // 2
        if trial(mid).fits:
            good = mid
        else:
            bad = mid
    return SearchResult(good, done[good].peak_bytes, False, tuple(order))


def find_max_value(fits: Callable[[int], bool], low: int, high: int) -> int | None:
    """The largest v in [low, high] with ``fits(v)`` (monotone), by the same search."""
    result = find_max_batch(lambda n: Outcome(fits(n)), start=low, cap=high)
    return result.max_batch
