"""Does a request fit on a catalog GPU, and how far can the batch or the context grow?

``usable`` is what a process can allocate: the catalog's memory (binary GB) less what
the driver keeps (ECC, reserved pages): PyTorch sees 24,268 of 24,576 MiB on an RTX 3090
and 79.2 of 80 GiB on an H100 (reference part B5). A display, or another process, takes
more; pass ``usable_bytes`` when it is known (the local GPU). ``need`` is the estimate's
peak plus the allocator's fragmentation margin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gpuscout.catalog import GpuSpec, find_gpu
from gpuscout.errors import UsageError
from gpuscout.fit.estimate import ALLOCATOR_MARGIN, estimate
from gpuscout.fit.request import FitRequest, MemoryEstimate, check_request
from gpuscout.fit.search import find_max_value

USABLE_FRACTION: Final = 0.985
MAX_BATCH: Final = 1 << 20  # search cap: beyond it, the answer is "as large as you like"
MAX_CONTEXT: Final = 1 << 20  # for models without a known context limit
# When no --gpu is given: a spread people actually choose between (8 to 141 GB).
DEFAULT_GPUS: Final = (
    "rtx-4060-ti-16gb",
    "rtx-4090",
    "rtx-5090",
    "rtx-6000-ada",
    "l4",
    "a100-sxm4-80gb",
    "h100-sxm5-80gb",
    "h200-sxm-141gb",
)


@dataclass(frozen=True)
class GpuFit:
    gpu_id: str
    gpu_name: str
    segment: str
    memory_bytes: int
    usable_bytes: int
    need_bytes: int
    fits: bool
    max_batch_size: int | None  # largest batch that fits at this seq_len (None: not even 1)
    max_seq_len: int | None  # longest context that fits at this batch (transformers only)


def need_bytes(est: MemoryEstimate) -> int:
    """The estimate's peak plus the allocator's fragmentation margin."""
    return round(est.total_bytes + ALLOCATOR_MARGIN * (est.total_bytes - est.overhead_bytes))


def default_gpus() -> list[GpuSpec]:
    return [find_gpu(g) for g in DEFAULT_GPUS]


def fit_on(req: FitRequest, gpu: GpuSpec, usable_bytes: int | None = None) -> GpuFit:
    """Whether ``req`` fits on ``gpu``; the largest batch at its sequence length and the
    longest context at its batch (the model's own limit at most)."""
    req = check_request(req)
    usable = usable_bytes if usable_bytes is not None else round(gpu.memory_bytes * USABLE_FRACTION)
    need = need_bytes(estimate(req))

    max_batch = max_batch_within(req, usable)
    max_seq = None
    spec = req.model
    if spec.is_transformer and spec.family != "vit":
        limit = spec.positions or spec.max_seq_len or MAX_CONTEXT
        max_seq = find_max_value(
            lambda n: need_bytes(estimate(dataclasses.replace(req, seq_len=n))) <= usable,
            1,
            limit,
        )
    return GpuFit(
        gpu_id=gpu.id,
        gpu_name=gpu.name,
        segment=gpu.segment,
        memory_bytes=gpu.memory_bytes,
        usable_bytes=usable,
        need_bytes=need,
        fits=need <= usable,
        max_batch_size=max_batch,
        max_seq_len=max_seq,
    )


def max_batch_within(req: FitRequest, usable_bytes: int) -> int | None:
    """The largest batch whose ``need`` stays within ``usable_bytes`` (None: not even 1)."""
    req = check_request(req)
    return find_max_value(
        lambda n: need_bytes(estimate(dataclasses.replace(req, batch_size=n))) <= usable_bytes,
        1,
        MAX_BATCH,
    )


def fit_across(req: FitRequest, gpus: Sequence[GpuSpec]) -> list[GpuFit]:
    """``fit_on`` for each GPU, in the order given."""
    if not gpus:
        raise UsageError("no GPUs to fit on", "name one with --gpu, or use --all-gpus")
    return [fit_on(req, g) for g in gpus]
