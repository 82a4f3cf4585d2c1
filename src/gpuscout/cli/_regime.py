"""The options that say how a model is trained or run, declared once: `gpuscout fit`
and `gpuscout advise --model` take the same ones, so the two ask fit the same question
(jobs.FitOptions carries them)."""

from __future__ import annotations

from typing import Any

import typer

BatchOpt: Any = typer.Option(
    None, "--batch-size", help="Per GPU (default: 1, or the workload's own)."
)
SeqLenOpt: Any = typer.Option(
    None, "--seq-len", help="Tokens per sample (default: the model's; infer: the context)."
)
DtypeOpt: Any = typer.Option(
    None,
    "--dtype",
    help="Weights' format: fp32, bf16, fp16, fp8, int8, nf4, awq, gptq, q4_k_m, q8_0, "
    "exl2-4.65, ... (default: the model's).",
)
OptimizerOpt: Any = typer.Option(
    "adamw", "--optimizer", help="sgd, sgd-momentum, adam, adamw, adam8bit."
)
LoraRankOpt: Any = typer.Option(
    None, "--lora-rank", help="Train LoRA adapters of this rank (QLoRA with a quantized --dtype)."
)
LoraTargetsOpt: Any = typer.Option(
    "attention", "--lora-targets", help="attention (q, k, v, o) or all (every linear)."
)
CheckpointingOpt: Any = typer.Option(
    None,
    "--checkpointing/--no-checkpointing",
    help="Activation (gradient) checkpointing per layer (default: on with LoRA, as PEFT).",
    show_default=False,
)
TpOpt: Any = typer.Option(1, "--tp", help="Tensor-parallel degree (--tp 2 alone: 2 GPUs).")
EngineOpt: Any = typer.Option(
    None,
    "--engine",
    help="Inference engine: transformers, vllm or llama.cpp (= ollama). Default: "
    "llama.cpp for GGUF, else transformers.",
    show_default=False,
)
KvDtypeOpt: Any = typer.Option(
    None,
    "--kv-dtype",
    help="KV cache format: bf16, fp16, fp8 (vLLM), q8_0, q4_0 (llama.cpp). Default: the engine's.",
    show_default=False,
)
