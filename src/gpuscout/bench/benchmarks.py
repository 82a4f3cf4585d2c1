"""Micro-benchmarks by name: ``name -> fn(device, quick, ctx) -> list[Result]``.

The built-in benchmarks register themselves when their module is imported; the modules
import torch only inside their functions, so loading them here is cheap.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Protocol, TypeVar

from gpuscout._types import Result
from gpuscout.bench.context import BenchContext
from gpuscout.errors import UnknownNameError


class BenchFn(Protocol):
    def __call__(
        self, device: str, quick: bool, ctx: BenchContext | None = None
    ) -> list[Result]: ...


F = TypeVar("F", bound=BenchFn)

# The order here is the order benchmarks run and are listed in; each module's
# benchmark carries the module's name.
_BUILTIN_MODULES = (
    "gpuscout.bench.matmul",
    "gpuscout.bench.memory",
    "gpuscout.bench.transfer",
    "gpuscout.bench.launch",
)
_REGISTRY: dict[str, BenchFn] = {}
_loaded = False


def register(name: str) -> Callable[[F], F]:
    """Decorator: make ``fn`` available as benchmark ``name`` (its signature is kept)."""

    def deco(fn: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"benchmark {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)
        _loaded = True


def names() -> tuple[str, ...]:
    """Built-ins in ``_BUILTIN_MODULES`` order (not import order), then any others."""
    _load_builtins()
    builtin = [m.rsplit(".", 1)[1] for m in _BUILTIN_MODULES]
    rank = {n: i for i, n in enumerate(builtin)}
    keyed = sorted(enumerate(_REGISTRY), key=lambda p: (rank.get(p[1], len(rank)), p[0]))
    return tuple(n for _, n in keyed)


def get(name: str) -> BenchFn:
    """The benchmark called ``name``; UnknownNameError (exit 2) with close matches if none."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        raise UnknownNameError("benchmark", name, close or list(_REGISTRY)) from None
