"""What every workload shares: its configuration, its shape, and device policy.

A workload file provides ``build(cfg) -> Workload`` (a model with ``make_batch()`` and
``step(batch)``, read top to bottom, as in nanoGPT's bench.py), ``run(cfg, inst) ->
list[dict]``, the full measurement that runs inside an isolated worker, and its record
(``workloads.spec.WorkloadSpec``). The device policy here decides what "tuned" means on
a device: bf16 where the hardware has it, compile and CUDA graphs only on a GPU, the
right number of CPU threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gpuscout.errors import UsageError

IMPLS = ("reference", "tuned")


@dataclass(frozen=True)
class WorkloadConfig:
    """One run of one workload. Plain values only: it crosses a process boundary.

    ``None`` means "the workload's default for this device"; ``options`` carries the
    few workload-specific knobs (image size, prompt length ...).
    """

    name: str
    device: str = "cpu"
    impl: str = "tuned"
    epochs: int | None = None
    batch_size: int | None = None
    model: str | None = None
    data_dir: str | None = None
    limit_samples: int | None = None
    steps: int | None = None
    seq_len: int | None = None
    seed: int = 0
    compile: bool | None = None  # None: on for tuned on a GPU, off elsewhere
    quick: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.impl not in IMPLS:
            raise UsageError(f"unknown implementation {self.impl!r}", "use reference or tuned")
        for name in ("epochs", "batch_size", "limit_samples", "steps", "seq_len"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, not {value}")

    @property
    def tuned(self) -> bool:
        return self.impl == "tuned"

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def option(self, key: str, default: Any) -> Any:
        return self.options.get(key, default)

    def replace(self, **changes: Any) -> WorkloadConfig:
        return dataclasses.replace(self, **changes)


class Workload(Protocol):
    """A model ready to train (or generate): the unit tests drive these directly."""

    samples_per_step: int
    flops_per_step: float  # counted from the model's layer shapes

    def make_batch(self) -> Any: ...

    def step(self, batch: Any) -> Any:
        """One training step; returns the loss as a tensor (not synchronised)."""
        ...


def physical_cores() -> int:
    """Cores this process may use, hyper-threads not counted: extra threads on the
    sibling of a busy core add contention, not FLOPs."""
    try:
        psutil = importlib.import_module("psutil")  # untyped: no stubs ship with it
        phys = psutil.cpu_count(logical=False) or 1
        logical = psutil.cpu_count(logical=True) or phys
    except Exception:  # psutil is a dependency, but a broken /proc must not stop a run
        phys = logical = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = logical
    # Scale physical cores by the share of logical CPUs this process may run on.
    return max(1, min(phys, round(phys * usable / logical)))


def has_amx() -> bool:
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except Exception:
        return False


def setup_device(cfg: WorkloadConfig) -> Any:
    """The torch.device; tuned CPU runs get one thread per usable physical core."""
    import torch

    if cfg.on_gpu:
        if not torch.cuda.is_available():
            raise UsageError(f"{cfg.device} requested but PyTorch sees no CUDA GPU")
        dev = torch.device(cfg.device)
        torch.cuda.set_device(dev)
        return dev
    if cfg.device != "cpu":
        raise UsageError(f"unknown device {cfg.device!r}", "use cpu or cuda:N")
    if cfg.tuned:
        torch.set_num_threads(physical_cores())
    return torch.device("cpu")


def amp_dtype(cfg: WorkloadConfig) -> Any:
    """bf16 autocast for tuned runs where the hardware does bf16 matmuls natively
    (Ampere and newer, or a CPU with AMX); None (fp32) otherwise. fp16 is not used for
    training because it needs loss scaling, which would change the computation."""
    import torch

    if not cfg.tuned or cfg.option("dtype", None) == "fp32":
        return None
    if cfg.on_gpu:
        return torch.bfloat16 if native_bf16(cfg.device) else None
    return torch.bfloat16 if has_amx() else None


def native_bf16(device: Any) -> bool:
    """Compute capability 8.0 or newer (Ampere+) on ``device``: bf16 tensor cores.

    Not ``torch.cuda.is_bf16_supported()``: by default it also says yes where bf16 is
    only emulated (a T4, sm_75, runs it at a fraction of fp16's speed), and it asks the
    current device rather than the one this workload runs on.
    """
    import torch

    from gpuscout.catalog.gpu import TENSOR_MIN_CC

    return tuple(torch.cuda.get_device_capability(device)) >= TENSOR_MIN_CC["bf16"]


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """fp32 matmuls and convolutions in IEEE fp32, not TF32, for the block's duration;
    every setting is put back after.

    The worker runs every workload inside it. A result labelled fp32 (every reference,
    a tuned run without bf16) must not be TF32 in fact: cuDNN runs fp32 convolutions in
    TF32 by default on Ampere and newer, and anything imported into the process may have
    switched cuBLAS to TF32. A bf16 run loses nothing by it: its matmuls run in bf16
    under autocast, and the flags only reach the fp32 ones.

    ``set_float32_matmul_precision("highest")`` is the one call that sets cuBLAS's legacy
    flag (``torch.backends.cuda.matmul.allow_tf32``) and, on PyTorch >= 2.9, the
    per-backend ``fp32_precision`` settings together; setting one API alone leaves the
    two disagreeing, which PyTorch refuses to read ("mix of the legacy and new APIs").
    The legacy cuDNN switch likewise keeps cuDNN's per-op settings in step.
    """
    import torch

    backends: Any = torch.backends  # untyped parts: the new API exists from 2.9 only
    knobs = [
        backends,
        backends.cuda.matmul,
        backends.cudnn,
        getattr(backends.cudnn, "conv", None),
        getattr(backends.cudnn, "rnn", None),
        getattr(backends, "mkldnn", None),
        getattr(getattr(backends, "mkldnn", None), "matmul", None),
        getattr(getattr(backends, "mkldnn", None), "conv", None),
        getattr(getattr(backends, "mkldnn", None), "rnn", None),
    ]
    # Each new-API setting starts as "none" (inherit), which only a direct write restores.
    old_new = [(k, k.fp32_precision) for k in knobs if hasattr(k, "fp32_precision")]
    old_matmul = _legacy(torch.get_float32_matmul_precision)
    old_cudnn = _legacy(lambda: backends.cudnn.allow_tf32)
    torch.set_float32_matmul_precision("highest")
    backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        if old_matmul is not None:
            torch.set_float32_matmul_precision(old_matmul)
        if old_cudnn is not None:
            backends.cudnn.allow_tf32 = old_cudnn
        for knob, value in old_new:
            if knob.fp32_precision != value:
                knob.fp32_precision = value


def _legacy(read: Any) -> Any:
    """A legacy TF32 reading; None where PyTorch refuses it (only the new API was set)."""
    try:
        return read()
    except RuntimeError:
        return None


@contextlib.contextmanager
def cudnn_autotune(on: bool) -> Iterator[None]:
    """``torch.backends.cudnn.benchmark`` set to ``on`` for the block, put back after.

    With it, cuDNN times its convolution algorithms for each new input shape on first
    use and keeps the fastest (the first step pays); without it, it picks one by
    heuristics. PyTorch leaves it off; a tuned convolutional training script turns it on.
    """
    import torch

    backends: Any = torch.backends
    old = backends.cudnn.benchmark
    backends.cudnn.benchmark = on
    try:
        yield
    finally:
        backends.cudnn.benchmark = old


def tf32_convolutions() -> bool:
    """Whether fp32 convolutions on a GPU run in TF32 now (cuDNN's setting)."""
    import torch

    backends: Any = torch.backends
    conv = getattr(backends.cudnn, "conv", None)
    if conv is None or not hasattr(conv, "fp32_precision"):  # PyTorch < 2.9
        return bool(backends.cudnn.allow_tf32)
    # The new API: "none" inherits from cuDNN's setting, which inherits the global one.
    for knob in (conv, backends.cudnn, backends):
        value = getattr(knob, "fp32_precision", "none")
        if value != "none":
            return bool(value == "tf32")
    return False


def use_compile(cfg: WorkloadConfig) -> bool:
    """torch.compile by default only for tuned GPU runs: on a CPU with two cores the
    compile costs more than a benchmark's worth of steps saves."""
    if cfg.compile is not None:
        return cfg.compile and cfg.tuned
    return cfg.tuned and cfg.on_gpu and not cfg.quick


def dtype_name(dtype: Any) -> str:
    if dtype is None:
        return "fp32"
    name = str(dtype).removeprefix("torch.")
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(name, name)


def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def index_batches(n: int, batch: int, seed: int, device: Any = None) -> Iterator[Any]:
    """Endless batches of indices into ``n`` samples, a fresh permutation per pass, drawn
    on the CPU: both implementations, on any device, see the same batches in the same
    order. A short last batch is dropped (a step-timed workload wants equal steps).

    With ``device``, each permutation is copied there once per pass and the batches are
    views of it: a tuned step then gathers its batch without a host-to-device copy.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=gen)
        if device is not None and torch.device(device).type == "cuda":
            # Pinned and asynchronous: a pageable copy would wait for every step queued
            # before it, inside a timed step (the pinned block is kept until it is done).
            perm = perm.pin_memory().to(device, non_blocking=True)
        elif device is not None:
            perm = perm.to(device)
        for i in range(0, n - batch + 1, batch):
            yield perm[i : i + batch]


def as_tensors(split: Any) -> tuple[Any, Any]:
    """Float images in [0, 1] (N x C x H x W) and int64 labels of a gpuscout.data
    split, converted once."""
    import torch

    x = torch.frombuffer(bytearray(split.images), dtype=torch.uint8)
    x = x.view(split.count, split.channels, split.height, split.width).float().div_(255.0)
    y = torch.frombuffer(bytearray(split.labels), dtype=torch.uint8).long()
    return x, y


def seed_all(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def fused_kwargs(cls: Any, device: Any) -> dict[str, Any]:
    """``fused=True`` where this torch has a fused kernel for the optimizer on this
    device, else ``foreach=True``; probed on a throwaway parameter rather than guessed
    from version numbers."""
    import torch

    try:
        p = torch.nn.Parameter(torch.zeros(1, device=device))
        p.grad = torch.zeros(1, device=device)
        cls([p], lr=0.1, fused=True).step()
        return {"fused": True}
    except (RuntimeError, TypeError, ValueError):
        return {"foreach": True}
