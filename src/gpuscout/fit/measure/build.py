"""The models `gpuscout fit --measure` runs, and their forward passes written the way fit
counts them (trials.py runs the steps; simulate.py replays them on fake tensors).

The models are the workloads' own classes (llama.py for Llama-shaped decoders,
encoder.py, resnet.py, the mlp) with random weights, built directly on the device in
their parameter dtype: full training keeps fp32 weights for autocast (mixed precision);
LoRA freezes a 16-bit base and trains fp32 adapters, as PEFT does by default; inference
runs the 16-bit (or fp32) model as it is.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

from gpuscout.fit.request import FitRequest
from gpuscout.fit.spec import ModelSpec

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


def param_dtype(req: FitRequest) -> Any:
    """The dtype the model's parameters are built in."""
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

    spec, dtype = req.model, param_dtype(req)
    torch.manual_seed(0)
    with _default_dtype(dtype):
        model = _BUILDERS[spec.family](req, device)
    if req.lora:
        _add_lora(model, spec, req.lora_rank or 0, req.lora_targets)
    return model.train(req.mode == "train")


def _decoder(req: FitRequest, device: Any) -> Any:
    import torch

    from gpuscout.workloads.llama import LlamaShape, _classes

    with torch.device(device):
        model = _classes().Llama(LlamaShape.from_spec(req.model), True)
        model.init_weights(req.effective_seq_len or 1)  # N(0, 0.02) and the RoPE tables
    return model


def _encoder(req: FitRequest, device: Any) -> Any:
    import torch

    from gpuscout.workloads.encoder import EncoderShape, make_encoder

    with torch.device(device):
        return make_encoder(EncoderShape.from_spec(req.model), sdpa=True)


def _resnet(req: FitRequest, device: Any) -> Any:
    import torch

    from gpuscout.workloads.resnet import make_resnet

    with torch.device(device):
        return make_resnet(req.model)


def _mlp(req: FitRequest, device: Any) -> Any:
    from gpuscout.workloads.mlp import make_mlp

    return make_mlp(req.model, device)


# model-table family -> the builder of its torch model (the workloads' own classes)
_BUILDERS: dict[str, Callable[[FitRequest, Any], Any]] = {
    "decoder": _decoder,
    "encoder": _encoder,
    "cnn": _resnet,
    "mlp": _mlp,
}


def make_optimizer(req: FitRequest, model: Any) -> Any:
    """torch's default (foreach) optimizer over the trainable parameters."""
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
    import torch

    half = x.shape[-1] // 2
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
    # enable_gqa only where k and v have fewer heads than q: some SDPA kernels refuse
    # the flag outright and would hand the call to the math kernel (b x heads x n^2).
    gqa = s.kv_heads != s.heads

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
        if gqa:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=n > 1, enable_gqa=True)
        else:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=n > 1)
        return layer.attn.wo(a.transpose(1, 2).reshape(b, n, -1))

    def block(i: int, x: Any) -> Any:
        layer = model.layers[i]
        x = x + attention(i, x)
        h = layer.ffn_norm(x)
        return x + layer.w2(F.silu(layer.w1(h)) * layer.w3(h))

    for i in range(len(model.layers)):
        x = _checkpointed(functools.partial(block, i), ckpt, x)
    return model.norm(x)


def lm_logits(model: Any, h: Any) -> Any:
    """The output layer of a llama.py model (the embedding's, when tied)."""
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
