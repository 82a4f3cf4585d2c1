"""A step for a model nobody measured (``gpuscout advise --model M --train|--infer``).

FLOPs by the usual rule, bytes from ``gpuscout.fit``'s memory terms:

    training, per GPU step of one sequence of S tokens with activation checkpointing
    (how large models are fine-tuned: without it an 8B model's activations alone at
    4,096 tokens outgrow an 80 GB GPU):
        FLOPs  = 8 x params x S                     (forward 2, backward 4, Kaplan et
                                                     al.; +2 for the recomputed forward)
        bytes  = 2 x weights + gradients + 2 x optimizer (read and written)
                 + 2 x activations (written in forward, read in backward)
    inference, one decode step (a token for each of B sequences):
        FLOPs  = 2 x params x B
        bytes  = weights + the KV cache at the full context (each read once)

Kernel launches: ~50 ATen ops per transformer layer in a forward (counted on the
gpuscout Llama decoder: 1,677 ops for 32 layers), x3 with the backward, plus a foreach
optimizer. Only transformer families: a CNN's FLOPs are not 6 x params x tokens, so
those are measured instead, by the workload that builds the model (its record lists it).
"""

from __future__ import annotations

from typing import Any

from gpuscout.errors import UsageError
from gpuscout.predict import facts
from gpuscout.predict.basis import Basis

OPS_PER_LAYER = 50
OPTIMIZER_OPS = 11  # foreach AdamW: one multi-tensor kernel per ATen op of the update
DEFAULT_SEQ = 2048


def default_request(name: str, mode: str) -> Any:
    """The request for a model asked about with no regime: one sequence of its default
    length in its usual float format, training with activation checkpointing (how large
    models are fine-tuned)."""
    from gpuscout.fit import FitRequest, load_model

    spec = load_model(name)
    seq = spec.tokens_per_sample or spec.default_seq_len or DEFAULT_SEQ
    dtype = spec.default_dtype if spec.default_dtype in ("fp32", "bf16", "fp16") else "bf16"
    train = mode == "train"
    return FitRequest(
        model=spec, mode=mode, batch_size=1, seq_len=seq, dtype=dtype, checkpointing=train
    )


def model_basis(req: Any) -> tuple[Basis, Any]:
    """(Basis, ModelSpec) for the fit request ``req`` (a gpuscout.fit.FitRequest): the
    same model, format, LoRA, checkpointing, sequence and batch `gpuscout fit` reads."""
    from gpuscout.fit import estimate
    from gpuscout.fit.request import check_request

    req = check_request(req)
    spec = req.model
    if not spec.is_transformer:
        raise UsageError(
            f"{spec.id} is a {spec.family}: its FLOPs are not 6 x params x tokens",
            f"measure it: gpuscout bench workload {facts.builder_of(spec.id) or 'NAME'}"
            ", then gpuscout advise --workload NAME",
        )
    mode, train = req.mode, req.mode == "train"
    seq = req.effective_seq_len or DEFAULT_SEQ
    batch = req.batch_size
    dtype = req.dtype
    est = estimate(req)
    layers = spec.layers or 1
    # training: forward 2, backward 4 (2 when LoRA leaves the base's weight gradients
    # out), +2 for the forward checkpointing recomputes; a decode step: forward 2
    per_token = 2 + (2 if req.lora else 4) + (2 if req.checkpointing else 0) if train else 2
    if train:
        flops = float(per_token) * spec.params * batch * seq
        nbytes = (
            2 * est.weights_bytes
            + est.gradients_bytes
            + 2 * est.optimizer_bytes
            + 2 * est.activations_bytes
        )
        ops = 3 * OPS_PER_LAYER * layers + OPTIMIZER_OPS
        per_step, unit, family = batch * seq, "tokens/s", "train"
    else:
        flops = float(per_token) * spec.params * batch
        nbytes = est.weights_bytes + est.kv_cache_bytes
        ops = OPS_PER_LAYER * layers
        per_step, unit, family = batch, "tokens/s", "decode"
    basis = Basis(
        result_name=f"model/{spec.id}/{mode}",
        workload=facts.UNMEASURED,
        impl="tuned",
        variant=mode,
        device="none",
        device_name="not measured",
        step_s=float("nan"),
        samples_per_step=float(per_step),
        unit=unit,
        flops=flops,
        nbytes=float(nbytes),
        host_ops=float(ops),
        precision=dtype if dtype in ("fp32", "bf16", "fp16") else "bf16",
        dtype=dtype,
        family=family,
        batch_size=batch,
        seq_len=seq,
        model=spec.id,
        params=spec.params,
        checkpointing=req.checkpointing,
        compiled=not train,  # served compiled, as gpt-fast and vLLM serve it
        fit_request=req,
        notes=(
            f"{spec.name} not measured: {per_token} x params FLOPs per token"
            + (f" ({_regime(req)}, {batch} x {seq} tokens per GPU step)" if train else "")
            + ", bytes from gpuscout fit's memory terms",
        ),
    )
    return basis, spec


def _regime(req: Any) -> str:
    words = []
    if req.lora:
        words.append(f"{'QLoRA' if req.quantized_base else 'LoRA'} rank {req.lora_rank}")
    words.append(req.dtype)
    if req.checkpointing:
        words.append("activation checkpointing")
    return ", ".join(words)
