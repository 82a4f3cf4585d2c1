"""What `gpuscout profile` observes inside the user's program: step times from the global
optimizer-step hooks, and within a window of steps after a warm-up, where each step's
time goes (waiting for the DataLoader, host-to-device copies, synchronising calls), one
step's FLOPs, kernels and bytes counted as it runs, the model, its placement and
precision, and peak memory.

This module runs inside the user's process (``profile/boot.py`` loads it before their
script), so it imports only the standard library and torch, installs nothing until torch
is imported by the script, and wraps what it watches without changing what it returns.
Its cost is a clock read per optimizer step, per DataLoader batch, per host-to-device
copy and per host read of a tensor, inside the window only, plus the counted step (which
runs under counting modes and is left out of the step times).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
_SYNC_METHODS = ("item", "cpu", "tolist", "numpy")


class StopProfiling(BaseException):
    """Raised from the optimizer hook once ``--steps`` steps were observed: unwinds the
    user's loop like SystemExit does (past ``except Exception``)."""


@dataclass
class StepTiming:
    time_s: float  # from the previous optimizer step's end to this one's
    data_s: float  # inside DataLoader.__next__
    h2d_s: float  # inside .to()/.cuda() calls copying host tensors to a GPU
    syncs: int  # .item(), .cpu(), .tolist(), .numpy() on GPU tensors


@dataclass
class Work:
    """One step, counted as it ran (the counted step: its time is not a sample)."""

    flops: float = 0.0  # matrix products, torch.utils.flop_counter's count
    kernel_ops: int = 0  # ATen ops that launch a kernel (views and allocations left out)
    activation_bytes: int = 0  # outputs of leaf modules in the forward
    param_bytes: int = 0
    state_bytes: int = 0  # the optimizer's state tensors
    samples: int | None = None  # the batch's first dimension
    autocast_dtype: str | None = None  # what autocast computed in, if it was on
    param_dtype: str | None = None
    input_shape: list[int] | None = None  # the model's first input (batch, sequence ...)
    optimizer: str | None = None  # its class: "AdamW", "SGD" ...
    momentum: bool = False  # an SGD with momentum keeps a buffer per parameter


@dataclass
class Observations:
    """Everything written for the parent, as JSON (``format`` says which layout)."""

    format: int = FORMAT
    torch: str | None = None
    steps_seen: int = 0
    warmup: int = 0
    window: list[StepTiming] = field(default_factory=list)
    work: Work | None = None
    device: dict[str, Any] = field(default_factory=dict)
    loader: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    memory: dict[str, Any] = field(default_factory=dict)
    # time.monotonic() at the timed window's start and its last step: the same clock in
    # every process of the machine, so the parent's GPU samples can be cut to it
    window_clock: list[float] = field(default_factory=list)
    exit_code: int | None = None
    stopped_by_profiler: bool = False
    interrupted: bool = False
    error: str | None = None


class Observer:
    """Installs the hooks; ``steps`` None watches the whole run after the warm-up."""

    def __init__(self, out: Path, *, warmup: int, steps: int | None) -> None:
        self.out, self.warmup, self.steps = out, max(2, warmup), steps
        self.obs = Observations(warmup=self.warmup)
        self._undo: list[Callable[[], None]] = []
        self._last: float | None = None
        self._last_clock = 0.0
        self._data = self._h2d = 0.0
        self._syncs = 0
        self._counting: Any = None
        self._torch: Any = None

    # -- installing ----------------------------------------------------------------------

    def install(self, torch: Any) -> None:
        self._torch = torch
        self.obs.torch = str(torch.__version__)
        from torch.optim.optimizer import register_optimizer_step_post_hook

        handle = register_optimizer_step_post_hook(self._after_step)
        self._undo.append(handle.remove)
        self._wrap_loader(torch)
        self._wrap_tensor_methods(torch)

    def uninstall_window_hooks(self) -> None:
        """Everything but the step hook: after the window the run goes on untouched."""
        while len(self._undo) > 1:
            self._undo.pop()()

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = getattr(owner, name)
        setattr(owner, name, make(original))
        self._undo.append(lambda: setattr(owner, name, original))

    def _wrap_loader(self, torch: Any) -> None:
        from torch.utils.data import dataloader

        def make(original: Any) -> Any:
            def __next__(it: Any) -> Any:
                t0 = time.perf_counter()
                batch = original(it)
                self._data += time.perf_counter() - t0
                if self.obs.loader is None:
                    self.obs.loader = _loader_facts(it, batch, torch)
                return batch

            return __next__

        self._patch(dataloader._BaseDataLoaderIter, "__next__", make)

    def _wrap_tensor_methods(self, torch: Any) -> None:
        def timed_copy(original: Any) -> Any:
            def method(t: Any, *args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                out = original(t, *args, **kwargs)
                if t.device.type == "cpu" and getattr(out, "device", t.device).type == "cuda":
                    self._h2d += time.perf_counter() - t0
                return out

            return method

        def counted_read(original: Any) -> Any:
            def method(t: Any, *args: Any, **kwargs: Any) -> Any:
                if t.device.type == "cuda":
                    self._syncs += 1
                return original(t, *args, **kwargs)

            return method

        for name in ("to", "cuda"):
            self._patch(torch.Tensor, name, timed_copy)
        for name in _SYNC_METHODS:
            self._patch(torch.Tensor, name, counted_read)

    # -- each optimizer step ------------------------------------------------------------

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        now = time.perf_counter()
        self.obs.steps_seen += 1
        n = self.obs.steps_seen
        if self._counting is not None:
            self._finish_count(optimizer)
        elif n >= self.warmup + 1 and self._last is not None:
            self.obs.window.append(StepTiming(now - self._last, self._data, self._h2d, self._syncs))
            start = self.obs.window_clock[0] if self.obs.window_clock else self._last_clock
            self.obs.window_clock = [start, time.monotonic()]
        if n == self.warmup - 1:
            self._start_count()
        self._last = time.perf_counter()  # the hook's own work is not the next step's
        self._last_clock = time.monotonic()
        self._data = self._h2d = 0.0
        self._syncs = 0
        if self.steps is not None and len(self.obs.window) >= self.steps:
            self.obs.stopped_by_profiler = True
            self.finish_window()
            raise StopProfiling

    def finish_window(self) -> None:
        self.obs.memory = _memory(self._torch, self.obs.device)
        self.write()

    def close(self) -> None:
        """At the program's end, however it ended: hooks off, everything written."""
        if self._counting is not None:  # ended inside the counted step
            self._counting.__exit__(None, None, None)
            self._counting = None
        self.uninstall()
        if not self.obs.memory:
            self.obs.memory = _memory(self._torch, self.obs.device)
        self.write()

    # -- the counted step ---------------------------------------------------------------

    def _start_count(self) -> None:
        self._counting = _Counting(self._torch)
        self._counting.__enter__()

    def _finish_count(self, optimizer: Any) -> None:
        counting, self._counting = self._counting, None
        counting.__exit__(None, None, None)
        self.obs.work = counting.work(optimizer)
        self.obs.model = counting.model
        self.obs.device = _device_facts(self._torch, optimizer)
        self.write()

    # -- writing ----------------------------------------------------------------------------

    def write(self) -> None:
        """The observations so far, atomically (a file that exists is whole)."""
        tmp = self.out.with_suffix(".part")
        tmp.write_text(json.dumps(asdict(self.obs), default=str))
        os.replace(tmp, self.out)


class _Counting:
    """FLOPs (torch's FlopCounterMode), kernel launches, activation bytes and the root
    module of one step, while it runs."""

    def __init__(self, torch: Any) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import FlopCounterMode

        self.torch = torch
        self.flops: Any = FlopCounterMode(display=False)  # untyped in torch
        ops = type("_Ops", (TorchDispatchMode,), {"__torch_dispatch__": _count_op, "count": 0})
        self.ops = ops()
        self.depth = 0
        self.activation_bytes = 0
        self.samples: int | None = None
        self.input_shape: list[int] | None = None
        self.autocast: str | None = None
        self.root: Any = None
        self.handles: list[Any] = []
        self.model: dict[str, Any] | None = None

    def __enter__(self) -> _Counting:
        from torch.nn.modules import module

        self.handles = [
            module.register_module_forward_pre_hook(self._pre),
            module.register_module_forward_hook(self._post),
        ]
        self.flops.__enter__()
        self.ops.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.ops.__exit__(*exc)
        self.flops.__exit__(*exc)
        for h in self.handles:
            h.remove()
        if self.root is not None:
            self.model = _model_facts(self.root)

    def _pre(self, module: Any, inputs: Any) -> None:
        if self.depth == 0 and self.root is None:
            self.root = module
            self.samples = _batch_size(inputs, self.torch)
            first = next(iter(_tensors(inputs, self.torch)), None)
            self.input_shape = None if first is None else [int(d) for d in first.shape]
            self.autocast = _autocast_dtype(self.torch, inputs)
        self.depth += 1

    def _post(self, module: Any, inputs: Any, output: Any) -> None:
        self.depth -= 1
        if next(module.children(), None) is None:
            self.activation_bytes += _tensor_bytes(output, self.torch)

    def work(self, optimizer: Any) -> Work:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        state = [
            v for s in optimizer.state.values() for v in s.values() if hasattr(v, "element_size")
        ]
        return Work(
            flops=float(self.flops.get_total_flops()),
            kernel_ops=int(self.ops.count),
            activation_bytes=self.activation_bytes,
            param_bytes=sum(p.numel() * p.element_size() for p in params),
            state_bytes=sum(v.numel() * v.element_size() for v in state),
            samples=self.samples,
            autocast_dtype=self.autocast,
            param_dtype=str(params[0].dtype).removeprefix("torch.") if params else None,
            input_shape=self.input_shape,
            optimizer=type(optimizer).__name__,
            momentum=any(bool(g.get("momentum")) for g in optimizer.param_groups),
        )


_NO_KERNEL = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "detach"})


def _count_op(self: Any, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
    # A view launches no kernel, and neither does an allocation.
    if not func.is_view and func.overloadpacket.__name__ not in _NO_KERNEL:
        self.count += 1
    return func(*args, **(kwargs or {}))


def _tensors(value: Any, torch: Any) -> list[Any]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v, torch)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v, torch)]
    return []


def _tensor_bytes(value: Any, torch: Any) -> int:
    return sum(t.numel() * t.element_size() for t in _tensors(value, torch))


def _batch_size(inputs: Any, torch: Any) -> int | None:
    first = next(iter(_tensors(inputs, torch)), None)
    return int(first.shape[0]) if first is not None and first.dim() > 0 else None


def _autocast_dtype(torch: Any, inputs: Any) -> str | None:
    first = next(iter(_tensors(inputs, torch)), None)
    kind = first.device.type if first is not None else "cpu"
    try:
        if torch.is_autocast_enabled(kind):
            return str(torch.get_autocast_dtype(kind)).removeprefix("torch.")
    except (TypeError, RuntimeError):  # an older torch without per-device queries
        return None
    return None


def _model_facts(root: Any) -> dict[str, Any]:
    config = getattr(root, "config", None)
    as_dict = getattr(config, "to_dict", None)
    try:
        cfg = json.loads(json.dumps(as_dict(), default=str)) if callable(as_dict) else None
    except (TypeError, ValueError):
        cfg = None
    return {
        "class": type(root).__name__,
        "params": sum(p.numel() for p in root.parameters()),
        "config": cfg,
    }


def _loader_facts(it: Any, batch: Any, torch: Any) -> dict[str, Any]:
    first = next(iter(_tensors(batch, torch)), None)
    return {
        "num_workers": int(getattr(it, "_num_workers", 0)),
        "pin_memory": bool(getattr(it, "_pin_memory", False)),
        "batch_device": None if first is None else first.device.type,
        "batch_size": None if first is None or first.dim() == 0 else int(first.shape[0]),
    }


def _device_facts(torch: Any, optimizer: Any) -> dict[str, Any]:
    params = [p for g in optimizer.param_groups for p in g["params"]]
    device = params[0].device if params else torch.device("cpu")
    gpu = bool(torch.cuda.is_available())
    facts: dict[str, Any] = {
        "type": device.type,
        "index": device.index,
        "gpu_available": gpu,
        "threads": torch.get_num_threads(),
        "tf32": bool(torch.backends.cuda.matmul.allow_tf32),
    }
    if device.type == "cuda":
        facts["name"] = torch.cuda.get_device_name(device)
        facts["capability"] = list(torch.cuda.get_device_capability(device))
        # What NVML calls it too (its index may differ under CUDA_VISIBLE_DEVICES)
        facts["uuid"] = str(getattr(torch.cuda.get_device_properties(device), "uuid", "")) or None
    return facts


def _memory(torch: Any | None, device: dict[str, Any]) -> dict[str, Any]:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux and in bytes on macOS
    host = rss if sys.platform == "darwin" else rss * 1024
    peak = None
    if torch is not None and device.get("type") == "cuda":
        peak = int(torch.cuda.max_memory_allocated(device.get("index") or 0))
    return {"peak_host_rss_bytes": int(host), "peak_device_bytes": peak}
