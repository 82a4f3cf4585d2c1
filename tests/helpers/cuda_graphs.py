"""A CPU stand-in for torch.cuda's graph and stream API, for the GPU paths' tests.

A CUDA graph records the kernels a block launches, with the memory they read and write,
and runs none of them; ``replay()`` launches them again on the same memory. ``FakeGraph``
does the same one level up: while capturing, every aten op the block runs is recorded
(its arguments and the tensors it returned), and every tensor that existed before the
capture and was written inside it is put back afterwards, as if nothing ran. ``replay``
runs the recorded ops again on the same tensor objects, writing each op's fresh result
into the tensor it returned at capture, where later ops read it. So code that rebinds a
name instead of copying into a static tensor replays stale data here as on a GPU, and an
op a capture forbids (a host read such as ``.item()``, a tensor made from host data, a
boolean-mask gather whose size the host must learn) raises ``CaptureError``. The
side-stream warm-up becomes plain execution. What this cannot show (kernels, streams,
memory pools, the capturable optimizer's device checks) is the GPU run's to check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

aten = torch.ops.aten
Op = tuple[Any, tuple[Any, ...], dict[str, Any], Any]


class CaptureError(RuntimeError):
    """What a CUDA stream capture refuses (or silently gets wrong)."""


def sync_reason(func: Any, args: tuple[Any, ...]) -> str | None:
    packet = func.overloadpacket
    if packet is aten._local_scalar_dense:
        return "a host read of a device value (.item(), float(t), bool(t))"
    if packet in (aten.lift_fresh, aten.lift_fresh_copy):
        return "a tensor made from host data (torch.tensor(...))"
    if packet in (aten.nonzero, aten.masked_select, aten.unique_consecutive):
        return "an op whose output size the host must read back"
    if packet in (aten.index, aten.index_put, aten.index_put_) and len(args) > 1:
        indices = args[1] if isinstance(args[1], list | tuple) else [args[1]]
        if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices):
            return "boolean-mask indexing (a nonzero the host reads back)"
    return None


def written(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The tensors ``func`` writes in place: its schema's mutable arguments."""
    out: list[Any] = []
    for i, arg in enumerate(func._schema.arguments):
        if arg.alias_info is not None and arg.alias_info.is_write:
            value = args[i] if i < len(args) else kwargs.get(arg.name)
            out += [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]
    return out


def storage_key(t: Any) -> int:
    return int(t.untyped_storage().data_ptr())


class Recorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.ops: list[Op] = []
        self.made: set[int] = set()  # storages allocated inside the capture
        self.saved: dict[int, tuple[Any, Any]] = {}  # storage -> (base tensor, its value)

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        why = sync_reason(func, args)
        if why is not None:
            raise CaptureError(f"{func} inside a CUDA graph capture: {why}")
        for t in written(func, args, kwargs):
            key = storage_key(t)
            if key not in self.made and key not in self.saved:
                base = t if t._base is None else t._base
                self.saved[key] = (base, base.detach().clone())
        out = func(*args, **kwargs)
        self.made |= {storage_key(t) for t in tree_leaves(out) if isinstance(t, torch.Tensor)}
        self.made -= set(self.saved)
        self.ops.append((func, args, kwargs, out))
        return out


def same_memory(a: Any, b: Any) -> bool:
    return (
        isinstance(b, torch.Tensor)
        and storage_key(a) == storage_key(b)
        and a.storage_offset() == b.storage_offset()
        and a.stride() == b.stride()
    )


class FakeGraph:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ops: list[Op] | None = None
        self.replays = 0

    def replay(self) -> None:
        if self.ops is None:
            raise CaptureError("replay() of a graph that was never captured")
        with torch.no_grad():
            for func, args, kwargs, out in self.ops:
                fresh = func(*args, **kwargs)
                for old, new in zip(tree_leaves(out), tree_leaves(fresh), strict=True):
                    if isinstance(old, torch.Tensor) and not same_memory(old, new):
                        old.copy_(new)
        self.replays += 1


class FakeStream:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def wait_stream(self, other: Any) -> None:
        pass


class Captures:
    def __init__(self) -> None:
        self.graphs: list[FakeGraph] = []

    @contextlib.contextmanager
    def graph(
        self, g: FakeGraph, pool: Any = None, stream: Any = None, **kw: Any
    ) -> Iterator[None]:
        if g.ops is not None:
            raise CaptureError("a CUDAGraph is captured once")
        rec = Recorder()
        with rec:
            yield
        with torch.no_grad():  # the capture ran nothing: put back what it wrote
            for base, value in rec.saved.values():
                base.copy_(value)
        g.ops = rec.ops
        self.graphs.append(g)


def install(monkeypatch: pytest.MonkeyPatch) -> Captures:
    """torch.cuda's graph and stream API replaced by the stand-ins above."""
    cap = Captures()
    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a, **k: FakeStream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", cap.graph)
    return cap
