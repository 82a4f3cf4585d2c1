"""``estimate(FitRequest) -> MemoryEstimate``: per-GPU bytes, term by term.

    peak = overhead + weights + optimizer states (+ fp32 masters)
           + train: max(activations + logits spike,   # the start of the backward pass
                        gradients,                    # its end
                        gradients + step temporary)   # inside optimizer.step()
           + infer: KV cache + the largest forward working set

Model states follow the ZeRO paper's mixed-precision accounting: 16-bit weights (2 bytes)
and gradients (2), fp32 masters (4) and Adam moments (8): 16 bytes per parameter. torch
autocast holds the same 16 bytes in another split (fp32 weights and gradients, 16-bit
weight copies alive during forward and backward), and the peaks come out the same.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from gpuscout.fit.activations import (
    Regime,
    layer_infer_bytes,
    layer_train_bytes,
    logits_spike,
    mlp_infer_bytes,
    mlp_train_bytes,
    model_extra_train_bytes,
    resnet_infer_bytes,
    resnet_train_bytes,
    resnet_train_peak,
)
from gpuscout.fit.engines import (
    LLAMACPP_UBATCH,
    VLLM_CHUNK_SMALL,
    VLLM_GRAPHS_BYTES,
    VLLM_MAX_SEQS,
    VLLM_SAMPLER_BYTES,
    llamacpp_compute_buffer,
)
from gpuscout.fit.quant import KV_DTYPES as KV_BYTES
from gpuscout.fit.quant import parse_format, weight_bytes
from gpuscout.fit.request import (
    OPTIMIZER_STATE_BYTES,
    STEP_TEMP_BYTES,
    FitRequest,
    MemoryEstimate,
    check_request,
)
from gpuscout.fit.spec import (
    ModelSpec,
    ParamGroups,
    block_linears,
    iter_lora_targets,
    kv_elements,
    lora_params,
    param_groups,
)

MIB: Final = 1024**2
# The CUDA context a process pays per GPU before its first tensor: ~300 MB on current
# stacks with lazy module loading, 200-700 MB in PyTorch reports, over 1 GB before CUDA
# 11.7 (reference part B5: pytorch#107667, #20532, #28113). One figure, to be replaced
# by the one measured on our H100 (scripts/fit_validate.py prints it).
CUDA_CONTEXT_BYTES: Final = 500 * MIB
CONTEXT_LOW_BYTES: Final = 300 * MIB
CONTEXT_HIGH_BYTES: Final = 1024 * MIB
# cuBLAS workspace, allocated through PyTorch's caching allocator (32 MiB on Hopper).
CUBLAS_WORKSPACE_BYTES: Final = 32 * MIB
# NCCL's buffers per process when several GPUs talk; invisible to PyTorch's profiler.
NCCL_BYTES: Final = 512 * MIB
# Inference prefills whole sequences, as many as fit in this many tokens at a time
# (at least one): what serving engines' chunked prefill bounds the working set to.
PREFILL_TOKENS: Final = 2048
# Allocator fragmentation on top of the allocated peak, static shapes (reference B5:
# +5-10% with expandable segments, 20-30% for variable shapes).
ALLOCATOR_MARGIN: Final = 0.05
ACTIVATION_SPREAD: Final = (0.10, 0.15)  # kernels keep a little less or more than counted


@dataclass(frozen=True)
class _Terms:
    weights: float
    gradients: float
    optimizer: float
    activations: float  # kept at the start of backward (training); the forward's working set
    act_peak: float  # training: activations + gradients made by then, at their largest
    kv_cache: float
    overhead: float
    step_temp: float
    notes: tuple[str, ...]
    host: float = 0.0
    outside: float = 0.0


def estimate(req: FitRequest) -> MemoryEstimate:
    """Per-GPU memory of ``req``; UsageError for impossible combinations."""
    req = check_request(req)
    t = _terms(req)
    static = t.weights + t.optimizer + t.overhead
    if req.mode == "train":
        candidates = {
            "activations": t.act_peak,
            "gradients": t.gradients,
            "step": t.gradients + t.step_temp,
        }
        peak_at = max(candidates, key=lambda k: candidates[k])
        total = static + candidates[peak_at]
        fused_total = static + max(t.act_peak, t.gradients)
    else:
        peak_at = "forward"
        total = fused_total = static + t.kv_cache + t.activations
    lo_act, hi_act = ACTIVATION_SPREAD
    low = fused_total - lo_act * t.activations - (CUDA_CONTEXT_BYTES - CONTEXT_LOW_BYTES)
    high = (
        total
        + hi_act * t.activations
        + ALLOCATOR_MARGIN * 2 * (total - t.overhead)
        + (CONTEXT_HIGH_BYTES - CUDA_CONTEXT_BYTES)
    )
    terms = {
        "weights": t.weights,
        "gradients": t.gradients,
        "optimizer": t.optimizer,
        "activations": t.activations,
        "kv_cache": t.kv_cache,
        "overhead": t.overhead,
    }
    dominant = max(terms, key=lambda k: terms[k])
    notes = list(t.notes)
    if req.mode == "train":
        notes.append(
            f"peak at {_PEAK_WHEN[peak_at]}; the terms add up to more than the peak "
            "because activations are freed as gradients are made"
        )
    return MemoryEstimate(
        request=req,
        weights_bytes=round(t.weights),
        gradients_bytes=round(t.gradients),
        optimizer_bytes=round(t.optimizer),
        activations_bytes=round(t.activations),
        kv_cache_bytes=round(t.kv_cache),
        overhead_bytes=round(t.overhead),
        total_bytes=round(total),
        low_bytes=round(low),
        high_bytes=round(high),
        dominant=dominant,
        lever=_lever(dominant, req),
        notes=tuple(notes),
        host_bytes=round(t.host),
        outside_budget_bytes=round(t.outside),
        assumptions=assumptions(req),
        warnings=_warnings(req),
    )


_PEAK_WHEN: Final = {
    "activations": "the start of the backward pass (activations and the loss held)",
    "gradients": "the end of the backward pass (all gradients held)",
    "step": "the optimizer step (gradients plus the optimizer's temporary)",
}


def _sharded(groups: ParamGroups, tp: int) -> float:
    """Parameters one tensor-parallel rank holds: linear layers, embeddings and the
    output layer are split; norms and biases are replicated."""
    return (groups.linear + groups.embedding + groups.head) / tp + groups.other


def _weights(req: FitRequest) -> float:
    """Bytes of weights one tensor-parallel rank holds in the request's format."""
    return weight_bytes(req.model, parse_format(req.dtype), req.tp)


def _linear_bits(req: FitRequest) -> float:
    return parse_format(req.dtype).linear_bits


def _embedding_bytes(req: FitRequest) -> float:
    """The token embedding's bytes (the file's when read from one in this format)."""
    spec, fmt = req.model, parse_format(req.dtype)
    if spec.stored_bytes is not None and spec.quant == fmt.name:
        return float(spec.stored_embedding_bytes)
    return param_groups(spec).embedding * fmt.embedding_bits / 8


@dataclass(frozen=True)
class WeightSplit:
    """Weights by where an engine may place them: the token embedding, the output layer,
    each block, and the rest (final norm)."""

    embedding: float
    head: float
    layers: tuple[float, ...]
    other: float


def weight_split(req: FitRequest) -> WeightSplit:
    """The request's weights split by block (a file's own bytes when it has them)."""
    spec, fmt = req.model, parse_format(req.dtype)
    total = weight_bytes(spec, fmt, 1)
    embedding = _embedding_bytes(req)
    n = spec.layers or 0
    if spec.stored_layer_bytes and spec.quant == fmt.name:
        head = float(spec.stored_head_bytes)
        layers = tuple(float(b) for b in spec.stored_layer_bytes)
    else:
        head = param_groups(spec).head * fmt.head_bits / 8
        other = 2.0 * (spec.hidden or 0)
        layers = (max(0.0, total - embedding - head - other) / max(1, n),) * n
    return WeightSplit(embedding, head, layers, max(0.0, total - embedding - head - sum(layers)))


@dataclass(frozen=True)
class _States:
    """Bytes per GPU of one way to run a model, before ZeRO shards them."""

    weights: float
    activations: float
    act_peak: float
    gradients: float = 0.0
    optimizer: float = 0.0
    step_temp: float = 0.0
    kv_cache: float = 0.0
    notes: tuple[str, ...] = ()
    host: float = 0.0  # system RAM (llama.cpp's token embedding)
    outside: float = 0.0  # vLLM: the part outside gpu_memory_utilization


def _terms(req: FitRequest) -> _Terms:
    overhead = CUDA_CONTEXT_BYTES + CUBLAS_WORKSPACE_BYTES + (NCCL_BYTES if req.gpus > 1 else 0)
    if req.mode == "infer" and req.engine == "vllm":
        overhead += VLLM_GRAPHS_BYTES
    if req.mode != "train":
        st = _inference(req)
    elif req.lora:
        st = _lora_training(req)
    else:
        st = _full_training(req)
    if req.mode == "train" and req.zero:
        st = _zero_sharded(st, req)
    notes = st.notes
    if req.gpus > 1:
        notes += (
            f"{req.gpus} GPUs: {req.dp} data-parallel x {req.tp} tensor-parallel; bytes per GPU",
        )
    return _Terms(
        st.weights,
        st.gradients,
        st.optimizer,
        st.activations,
        st.act_peak,
        st.kv_cache,
        overhead,
        st.step_temp,
        notes,
        st.host,
        st.outside,
    )


def _act_bytes(req: FitRequest) -> int:
    """Bytes of an activation: fp32 when the model runs in fp32, else 16-bit."""
    return 4 if req.dtype == "fp32" else 2


def _inference(req: FitRequest) -> _States:
    weights = _weights(req)
    acts, kv = _infer_activations(req, _act_bytes(req))
    notes: tuple[str, ...] = ()
    if _linear_bits(req) < 16 and req.model.is_transformer and req.engine != "llama.cpp":
        kv_dtype = req.effective_kv_dtype
        notes = (f"KV cache in {kv_dtype}, activations in 16-bit (weights only are quantized)",)
    host = 0.0
    if req.engine == "llama.cpp" and req.model.is_transformer:
        # llama.cpp keeps the token embedding in system RAM (a row lookup per token)
        host = _embedding_bytes(req)
        weights -= host
    outside = CUDA_CONTEXT_BYTES + VLLM_GRAPHS_BYTES if req.engine == "vllm" else 0.0
    return _States(weights, acts, acts, kv_cache=kv, notes=notes, host=host, outside=outside)


def _lora_training(req: FitRequest) -> _States:
    """Adapters trained in fp32 on a frozen base (QLoRA: a quantized one)."""
    spec = req.model
    rank = req.lora_rank or 0
    count = lora_params(spec, rank, req.lora_targets)
    trainable = count / req.tp
    base = _weights(req)
    kind = "QLoRA" if req.quantized_base else "LoRA"
    regime = Regime(
        a=_act_bytes(req),
        amp=False,
        full=False,
        lora_roles=frozenset(x.role for x in iter_lora_targets(spec, req.lora_targets)),
        lora_rank=rank,
        base_saves=req.quantized_base,
    )
    acts, peak = _train_activations(req, regime)
    return _States(
        weights=base / (req.dp if req.zero == 3 else 1) + 4 * trainable,  # fp32 adapters
        activations=acts,
        act_peak=peak,
        gradients=4 * trainable,
        optimizer=OPTIMIZER_STATE_BYTES[req.optimizer] * trainable,
        step_temp=STEP_TEMP_BYTES[req.optimizer] * trainable,
        notes=(
            f"{kind} rank {rank} on {req.lora_targets} linears: {count:,} trainable "
            f"parameters (fp32 adapters) on a frozen {req.dtype} base",
        ),
    )


def _full_training(req: FitRequest) -> _States:
    """Every weight trained: in fp32, or mixed precision with fp32 masters."""
    per_gpu_params = _sharded(param_groups(req.model), req.tp)
    amp = req.dtype != "fp32"
    notes: tuple[str, ...] = ()
    if amp:
        per_param = 2 + 2 + 4 + OPTIMIZER_STATE_BYTES[req.optimizer]
        notes += (
            f"mixed precision: {req.dtype} compute, fp32 master weights: {per_param} bytes "
            f"per parameter with {req.optimizer} before sharding (weights, gradients, "
            "masters, optimizer states)",
        )
    if req.dtype == "fp8":
        notes += ("fp8 training keeps high-precision masters: no saving on model states",)
    acts, peak = _train_activations(req, Regime(a=_act_bytes(req), amp=amp, full=True))
    return _States(
        weights=(2 if amp else 4) * per_gpu_params,  # 16-bit working weights, or fp32
        activations=acts,
        act_peak=peak,
        gradients=(2 if amp else 4) * per_gpu_params,
        optimizer=(OPTIMIZER_STATE_BYTES[req.optimizer] + (4 if amp else 0)) * per_gpu_params,
        step_temp=STEP_TEMP_BYTES[req.optimizer] * per_gpu_params,
        notes=notes,
    )


def _zero_sharded(st: _States, req: FitRequest) -> _States:
    """ZeRO stage 1 shards the optimizer, 2 also the gradients, 3 also the weights
    (LoRA's frozen base is sharded where it is counted)."""
    dp = req.dp
    weights, gradients, notes = st.weights, st.gradients, st.notes
    if req.zero >= 2:
        gradients /= dp
    if req.zero >= 3 and not req.lora:
        weights = weights / dp + 2 * 2 * _largest_layer(req.model) / req.tp
        notes += ("ZeRO-3/FSDP: two layers' weights gathered at a time (prefetch)",)
    if dp == 1:
        notes += ("ZeRO over one data-parallel rank shards nothing",)
    return dataclasses.replace(
        st,
        weights=weights,
        gradients=gradients,
        optimizer=st.optimizer / dp,
        step_temp=st.step_temp / dp,
        notes=notes,
    )


def _largest_layer(spec: ModelSpec) -> float:
    if spec.is_transformer:
        return float(sum(x.fan_in * x.fan_out * x.copies for x in block_linears(spec)))
    return float(param_groups(spec).linear)


def _train_activations(req: FitRequest, g: Regime) -> tuple[float, float]:
    """(activations kept at the start of the backward pass, the largest activations
    plus gradients made so far, relative to the model states counted apart)."""
    spec = req.model
    b = req.batch_size
    if spec.family == "cnn":
        image = req.effective_image_size or 224
        kept = b * resnet_train_bytes(spec, image, g.a, g.amp)
        # Each parameter's gradient appears as its 16-bit copy goes: +2 bytes under
        # autocast, +4 in fp32 (LoRA does not apply to CNNs).
        return kept, resnet_train_peak(spec, image, g.a, g.amp, b, 2 if g.amp else 4)
    if spec.family == "mlp":
        kept = b * mlp_train_bytes(spec, g.a)
        return kept, kept
    return _transformer_train_activations(req, g)


def _transformer_train_activations(req: FitRequest, g: Regime) -> tuple[float, float]:
    spec = req.model
    s = req.effective_seq_len or 1
    tokens = req.batch_size * s
    layers = spec.layers or 0
    per_layer = tokens * layer_train_bytes(spec, g, s, req.flash_attention, req.tp)
    extra = _outside_blocks(req, g, tokens)
    spike = 0.0
    if spec.head in ("lm", "mlm") and spec.vocab:
        spike = logits_spike(tokens, spec.vocab, req.tp)
    if not req.checkpointing:
        kept = layers * per_layer + extra + spike
        return kept, kept
    # Each block keeps only its input; the loss's spike passes before the backward pass
    # recomputes one block at a time. Under autocast the blocks' 16-bit weight copies are
    # not kept either (the checkpoint drops them with the block's tensors).
    inputs = layers * tokens * g.r * (spec.hidden or 0) + extra
    kept = inputs + max(spike, per_layer)
    copies = 2 * layers * sum(x.fan_in * x.fan_out * x.copies for x in block_linears(spec))
    return kept, kept - (copies / req.tp if g.amp and g.full else 0.0)


def _outside_blocks(req: FitRequest, g: Regime, tokens: int) -> float:
    """Bytes kept outside the blocks: the final norm and what reads it, the token ids,
    and a ViT's image."""
    spec = req.model
    extra = tokens * model_extra_train_bytes(spec, g)
    if spec.family == "vit":  # the image, its 16-bit copy, the patch projection's output
        image = spec.image_size or 224
        extra += req.batch_size * (4 + (2 if g.amp else 0)) * spec.channels * image * image
    return extra


def _infer_activations(req: FitRequest, a: int) -> tuple[float, float]:
    """(working set of the forward, KV cache) for inference."""
    spec = req.model
    b = req.batch_size
    if spec.family == "cnn":
        return b * resnet_infer_bytes(spec, req.effective_image_size or 224, a), 0.0
    if spec.family == "mlp":
        return b * mlp_infer_bytes(spec, a), 0.0
    s = req.effective_seq_len or 1
    per_token = layer_infer_bytes(spec, a, req.tp) + 8
    if spec.family not in ("decoder", "moe-decoder"):
        work = b * s * per_token  # encoders and ViTs run the whole batch at once
        if spec.head == "mlm" and spec.vocab:  # logits at every position, after the blocks
            work = max(work, b * s * (spec.vocab * a / req.tp + 2 * a * (spec.hidden or 0)))
        return work, 0.0
    kv = kv_elements(spec, s, req.tp) * b * KV_BYTES[req.effective_kv_dtype]
    return _decoder_work(req, a, s, per_token), kv


def _decoder_work(req: FitRequest, a: int, s: int, per_token: float) -> float:
    """A decoder's forward working set as the request's engine runs it."""
    spec, b = req.model, req.batch_size
    vocab = spec.vocab or 0
    if req.engine == "llama.cpp":
        buf = llamacpp_compute_buffer(
            hidden=spec.hidden or 0,
            intermediate=_ffn_width(spec),
            heads=spec.heads or 0,
            vocab=vocab,
            context=s,
            flash=req.flash_attention,
        )
        return buf.total
    if req.engine == "vllm":
        # the profiling forward over a full chunk, and the sampler's dummy run
        chunk = req.prefill_chunk or VLLM_CHUNK_SMALL
        return chunk * per_token + VLLM_SAMPLER_BYTES * VLLM_MAX_SEQS * vocab / req.tp
    rows = max(1, min(b, PREFILL_TOKENS // s))  # whole sequences per prefill step
    work = rows * s * per_token + b * vocab * (a + 4)  # last-position logits
    if not req.flash_attention:  # eager attention keeps fp32 scores of every head
        work += rows * s * s * (spec.heads or 0) * (4 + a) / req.tp
    return work


def _ffn_width(spec: ModelSpec) -> int:
    """The widest feed-forward a token passes through (a routed expert's, or dense)."""
    k = spec.experts_per_token or 1
    routed = (spec.moe_intermediate or spec.intermediate or 0) * k if spec.experts else 0
    return max(spec.intermediate or 0, routed + spec.shared_intermediate)


def _lever(dominant: str, req: FitRequest) -> str:
    if dominant == "weights":
        return _weights_lever(req)
    if dominant == "optimizer":
        if req.optimizer == "adam8bit":
            return "--zero 1 shards the optimizer over --gpus N, or train LoRA adapters"
        return "--optimizer adam8bit (2 instead of 8 bytes/param), --zero 1 over --gpus N, or LoRA"
    if dominant == "gradients":
        return "--zero 2 shards gradients over --gpus N; LoRA trains only small adapters"
    if dominant == "activations":
        if req.mode == "train" and not req.checkpointing and req.model.is_transformer:
            return (
                "--checkpointing keeps one tensor per layer and recomputes the rest (~30% slower)"
            )
        return "a smaller --batch-size (or --seq-len): activations grow linearly with both"
    if dominant == "kv_cache":
        return _kv_lever(req)
    return "the CUDA context is a fixed cost: this job is small for any GPU"


def _weights_lever(req: FitRequest) -> str:
    """What shrinks the weights from where the request already is."""
    bits = _linear_bits(req)
    if req.mode == "train" and not req.lora:
        return "LoRA adapters on a frozen base (--lora-rank 16; --dtype nf4 makes it QLoRA)"
    if req.mode == "train":
        if bits > 5:
            return "--dtype nf4 makes it QLoRA (a 4-bit base); or --tp N over several GPUs"
        return "shard the weights over several GPUs (--gpus N with --zero 3, or --tp N)"
    if bits > 9:
        return "quantize the weights: --dtype int8 halves them, --dtype awq or q4_k_m quarters them"
    if bits > 5:
        return "--dtype awq (4-bit) or q4_k_m halves them again; or --tp N over several GPUs"
    if req.engine == "llama.cpp":
        return "fewer layers on the GPU (--gpu-layers N): the rest run from system RAM, slower"
    return (
        f"split them over more GPUs (--tp {2 * req.tp}), or --engine llama.cpp to keep "
        "some layers in system RAM"
    )


def _kv_lever(req: FitRequest) -> str:
    kv = req.effective_kv_dtype
    if kv in ("fp32", "bf16", "fp16"):
        smaller = "--kv-dtype q8_0" if req.engine == "llama.cpp" else "--kv-dtype fp8 (vLLM)"
        return f"a shorter --seq-len or smaller --batch-size; {smaller} halves the KV cache"
    if kv in ("fp8", "q8_0") and req.engine == "llama.cpp":
        return "a shorter --seq-len or smaller --batch-size; --kv-dtype q4_0 halves it again"
    return "a shorter --seq-len or smaller --batch-size: the KV cache grows with both"


# -- what every answer says it assumed, and what it warns about ---------------------


def assumptions(req: FitRequest) -> str:
    """The engine, attention kernel, prefill chunk and KV format in one line."""
    spec = req.model
    if req.mode == "train":
        parts = ["PyTorch training", _attention_kernel(req)]
        if req.lora and req.checkpointing:
            parts.append("checkpointing on (PEFT's LoRA recipes' default)")
        return "assumes: " + ", ".join(parts)
    if not spec.is_transformer or spec.family not in ("decoder", "moe-decoder"):
        return "assumes: PyTorch inference, the whole batch in one forward"
    kv = req.effective_kv_dtype
    if req.engine == "vllm":
        chunk = req.prefill_chunk or VLLM_CHUNK_SMALL
        return (
            f"assumes: vLLM, gpu_memory_utilization {req.gpu_memory_utilization:.2f} (the rest "
            f"of that budget becomes KV cache), FlashAttention, prefill in chunks of {chunk:,} "
            f"tokens, KV cache {kv}, CUDA graphs ~{VLLM_GRAPHS_BYTES / MIB:.0f} MiB outside "
            "the budget"
        )
    if req.engine == "llama.cpp":
        fa = "flash attention" if req.flash_attention else "no flash attention (-fa off)"
        return (
            f"assumes: llama.cpp (as Ollama runs it), {fa}, micro-batch {LLAMACPP_UBATCH}, "
            f"KV cache {kv} for the whole {req.effective_seq_len:,}-token context, token "
            "embedding in system RAM"
        )
    return (
        f"assumes: transformers, {_attention_kernel(req)}, the whole prompt prefilled at "
        f"once, KV cache {kv}"
    )


def _attention_kernel(req: FitRequest) -> str:
    if req.flash_attention:
        return "SDPA attention (FlashAttention / memory-efficient: no scores kept)"
    return "eager attention (every head's scores kept)"


def _warnings(req: FitRequest) -> tuple[str, ...]:
    spec = req.model
    out = list(spec.warnings)
    limit = spec.max_seq_len
    if req.seq_len and limit and req.seq_len > limit and not spec.positions:
        out.append(
            f"--seq-len {req.seq_len:,} is longer than {spec.name}'s {limit:,}-token context: "
            "past it the model was not trained (RoPE scaling changes that)"
        )
    return tuple(out)
