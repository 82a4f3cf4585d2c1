"""Workloads by name: every module of this package that defines ``WORKLOAD``, plus the
ones registered from elsewhere.

Discovery happens on first use, not at import: it imports each module of
``gpuscout.workloads`` (none imports torch at import) and keeps the ``WORKLOAD`` record
of those that define one. A module that fails to import, or defines something other than
a ``WorkloadSpec`` as ``WORKLOAD``, fails the lookup loudly: a workload never goes
missing in silence. ``register(spec)`` adds a workload that lives in another module (a
plugin, a test); its worker imports that module by name, or from its file when the name
is not importable there.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

from gpuscout.errors import UnknownNameError
from gpuscout.fit.spec import ModelSpec
from gpuscout.workloads.spec import WorkloadSpec

_discovered: dict[str, WorkloadSpec] | None = None
_registered: dict[str, WorkloadSpec] = {}


def _discover() -> dict[str, WorkloadSpec]:
    global _discovered
    if _discovered is None:
        package = importlib.import_module("gpuscout.workloads")
        found: dict[str, WorkloadSpec] = {}
        for info in pkgutil.iter_modules(package.__path__, "gpuscout.workloads."):
            spec = getattr(importlib.import_module(info.name), "WORKLOAD", None)
            if spec is None:
                continue
            if not isinstance(spec, WorkloadSpec):
                raise TypeError(
                    f"{info.name}.WORKLOAD is a {type(spec).__name__}, not a WorkloadSpec"
                )
            if spec.name in found:
                raise ValueError(f"two modules define the workload {spec.name!r}")
            found[spec.name] = spec
        _discovered = found
    return _discovered


def _all() -> dict[str, WorkloadSpec]:
    """Every workload by name, in list order (``order``, then name)."""
    specs = [*_discover().values(), *_registered.values()]
    return {s.name: s for s in sorted(specs, key=lambda s: (s.order, s.name))}


def names() -> list[str]:
    """Every workload's name, in the order `--help` and "all" use."""
    return list(_all())


def specs() -> list[WorkloadSpec]:
    return list(_all().values())


def check(name: str) -> str:
    """The workload's name as registered; UnknownNameError naming the close ones."""
    key = name.strip().lower()
    known = _all()
    if key not in known:
        close = difflib.get_close_matches(key, list(known), 3, 0.5)
        raise UnknownNameError("workload", name, close, list(known))
    return key


def get(name: str) -> WorkloadSpec:
    """The workload's record; UnknownNameError naming the close ones."""
    return _all()[check(name)]


def find(name: str) -> WorkloadSpec | None:
    """The record of a workload named in stored results, None when this gpuscout does
    not have it (a run imported from a newer one, a plugin not registered now)."""
    return _all().get(name)


def check_model(name: str, model: str | None) -> None:
    """UnknownNameError (exit 2) for a model the workload does not have."""
    get(name).check_model(model)


def workload_model(workload: str, model: str | None = None) -> ModelSpec:
    """The model-table row ``workload`` builds as ``model`` (its name for it; None: the
    workload's default on a GPU)."""
    return get(workload).model_spec(model)


def quick_names() -> tuple[str, ...]:
    """The workloads `gpuscout run` measures."""
    return tuple(s.name for s in specs() if s.quick)


def source_file(fn: Callable[..., Any]) -> str | None:
    """The file of the module that holds ``fn`` (a workload's ``run``, its comparison's):
    where a worker loads it from when the module is not importable by name there."""
    try:
        return inspect.getsourcefile(fn)
    except TypeError:  # a builtin or C function: importable by name or not at all
        return None


def register(spec: WorkloadSpec) -> None:
    """Add a workload that lives outside this package; ValueError for a name taken."""
    if not isinstance(spec, WorkloadSpec):
        raise TypeError(f"register takes a WorkloadSpec, not a {type(spec).__name__}")
    if spec.name in _all():
        raise ValueError(f"a workload named {spec.name!r} is registered already")
    _registered[spec.name] = spec


def unregister(name: str) -> None:
    """Remove a workload ``register`` added (one of this package's stays)."""
    if name not in _registered:
        raise ValueError(f"{name!r} was not registered with register()")
    del _registered[name]


@contextlib.contextmanager
def registered(spec: WorkloadSpec) -> Iterator[WorkloadSpec]:
    """``spec`` registered for the block, removed after (for tests)."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec.name)
