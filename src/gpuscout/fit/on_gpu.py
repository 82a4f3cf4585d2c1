"""Does a request fit on a catalog GPU, and how far can the batch or the context grow?

``usable`` is what a process can allocate: the catalog's memory (binary GB) less what
the driver keeps (ECC, reserved pages): PyTorch sees 24,268 of 24,576 MiB on an RTX 3090
and 79.2 of 80 GiB on an H100 (reference part B5). A display, or another process, takes
more; pass ``usable_bytes`` when it is known (the local GPU). ``need`` is the estimate's
peak plus the allocator's fragmentation margin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from gpuscout.catalog import GpuSpec, find_gpu
from gpuscout.errors import UsageError
from gpuscout.fit.engines import vllm_chunk
from gpuscout.fit.estimate import ALLOCATOR_MARGIN, WeightSplit, estimate, weight_split
from gpuscout.fit.request import FitRequest, MemoryEstimate, check_request
from gpuscout.fit.search import find_max_value

USABLE_FRACTION: Final = 0.985
# Apple silicon: the GPU may use about 75% of unified memory by default (Metal's
# recommendedMaxWorkingSetSize; reference part B5, MPS), the rest stays with macOS.
APPLE_USABLE_FRACTION: Final = 0.75
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
    budget_bytes: int | None = None  # vLLM: gpu_memory_utilization x the GPU's memory
    gpu_layers: int | None = None  # llama.cpp: blocks on the GPU (of ``total_layers``)
    total_layers: int | None = None
    host_bytes: int = 0  # system RAM the engine needs (llama.cpp: embedding, offloaded layers)


def need_bytes(est: MemoryEstimate) -> int:
    """The estimate's peak plus PyTorch's allocator fragmentation margin. Serving
    engines allocate fixed buffers up front (llama.cpp's, vLLM's KV blocks after a
    measured profile): no margin."""
    req = est.request
    if req.mode == "infer" and req.engine in ("llama.cpp", "vllm"):
        return est.total_bytes
    return round(est.total_bytes + ALLOCATOR_MARGIN * (est.total_bytes - est.overhead_bytes))


def default_gpus() -> list[GpuSpec]:
    return [find_gpu(g) for g in DEFAULT_GPUS]


def fit_on(req: FitRequest, gpu: GpuSpec, usable_bytes: int | None = None) -> GpuFit:
    """Whether ``req`` fits on ``gpu``; the largest batch at its sequence length and the
    longest context at its batch (the model's own limit at most)."""
    req = check_request(req)
    share = APPLE_USABLE_FRACTION if gpu.vendor == "Apple" else USABLE_FRACTION
    usable = usable_bytes if usable_bytes is not None else round(gpu.memory_bytes * share)
    if req.mode == "infer" and req.engine == "vllm":
        return vllm_fit(req, gpu, usable)
    if req.mode == "infer" and req.engine == "llama.cpp" and req.model.is_transformer:
        return llamacpp_fit(req, gpu, usable)
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


# -- serving engines -------------------------------------------------------------------


def _longest(req: FitRequest, ok: Callable[[FitRequest], bool]) -> int | None:
    """The longest context (at the request's batch) for which ``ok`` holds."""
    spec = req.model
    limit = spec.positions or spec.max_seq_len or MAX_CONTEXT
    return find_max_value(lambda n: ok(dataclasses.replace(req, seq_len=n)), 1, limit)


def _largest_batch(req: FitRequest, ok: Callable[[FitRequest], bool]) -> int | None:
    return find_max_value(lambda n: ok(dataclasses.replace(req, batch_size=n)), 1, MAX_BATCH)


def vllm_fit(req: FitRequest, gpu: GpuSpec, usable: int) -> GpuFit:
    """vLLM starts when weights, the profiled activation peak and the KV cache for the
    context fit in ``gpu_memory_utilization`` of the GPU's memory, and the CUDA context
    and graphs fit in what is left outside it."""
    if req.prefill_chunk is None:
        req = dataclasses.replace(req, prefill_chunk=vllm_chunk(gpu.memory_bytes, gpu.name))
    budget = round(req.gpu_memory_utilization * usable)

    def ok(r: FitRequest) -> bool:
        est = estimate(r)
        inside = need_bytes(est) - est.outside_budget_bytes
        return inside <= budget and est.outside_budget_bytes <= usable - budget

    need = need_bytes(estimate(req))
    return GpuFit(
        gpu_id=gpu.id,
        gpu_name=gpu.name,
        segment=gpu.segment,
        memory_bytes=gpu.memory_bytes,
        usable_bytes=usable,
        need_bytes=need,
        fits=ok(req),
        max_batch_size=_largest_batch(req, ok),
        max_seq_len=_longest(req, ok),
        budget_bytes=budget,
    )


def llamacpp_fit(req: FitRequest, gpu: GpuSpec, usable: int) -> GpuFit:
    """llama.cpp puts as many blocks on the GPU as fit (or ``gpu_layers``), the output
    layer with the last of them; the rest, and the token embedding, stay in system RAM.
    The longest context is the one at which every block still fits on the GPU."""
    est = estimate(req)
    layers = req.model.layers or 0
    split = weight_split(est.request)
    given = req.gpu_layers
    on_gpu = min(given if given is not None else _layers_that_fit(est, split, usable), layers)
    gpu_bytes, host = _offload_split(est, split, on_gpu)

    def ok(r: FitRequest) -> bool:
        return need_bytes(estimate(r)) <= usable

    return GpuFit(
        gpu_id=gpu.id,
        gpu_name=gpu.name,
        segment=gpu.segment,
        memory_bytes=gpu.memory_bytes,
        usable_bytes=usable,
        need_bytes=round(gpu_bytes),
        fits=on_gpu >= layers and gpu_bytes <= usable,
        max_batch_size=_largest_batch(req, ok),
        max_seq_len=_longest(req, ok),
        gpu_layers=on_gpu,
        total_layers=layers,
        host_bytes=round(host),
    )


def _offload_split(est: MemoryEstimate, split: WeightSplit, on_gpu: int) -> tuple[float, float]:
    """(GPU bytes, system RAM bytes) with ``on_gpu`` blocks on the GPU: each block takes
    its weights and its share of the KV cache along; the output layer goes with the
    last block; the compute buffer and the CUDA context stay on the GPU."""
    layers = len(split.layers)
    kv_per_layer = est.kv_cache_bytes / max(1, layers)
    all_on = on_gpu >= layers
    gpu = float(est.overhead_bytes + est.activations_bytes)
    gpu += sum(split.layers[:on_gpu]) + on_gpu * kv_per_layer + (split.head if all_on else 0.0)
    host = float(est.host_bytes) + sum(split.layers[on_gpu:]) + (layers - on_gpu) * kv_per_layer
    host += 0.0 if all_on else split.head
    return gpu, host


def _layers_that_fit(est: MemoryEstimate, split: WeightSplit, usable: int) -> int:
    """The most blocks whose weights and KV cache fit beside the fixed GPU costs."""
    best = 0
    for n in range(len(split.layers) + 1):
        if _offload_split(est, split, n)[0] <= usable:
            best = n
    return best
