"""Measure what `gpuscout fit` predicts: build the model with random weights on a GPU
(fit/measure/build.py), run real steps, and find the largest batch by doubling then bisecting
(fit/search.py), catching out-of-memory errors and freeing memory after every trial.

The steps are written the way fit counts them:

- train: forward, loss over every position (fp32 cross-entropy), backward, optimizer
  step; two steps per trial, so the optimizer's states exist. Full training runs fp32
  weights under bf16/fp16 autocast (mixed precision); LoRA freezes a 16-bit base and
  trains fp32 adapters under autocast, as PEFT does by default.
- infer: a static KV cache of batch x seq_len, prefill of whole sequences
  (``PREFILL_TOKENS`` at a time, at least one sequence) with FlashAttention, then two
  decode steps; encoders, CNNs and the MLP run one no-grad forward.

The search is bounded: at most ``MAX_TRIALS`` trials and ``SEARCH_BUDGET_S`` seconds
(a trial is never cut short; no new one starts past either). Where it stops there, the
largest batch that ran so far is reported as that, with the words "search stopped at
the limit", rather than the worker running on into its own timeout and losing it all.

Measured peak = ``torch.cuda.max_memory_allocated`` (the allocator's maximum) plus the
process's memory outside the allocator (the CUDA context and the libraries' modules),
read at the end as device used memory less what was used before this process started
CUDA (NVML) less what the allocator holds. Everything runs in a worker process
(isolate.run_isolated): an OOM or a hard crash is a recorded outcome.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable
from typing import Any

from gpuscout.fit.estimate import PREFILL_TOKENS
from gpuscout.fit.measure.build import (
    build_model,
    decoder_hidden,
    encoder_logits,
    lm_logits,
    make_optimizer,
    param_dtype,
)
from gpuscout.fit.measure.driver import MAX_TRIALS, SEARCH_BUDGET_S
from gpuscout.fit.request import FitRequest
from gpuscout.fit.search import Outcome, SearchResult, find_max_batch

TRAIN_STEPS = 2
DECODE_STEPS = 2


class _Stop(Exception):
    """The search's limit reached: no further trial starts."""


def bounded_search(
    try_batch: Callable[[int], Outcome],
    *,
    cap: int,
    cleanup: Callable[[], None] | None = None,
    is_oom: Callable[[BaseException], bool] | None = None,
    max_trials: int = MAX_TRIALS,
    budget_s: float = SEARCH_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[SearchResult, str | None]:
    """fit.search.find_max_batch within ``max_trials`` trials and ``budget_s`` seconds of
    ``clock``; the second value says where it stopped at a limit (None: it ended)."""
    if max_trials < 1 or budget_s <= 0:
        raise ValueError(f"need max_trials >= 1 and budget_s > 0, got {max_trials}, {budget_s}")
    ran: list[tuple[int, Outcome]] = []
    t0 = clock()

    def trial(n: int) -> Outcome:
        if len(ran) >= max_trials:
            raise _Stop(f"{max_trials} trials")
        if clock() - t0 >= budget_s:
            raise _Stop(f"{budget_s:g} s")
        try:
            out = try_batch(n)
        except Exception as exc:  # an OOM the search records as a failed trial
            ran.append((n, Outcome(False, None, type(exc).__name__)))
            raise
        ran.append((n, out))
        return out

    try:
        return find_max_batch(trial, cap=cap, cleanup=cleanup, is_oom=is_oom), None
    except _Stop as stop:
        fits = [(n, o) for n, o in ran if o.fits]
        best, peak = max(fits, key=lambda t: t[0]) if fits else (None, None)
        so_far = "none" if best is None else f"{best:,}"
        note = f"search stopped at the limit ({stop}): largest batch found so far {so_far}"
        peak_bytes = None if peak is None else peak.peak_bytes
        return SearchResult(best, peak_bytes, False, tuple(ran)), note


def input_shape(req: FitRequest, n: int) -> tuple[int, ...]:
    """A batch of ``n`` inputs of an image or vector model: images of the request's
    side for a cnn, the first width of an MLP."""
    spec = req.model
    if spec.family == "cnn":
        image = req.effective_image_size or 224
        return (n, spec.channels, image, image)
    return (n, spec.mlp_dims[0])


class Job:
    """A built model and its optimizer; ``trial(n)`` runs the steps at batch ``n``."""

    def __init__(self, req: FitRequest, device: Any) -> None:
        self.req, self.device = req, device
        self.model = build_model(req, device)
        self.opt = make_optimizer(req, self.model) if req.mode == "train" else None

    def _autocast(self) -> Any:
        import torch

        req = self.req
        if req.mode != "train" or req.dtype == "fp32":
            return contextlib.nullcontext()
        dtype = torch.float16 if req.dtype == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype)

    def _loss(self, n: int) -> Any:
        import torch
        import torch.nn.functional as F

        spec, dev, req = self.req.model, self.device, self.req
        s = req.effective_seq_len or 1
        if spec.family in ("decoder", "encoder"):
            tokens = torch.randint(5, spec.vocab or 6, (n, s), device=dev)
            labels = torch.randint(0, spec.vocab or 1, (n, s), device=dev)
            if spec.family == "encoder":
                labels[torch.rand(n, s, device=dev) >= 0.15] = -100  # 15% masked, as BERT
                logits = encoder_logits(self.model, tokens, req.checkpointing)
            else:
                h = decoder_hidden(self.model, tokens, ckpt=req.checkpointing)
                logits = lm_logits(self.model, h)
                del h
            # The 16-bit logits die when this returns, before the backward pass.
            return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten())
        x = torch.randn(input_shape(req, n), device=dev)
        y = torch.randint(0, spec.num_classes or 10, (n,), device=dev)
        return F.cross_entropy(self.model(x).float(), y)

    def trial(self, n: int) -> None:
        import torch

        if self.req.mode == "infer":
            with torch.no_grad():
                self._infer(n)
            return
        assert self.opt is not None
        for _ in range(TRAIN_STEPS):
            with self._autocast():
                loss = self._loss(n)
            loss.backward()
            del loss
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)

    def _infer(self, n: int) -> None:
        import torch

        spec, dev, req = self.req.model, self.device, self.req
        dtype = param_dtype(req)
        s = req.effective_seq_len or 1
        if spec.family == "decoder":
            prompt = max(1, s - DECODE_STEPS)
            shape = (n, spec.kv_heads or 0, s, spec.head_dim or 0)
            cache = [
                (
                    torch.empty(shape, dtype=dtype, device=dev),
                    torch.empty(shape, dtype=dtype, device=dev),
                )
                for _ in range(spec.layers or 0)
            ]
            rows = max(1, min(n, PREFILL_TOKENS // s))
            last = []
            for r0 in range(0, n, rows):
                part = [(k[r0 : r0 + rows], v[r0 : r0 + rows]) for k, v in cache]
                tokens = torch.randint(0, spec.vocab or 1, (min(rows, n - r0), prompt), device=dev)
                h = decoder_hidden(self.model, tokens, cache=part)
                last.append(lm_logits(self.model, h[:, -1:]).float().argmax(-1))
                del h
            tok = torch.cat(last)
            for i in range(min(DECODE_STEPS, s - prompt)):
                h = decoder_hidden(self.model, tok, cache=cache, start=prompt + i)
                tok = lm_logits(self.model, h).float().argmax(-1)
            return
        if spec.family == "encoder":
            tokens = torch.randint(5, spec.vocab or 6, (n, s), device=dev)
            self.model(tokens)
            return
        self.model(torch.randn(input_shape(req, n), device=dev).to(dtype))


# -- the worker (its own process, see isolate/process.py) -------------------------------------


def nvml_used(nvml: Any | None = None) -> dict[str, int]:
    """Used memory per GPU (by UUID) as NVML reports it; {} when NVML is unavailable.
    ``nvml``: a stand-in for pynvml (tests), as probe_nvidia takes."""
    from gpuscout.probe.nvml import probe_nvidia

    return {
        _uuid_key(g.uuid): g.memory_used_bytes
        for g in probe_nvidia(nvml).gpus
        if g.uuid and g.memory_used_bytes is not None and not g.lost
    }


def _uuid_key(uuid: Any) -> str:
    """NVML's "GPU-8-4-4-4-12" and torch's "8-4-4-4-12" as one key."""
    text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    return text.lower().removeprefix("gpu-").replace("-", "")


def oom_message(exc: BaseException) -> str:
    """The first line of an out-of-memory error; its type when it has no text (a bare
    MemoryError from the host allocator)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def measure_in_worker(
    req: FitRequest,
    device: str = "cuda:0",
    search: bool = True,
    cap: int = 4096,
    max_trials: int = MAX_TRIALS,
    search_budget_s: float = SEARCH_BUDGET_S,
) -> dict[str, Any]:
    """Measured peak at the request's batch and, with ``search``, the largest batch
    (within ``max_trials`` trials and ``search_budget_s`` seconds). Runs in a worker
    process; returns plain values."""
    import torch

    from gpuscout.isolate.process import is_oom

    if not torch.cuda.is_available():
        return {"status": "no_cuda", "error": "PyTorch sees no CUDA GPU on this machine"}
    index, count = torch.device(device).index or 0, torch.cuda.device_count()
    if index >= count:  # an ordinal CUDA would refuse with a traceback further on
        return {"status": "no_cuda", "error": f"there is no {device}: PyTorch sees {count} GPU(s)"}
    dev = torch.device("cuda", index)  # set_device and the memory stats need an index
    before = nvml_used()  # before this process creates a CUDA context
    torch.cuda.set_device(dev)
    props = torch.cuda.get_device_properties(dev)
    out: dict[str, Any] = {
        "status": "ok",
        "device_name": props.name,
        "memory_total_bytes": int(props.total_memory),
        "torch_version": str(torch.__version__),  # a plain str: the parent unpickles without torch
        "cuda_version": torch.version.cuda,
    }

    def cleanup() -> None:
        gc.collect()
        torch.cuda.empty_cache()

    try:
        job = Job(req, dev)
    except Exception as exc:
        if not is_oom(exc):
            raise
        return out | {"status": "oom", "error": f"the model alone does not fit: {exc}"[:300]}

    def try_batch(n: int) -> Outcome:
        # Queued work finished and the cache emptied first, so both peaks are this
        # trial's: max allocated (what fit predicts) and max reserved (what the device
        # really gave the allocator, rounding and fragmentation included).
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        try:
            job.trial(n)
            torch.cuda.synchronize(dev)
        except Exception as exc:
            if not is_oom(exc):
                raise
            if job.opt is not None:
                job.opt.zero_grad(set_to_none=True)
            return Outcome(False, None, oom_message(exc))
        return Outcome(True, int(torch.cuda.max_memory_allocated(dev)))

    cleanup()  # what building the model left in the cache is not the trial's
    at = try_batch(req.batch_size)
    # Read before anything else runs (emptying the cache does not reset the peaks).
    reserved = int(torch.cuda.max_memory_reserved(dev)) if at.fits else None
    cleanup()
    out |= {
        "fits": at.fits,
        "allocated_peak_bytes": at.peak_bytes,
        "reserved_peak_bytes": reserved,
        "error": at.error,
    }
    if search:
        try:
            found, stopped = bounded_search(
                try_batch,
                cap=cap,
                cleanup=cleanup,
                is_oom=is_oom,
                max_trials=max_trials,
                budget_s=search_budget_s,
            )
        except Exception as exc:  # not memory: a kernel's size limit at a huge batch, say
            # The request's batch was measured; that result stays.
            out["search_error"] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            out |= {
                "max_batch": found.max_batch,
                "max_batch_capped": found.capped,
                "max_batch_allocated_bytes": found.peak_bytes,
                "trials": [(n, o.fits, o.peak_bytes) for n, o in found.trials],
                "search_stopped": stopped,
            }
    # Memory outside the allocator: the context and the libraries' loaded modules.
    after = nvml_used()
    key = _uuid_key(getattr(props, "uuid", ""))
    if key and key in before and key in after:
        context = after[key] - before[key] - int(torch.cuda.memory_reserved(dev))
        out |= {"context_bytes": max(0, context), "context_source": "nvml"}
    else:
        out |= {"context_bytes": None, "context_source": "not measured (no NVML)"}
    return out
