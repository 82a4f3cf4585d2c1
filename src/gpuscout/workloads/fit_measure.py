"""Measure what `gpuscout fit` predicts: build the model with random weights on a GPU,
run real steps, and find the largest batch by doubling then bisecting (fit/search.py),
catching out-of-memory errors and freeing memory after every trial.

The models are the workloads' own classes (llama.py for Llama-shaped decoders,
encoder.py, resnet.py, the mlp); the steps are written the way fit counts them:

- train: forward, loss over every position (fp32 cross-entropy), backward, optimizer
  step; two steps per trial, so the optimizer's states exist. Full training runs fp32
  weights under bf16/fp16 autocast (mixed precision); LoRA freezes a 16-bit base and
  trains fp32 adapters under autocast, as PEFT does by default.
- infer: a static KV cache of batch x seq_len, prefill of whole sequences
  (``PREFILL_TOKENS`` at a time, at least one sequence) with FlashAttention, then two
  decode steps; encoders, CNNs and the MLP run one no-grad forward.

Measured peak = ``torch.cuda.max_memory_allocated`` (the allocator's maximum) plus the
process's memory outside the allocator (the CUDA context and the libraries' modules),
read at the end as device used memory less what was used before this process started
CUDA (NVML) less what the allocator holds. Everything runs in a worker process
(launch/worker.run_isolated): an OOM or a hard crash is a recorded outcome.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import Any

from gpuscout.fit.estimate import PREFILL_TOKENS
from gpuscout.fit.request import FitRequest
from gpuscout.fit.search import Outcome, find_max_batch
from gpuscout.fit.spec import ModelSpec

TRAIN_STEPS = 2
DECODE_STEPS = 2
WEIGHT_DECAY = {"sgd": 1e-4, "sgd-momentum": 1e-4, "adam": 0.0, "adamw": 0.01}


# -- models -----------------------------------------------------------------------------


@functools.cache
def _lora_class() -> Any:
    import torch
    from torch import nn

    class LoRALinear(nn.Module):
        """A frozen linear layer plus a trainable rank-r update (fp32, PEFT's default)."""

        def __init__(self, base: nn.Linear, rank: int) -> None:
            super().__init__()
            self.base, self.scale = base, 2.0  # alpha = 2 x rank
            dev = base.weight.device
            self.a = nn.Parameter(torch.randn(rank, base.in_features, device=dev) * 0.01)
            self.b = nn.Parameter(torch.zeros(base.out_features, rank, device=dev))

        def forward(self, x: Any) -> Any:
            return self.base(x) + (x @ self.a.t() @ self.b.t()) * self.scale

    return LoRALinear


def _add_lora(model: Any, spec: ModelSpec, rank: int, targets: str) -> None:
    model.requires_grad_(False)
    lora = _lora_class()
    names = {
        "decoder": (("attn.wq", "attn.wk", "attn.wv", "attn.wo"), ("w1", "w3", "w2")),
        "encoder": (("attn.qkv", "attn.out"), ("ffn.0", "ffn.2")),
    }[spec.family]
    paths = names[0] + (names[1] if targets == "all" else ())
    for layer in model.layers:
        for path in paths:
            parent_path, _, leaf = path.rpartition(".")
            parent = layer.get_submodule(parent_path) if parent_path else layer
            setattr(parent, leaf, lora(getattr(parent, leaf), rank))


def _param_dtype(req: FitRequest) -> Any:
    import torch

    if req.dtype == "fp32" or (req.mode == "train" and not req.lora):
        return torch.float32  # full training: fp32 weights under autocast
    return torch.float16 if req.dtype == "fp16" else torch.bfloat16


@contextlib.contextmanager
def _default_dtype(dtype: Any) -> Iterator[None]:
    """Create parameters directly in ``dtype``: no fp32 copy first, no conversion peak."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def build_model(req: FitRequest, device: Any) -> Any:
    """The workload's model for ``req`` on ``device``, random weights, LoRA applied."""
    import torch

    spec, dtype = req.model, _param_dtype(req)
    torch.manual_seed(0)
    if spec.family == "decoder":
        from gpuscout.workloads.llama import LlamaShape, _classes

        shape = LlamaShape(
            spec.layers or 0,
            spec.hidden or 0,
            spec.heads or 0,
            spec.kv_heads or 0,
            spec.intermediate or 0,
            spec.vocab or 0,
            tie_embeddings=spec.tied_embeddings,
        )
        with torch.device(device), _default_dtype(dtype):
            model = _classes().Llama(shape, True)
            model.init_weights(req.effective_seq_len or 1)  # N(0, 0.02) and the RoPE tables
    elif spec.family == "encoder":
        from gpuscout.workloads.encoder import EncoderShape, make_encoder

        shape_e = EncoderShape(
            spec.layers or 0,
            spec.hidden or 0,
            spec.heads or 0,
            spec.intermediate or 0,
            spec.vocab or 0,
            spec.positions or 512,
        )
        with torch.device(device), _default_dtype(dtype):
            model = make_encoder(shape_e, sdpa=True)
    elif spec.family == "cnn":
        from gpuscout.workloads.resnet import make_resnet

        with torch.device(device), _default_dtype(dtype):
            model = make_resnet(spec.id, spec.num_classes or 1000)
    else:
        from gpuscout.workloads.mlp import make_model

        with _default_dtype(dtype):
            model = make_model(device)
    if req.lora:
        _add_lora(model, spec, req.lora_rank or 0, req.lora_targets)
    return model.train(req.mode == "train")


def _optimizer(req: FitRequest, model: Any) -> Any:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    wd = WEIGHT_DECAY[req.optimizer]
    if req.optimizer.startswith("sgd"):
        momentum = 0.9 if req.optimizer == "sgd-momentum" else 0.0
        return torch.optim.SGD(params, lr=0.01, momentum=momentum, weight_decay=wd, foreach=True)
    cls = torch.optim.AdamW if req.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=1e-4, weight_decay=wd, foreach=True)


# -- forward passes -----------------------------------------------------------------------


def _rope(x: Any, cos: Any, sin: Any) -> Any:
    half = x.shape[-1] // 2
    import torch

    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def _checkpointed(fn: Callable[..., Any], on: bool, *args: Any) -> Any:
    if not on:
        return fn(*args)
    from torch.utils.checkpoint import checkpoint

    return checkpoint(fn, *args, use_reentrant=False)


def decoder_hidden(
    model: Any, tokens: Any, *, cache: Any = None, start: int = 0, ckpt: bool = False
) -> Any:
    """Final-norm hidden states of a llama.py model, written as Hugging Face's Llama:
    RoPE in the compute dtype, SDPA with is_causal (FlashAttention, native GQA); with
    ``cache`` (a list of (k, v) views per layer), keys and values go there."""
    import torch.nn.functional as F

    s = model.s
    b, n = tokens.shape
    x = model.tok(tokens)
    cos = model.cos[start : start + n]
    sin = model.sin[start : start + n]

    def attention(i: int, x: Any) -> Any:  # its own frame: q, k, v die on return
        layer = model.layers[i]
        h = layer.attn_norm(x)
        q = layer.attn.wq(h).view(b, n, s.heads, s.head_dim).transpose(1, 2)
        k = layer.attn.wk(h).view(b, n, s.kv_heads, s.head_dim).transpose(1, 2)
        v = layer.attn.wv(h).view(b, n, s.kv_heads, s.head_dim).transpose(1, 2)
        del h
        c, si = cos.to(q.dtype), sin.to(q.dtype)
        q, k = _rope(q, c, si), _rope(k, c, si)
        if cache is not None:
            ck, cv = cache[i]
            ck[:, :, start : start + n] = k
            cv[:, :, start : start + n] = v
            k, v = ck[:, :, : start + n], cv[:, :, : start + n]
        a = F.scaled_dot_product_attention(q, k, v, is_causal=n > 1, enable_gqa=True)
        return layer.attn.wo(a.transpose(1, 2).reshape(b, n, -1))

    def block(i: int, x: Any) -> Any:
        layer = model.layers[i]
        x = x + attention(i, x)
        h = layer.ffn_norm(x)
        return x + layer.w2(F.silu(layer.w1(h)) * layer.w3(h))

    for i in range(len(model.layers)):
        x = _checkpointed(functools.partial(block, i), ckpt, x)
    return model.norm(x)


def _lm_logits(model: Any, h: Any) -> Any:
    import torch.nn.functional as F

    return model.output(h) if model.output is not None else F.linear(h, model.tok.weight)


def encoder_logits(model: Any, tokens: Any, ckpt: bool = False) -> Any:
    """encoder.py's forward, one layer at a time (so layers can be checkpointed)."""
    import torch
    import torch.nn.functional as F

    pos = torch.arange(tokens.shape[1], device=tokens.device)
    x = model.ln(model.tok(tokens) + model.pos(pos))
    for layer in model.layers:
        x = _checkpointed(layer, ckpt, x)
    return F.linear(model.head(x), model.tok.weight, model.bias)


# -- one trial ------------------------------------------------------------------------------


class Job:
    """A built model and its optimizer; ``trial(n)`` runs the steps at batch ``n``."""

    def __init__(self, req: FitRequest, device: Any) -> None:
        self.req, self.device = req, device
        self.model = build_model(req, device)
        self.opt = _optimizer(req, self.model) if req.mode == "train" else None

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
                logits = _lm_logits(self.model, h)
                del h
            # The 16-bit logits die when this returns, before the backward pass.
            return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten())
        image = req.effective_image_size or 224
        shape = (n, 3, image, image) if spec.family == "cnn" else (n, 1, 28, 28)
        x = torch.randn(shape, device=dev)
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
        dtype = _param_dtype(req)
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
                last.append(_lm_logits(self.model, h[:, -1:]).float().argmax(-1))
                del h
            tok = torch.cat(last)
            for i in range(min(DECODE_STEPS, s - prompt)):
                h = decoder_hidden(self.model, tok, cache=cache, start=prompt + i)
                tok = _lm_logits(self.model, h).float().argmax(-1)
            return
        if spec.family == "encoder":
            tokens = torch.randint(5, spec.vocab or 6, (n, s), device=dev)
            self.model(tokens)
            return
        image = req.effective_image_size or 224
        shape = (n, 3, image, image) if spec.family == "cnn" else (n, 1, 28, 28)
        self.model(torch.randn(shape, device=dev).to(dtype))


# -- the worker (its own process, see launch/worker.py) -------------------------------------


def _nvml_used() -> dict[str, int]:
    """Used memory per GPU (by UUID) as NVML reports it; {} when NVML is unavailable."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            out = {}
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                out[_uuid_key(pynvml.nvmlDeviceGetUUID(handle))] = int(
                    pynvml.nvmlDeviceGetMemoryInfo(handle).used
                )
            return out
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver library, no permission: the context goes unmeasured
        return {}


def _uuid_key(uuid: Any) -> str:
    text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    return text.lower().removeprefix("gpu-").replace("-", "")


def measure_in_worker(
    req: FitRequest, device: str = "cuda:0", search: bool = True, cap: int = 4096
) -> dict[str, Any]:
    """Measured peak at the request's batch and, with ``search``, the largest batch.
    Runs in a worker process; returns plain values."""
    import torch

    from gpuscout.launch.worker import is_oom

    if not torch.cuda.is_available():
        return {"status": "no_cuda", "error": "PyTorch sees no CUDA GPU on this machine"}
    before = _nvml_used()  # before this process creates a CUDA context
    dev = torch.device(device)
    torch.cuda.set_device(dev)
    props = torch.cuda.get_device_properties(dev)
    out: dict[str, Any] = {
        "status": "ok",
        "device_name": props.name,
        "memory_total_bytes": int(props.total_memory),
        "torch_version": torch.__version__,
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
            return Outcome(False, None, str(exc).splitlines()[0][:200])
        return Outcome(True, int(torch.cuda.max_memory_allocated(dev)))

    at = try_batch(req.batch_size)
    cleanup()
    out |= {"fits": at.fits, "allocated_peak_bytes": at.peak_bytes, "error": at.error}
    if search:
        found = find_max_batch(try_batch, cap=cap, cleanup=cleanup, is_oom=is_oom)
        out |= {
            "max_batch": found.max_batch,
            "max_batch_capped": found.capped,
            "max_batch_allocated_bytes": found.peak_bytes,
            "trials": [(n, o.fits, o.peak_bytes) for n, o in found.trials],
        }
    # Memory outside the allocator: the context and the libraries' loaded modules.
    after = _nvml_used()
    key = _uuid_key(getattr(props, "uuid", ""))
    if key and key in before and key in after:
        context = after[key] - before[key] - int(torch.cuda.memory_reserved(dev))
        out |= {"context_bytes": max(0, context), "context_source": "nvml"}
    else:
        out |= {"context_bytes": None, "context_source": "not measured (no NVML)"}
    return out
