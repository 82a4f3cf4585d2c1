"""What `fit` is asked (``FitRequest``) and what it answers (``MemoryEstimate``), the
per-format byte counts, and the checks that turn impossible combinations into one clear
UsageError line.

Byte counts per parameter follow the research notes (``../shared/reference``, part B):
EleutherAI's Transformer Math 101, the ZeRO paper's 16 bytes per parameter for
mixed-precision Adam, the QLoRA paper's NF4 with double quantization.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Final

from gpuscout.errors import UnknownNameError, UsageError
from gpuscout.fit.engines import (
    KV_DTYPES_BY_ENGINE,
    LLAMACPP_DEFAULT_CONTEXT,
    default_kv_dtype,
    parse_engine,
)
from gpuscout.fit.quant import parse_format, parse_kv_dtype
from gpuscout.fit.spec import ModelSpec

MODES: Final = ("train", "infer")
# The formats people name most (quant.parse_format reads many more: every GGUF type and
# mix, GPTQ/AWQ at any bits and group, EXL2 at any bits per weight).
DTYPES: Final = ("fp32", "bf16", "fp16", "fp8", "int8", "nf4", "awq", "gptq", "q4_k_m", "q8_0")
OPTIMIZERS: Final = ("sgd", "sgd-momentum", "adam", "adamw", "adam8bit")
LORA_TARGETS: Final = ("attention", "all")
OPTIMIZER_STATE_BYTES: Final = {  # per trainable parameter, fp32 states
    "sgd": 0,
    "sgd-momentum": 4,  # momentum buffer
    "adam": 8,  # first and second moments
    "adamw": 8,
    "adam8bit": 2,  # bitsandbytes: both moments in 8 bits (block statistics negligible)
}
# torch's default (foreach) optimizers make one full-size temporary in step(): Adam's
# sqrt(v) list, SGD's gradient-plus-weight-decay list. bitsandbytes' 8-bit Adam works
# tensor by tensor. A fused optimizer (fused=True) makes none: the low end of the band.
STEP_TEMP_BYTES: Final = {"sgd": 4, "sgd-momentum": 4, "adam": 4, "adamw": 4, "adam8bit": 0}


@dataclass(frozen=True)
class FitRequest:
    model: ModelSpec
    mode: str = "train"  # "train" | "infer"
    batch_size: int = 1  # per GPU (per data-parallel rank)
    seq_len: int | None = None  # None: the model's default_seq_len
    dtype: str = "bf16"  # weights / compute: fp32, bf16, fp16, fp8, int8, int4, nf4
    optimizer: str = "adamw"  # sgd, sgd-momentum, adam, adamw, adam8bit
    lora_rank: int | None = None  # LoRA; with dtype nf4/int4/int8 it is QLoRA
    checkpointing: bool = False
    gpus: int = 1
    zero: int = 0  # ZeRO stage 0-3 (3 = FSDP full shard), over the data-parallel ranks
    tp: int = 1  # tensor-parallel degree
    flash_attention: bool = True
    lora_targets: str = "attention"  # "attention" (q, k, v, o) or "all" (every linear)
    image_size: int | None = None  # cnn: input side in pixels (None: the model's)
    engine: str = "transformers"  # inference: transformers, vllm or llama.cpp (engines.py)
    kv_dtype: str | None = None  # the KV cache's format (None: the engine's default)
    prefill_chunk: int | None = None  # vLLM's max_num_batched_tokens (None: its default)
    gpu_memory_utilization: float = 0.9  # vLLM's share of the GPU's total memory
    gpu_layers: int | None = None  # llama.cpp's -ngl (None: as many as fit)

    @property
    def dp(self) -> int:
        """Data-parallel ranks: the GPUs ZeRO shards over."""
        return self.gpus // self.tp

    @property
    def lora(self) -> bool:
        return self.lora_rank is not None

    @property
    def quantized_base(self) -> bool:
        """LoRA on a base kept in a quantized format (QLoRA)."""
        return self.lora and parse_format(self.dtype).linear_bits < 16

    @property
    def effective_seq_len(self) -> int | None:
        """Tokens per sample: the request's, the model's default, a ViT's patches + 1."""
        spec = self.model
        if spec.family == "vit":
            return spec.tokens_per_sample
        if not spec.is_transformer:
            return None
        if self.seq_len:
            return self.seq_len
        if self.mode == "infer" and self.engine == "vllm" and spec.max_seq_len:
            return spec.max_seq_len  # vLLM's max_model_len defaults to the model's limit
        if self.mode == "infer" and self.engine == "llama.cpp":
            return min(LLAMACPP_DEFAULT_CONTEXT, spec.max_seq_len or LLAMACPP_DEFAULT_CONTEXT)
        return spec.default_seq_len or spec.max_seq_len or 2048

    @property
    def effective_image_size(self) -> int | None:
        return self.image_size or self.model.image_size

    @property
    def effective_kv_dtype(self) -> str:
        return self.kv_dtype or default_kv_dtype(self.engine, self.dtype)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU. ``total_bytes`` is the expected peak (the allocator's maximum plus
    the CUDA context); in training it is less than the sum of the terms, because the
    activations are freed as the gradients are made (see ``notes``)."""

    request: FitRequest
    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int  # optimizer states + fp32 master weights
    activations_bytes: int  # incl. the logits spike
    kv_cache_bytes: int
    overhead_bytes: int  # CUDA context and library workspaces (allocator margin: high_bytes)
    total_bytes: int
    low_bytes: int
    high_bytes: int
    dominant: str
    lever: str
    notes: tuple[str, ...] = ()
    host_bytes: int = 0  # system RAM the engine keeps (llama.cpp's token embedding)
    outside_budget_bytes: int = 0  # vLLM: the part outside gpu_memory_utilization
    assumptions: str = ""  # engine, attention kernel, prefill chunk, KV dtype: one line
    warnings: tuple[str, ...] = ()


def _choice(value: str, allowed: tuple[str, ...], kind: str) -> str:
    key = value.strip().lower()
    key = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}.get(key, key)
    key = {"adam-8bit": "adam8bit", "sgdm": "sgd-momentum", "momentum": "sgd-momentum"}.get(
        key, key
    )
    if key not in allowed:
        close = difflib.get_close_matches(key, allowed, n=3, cutoff=0.5)
        exc = UnknownNameError(kind, value, close)
        exc.hint = exc.hint or f"use one of {', '.join(allowed)}"
        raise exc
    return key


def check_request(req: FitRequest) -> FitRequest:
    """The request with names normalised; UsageError for impossible combinations (the
    first one, in the order of the checks below)."""
    req = dataclasses.replace(
        req,
        mode=_choice(req.mode, MODES, "mode"),
        dtype=parse_format(req.dtype).name,
        optimizer=_choice(req.optimizer, OPTIMIZERS, "optimizer"),
        lora_targets=_choice(req.lora_targets, LORA_TARGETS, "LoRA target set"),
        engine=parse_engine(req.engine),
    )
    if req.kv_dtype is not None:
        req = dataclasses.replace(req, kv_dtype=parse_kv_dtype(req.kv_dtype))
    for check in (
        _check_sizes,
        _check_engine,
        _check_sharding,
        _check_lora,
        _check_mode,
        _check_tensor_parallel,
        _check_seq_len,
    ):
        check(req)
    return req


def _check_sizes(req: FitRequest) -> None:
    """Counts of at least 1; an image size only for CNNs."""
    for name in ("batch_size", "gpus", "tp"):
        if getattr(req, name) < 1:
            raise UsageError(
                f"--{name.replace('_', '-')} must be at least 1, not {getattr(req, name)}"
            )
    if req.seq_len is not None and req.seq_len < 1:
        raise UsageError(f"--seq-len must be at least 1, not {req.seq_len}")
    if req.image_size is not None and (req.model.family != "cnn" or req.image_size < 32):
        raise UsageError("--image-size applies to CNN models only, and must be at least 32")


def _check_engine(req: FitRequest) -> None:
    """What the engine offers: training only in PyTorch, its KV formats, its knobs."""
    if req.mode == "train" and req.engine != "transformers":
        raise UsageError(
            f"{req.engine} serves models; training runs in PyTorch",
            "drop --engine, or add --infer",
        )
    offered = KV_DTYPES_BY_ENGINE[req.engine]
    if req.effective_kv_dtype not in offered:
        raise UsageError(
            f"{req.engine} has no {req.effective_kv_dtype} KV cache",
            f"its KV formats: {', '.join(offered)}",
        )
    if not 0.05 <= req.gpu_memory_utilization <= 1.0:
        raise UsageError(
            f"--gpu-memory-utilization must be within 0.05-1, not {req.gpu_memory_utilization:g}"
        )
    if req.gpu_layers is not None and (req.engine != "llama.cpp" or req.gpu_layers < 0):
        raise UsageError("--gpu-layers (llama.cpp's -ngl) needs --engine llama.cpp and >= 0")
    if req.prefill_chunk is not None and req.prefill_chunk < 1:
        raise UsageError(f"--prefill-chunk must be at least 1, not {req.prefill_chunk}")


def _check_sharding(req: FitRequest) -> None:
    if req.zero not in (0, 1, 2, 3):
        raise UsageError(f"--zero must be 0, 1, 2 or 3, not {req.zero}")
    if req.gpus % req.tp:
        raise UsageError(f"--gpus {req.gpus} is not a multiple of --tp {req.tp}")


def _check_lora(req: FitRequest) -> None:
    """LoRA trains adapters of a transformer's layers."""
    if not req.lora:
        return
    if req.mode != "train":
        raise UsageError("LoRA is a way to train: drop --lora-rank for --infer")
    if req.lora_rank is not None and req.lora_rank < 1:
        raise UsageError(f"--lora-rank must be at least 1, not {req.lora_rank}")
    if not req.model.is_transformer:
        spec = req.model
        raise UsageError(f"LoRA adapts transformer layers; {spec.id} is a {spec.family}")


def _check_mode(req: FitRequest) -> None:
    """What training and inference each allow."""
    train = req.mode == "train"
    if train and not parse_format(req.dtype).trainable and not req.lora:
        raise UsageError(
            f"{req.dtype} weights cannot be trained directly",
            f"add --lora-rank 16 for QLoRA (a frozen {req.dtype} base with trainable adapters)",
        )
    if not train and (req.zero or req.checkpointing):
        raise UsageError(
            "--zero and --checkpointing apply to training",
            "for inference over several GPUs use --tp",
        )


def _check_tensor_parallel(req: FitRequest) -> None:
    """Tensor parallelism splits a transformer's heads."""
    spec = req.model
    if req.tp <= 1:
        return
    if not spec.is_transformer:
        raise UsageError(f"tensor parallelism splits transformer layers; {spec.id} is not one")
    if (spec.heads or 0) % req.tp:
        raise UsageError(f"--tp {req.tp} does not divide the model's {spec.heads} heads")


def _check_seq_len(req: FitRequest) -> None:
    """A sequence length only for transformers, within what the model can read."""
    spec = req.model
    if req.seq_len is None:
        return
    if not spec.is_transformer:
        raise UsageError(f"--seq-len applies to transformers; {spec.id} is a {spec.family}")
    if spec.family == "vit" and req.seq_len != spec.tokens_per_sample:
        raise UsageError(f"a ViT's sequence is fixed by its image: {spec.tokens_per_sample}")
    if spec.positions and req.seq_len > spec.positions:
        raise UsageError(
            f"--seq-len {req.seq_len} is longer than {spec.id}'s {spec.positions} learned positions"
        )
