"""What an inference engine does to memory, beyond the model's own bytes.

Three engines, the ones people serve and run models with:

- ``transformers`` (PyTorch eager): the KV cache grows with the context; the whole prompt
  is prefilled in one forward; attention through SDPA (FlashAttention or memory-efficient
  kernels: no sequence x sequence scores) unless ``eager`` is asked for.
- ``vllm``: takes ``gpu_memory_utilization`` (0.9) of the GPU's *total* memory up front
  and turns whatever weights, the profiled activation peak and non-torch memory leave
  into KV-cache blocks; it refuses to start when the context does not fit in them.
  Prefill runs in chunks of ``max_num_batched_tokens``; CUDA graphs are captured after
  the KV cache is allocated, in the memory left outside the budget.
- ``llama.cpp`` (and Ollama, which runs it): allocates the KV cache for the whole
  context up front (f16 unless ``-ctk/-ctv``), keeps the token embedding in system RAM,
  runs a compute buffer sized by the micro-batch and the context, and can put only some
  layers on the GPU (``-ngl``): the rest run from system RAM.

Sources (each constant cites its own): vLLM's ``EngineArgs.get_batch_defaults`` and
``gpu_worker.determine_available_memory``; llama.cpp's ``common/common.h`` and
``src/llama-model.cpp``; Ollama's ``envconfig``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Final

from gpuscout.errors import UnknownNameError

ENGINES: Final = ("transformers", "vllm", "llama.cpp")
_ALIASES: Final = {
    "ollama": "llama.cpp",
    "llamacpp": "llama.cpp",
    "llama-cpp": "llama.cpp",
    "llama_cpp": "llama.cpp",
    "hf": "transformers",
    "pytorch": "transformers",
    "torch": "transformers",
}
MIB: Final = 1024**2
GIB: Final = 1024**3

# vLLM: the share of total GPU memory it claims (--gpu-memory-utilization, default 0.9).
VLLM_UTILIZATION: Final = 0.9
# vLLM's max_num_batched_tokens for `vllm serve` (EngineArgs.get_batch_defaults,
# vllm/engine/arg_utils.py): 8192 on GPUs of 70 GiB or more other than the A100, 2048
# on the rest. The profiling forward runs this many tokens: its activation peak is
# taken out of the budget before the KV cache.
VLLM_CHUNK_SMALL: Final = 2048
VLLM_CHUNK_LARGE: Final = 8192
VLLM_LARGE_GPU_BYTES: Final = 70 * GIB
# ... and the sampler's dummy run over max_num_seqs (256) sequences: fp32 logits,
# probabilities and log-probabilities, 12 bytes per vocabulary entry. Checked against
# vLLM's own "PyTorch activation peak memory" lines for Llama 3 8B (1.26 GiB at 8,192
# tokens on an H100, vllm PR #10511; 2.07 and 2.99 GiB at 20,000 and 29,000 tokens on
# an RTX 3090, vllm#10517): within 10% (docs/fit-validation.md).
VLLM_MAX_SEQS: Final = 256
VLLM_SAMPLER_BYTES: Final = 12
# CUDA graphs for decode batch sizes: captured after the KV cache is allocated, outside
# the utilization budget; vLLM's logs report 0.3-1.5 GiB ("Graph capturing finished in
# N secs, took X GiB"), larger for bigger models and more batch sizes.
VLLM_GRAPHS_BYTES: Final = 512 * MIB

# llama.cpp: n_ubatch (the physical batch of a prefill step) and Ollama's default
# context (num_ctx 4096); llama.cpp's own default became "the model's trained context"
# (n_ctx = 0) in 2025, which rarely fits a small GPU, so the answer searches instead.
LLAMACPP_UBATCH: Final = 512
LLAMACPP_DEFAULT_CONTEXT: Final = 4096


def parse_engine(name: str) -> str:
    """The canonical engine name; UnknownNameError with close matches."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ENGINES:
        exc = UnknownNameError("engine", name, difflib.get_close_matches(key, ENGINES, n=2))
        exc.hint = exc.hint or f"use one of {', '.join(ENGINES)} (ollama = llama.cpp)"
        raise exc
    return key


def default_kv_dtype(engine: str, dtype: str) -> str:
    """The KV cache's format when none is asked for: llama.cpp's f16; the compute dtype
    (bf16, fp16, or fp32 for an fp32 model) elsewhere, 16-bit for quantized weights."""
    if engine == "llama.cpp":
        return "fp16"
    return dtype if dtype in ("fp32", "bf16", "fp16") else "bf16"


# KV-cache formats each engine offers: vLLM's --kv-cache-dtype (auto, fp8); llama.cpp's
# -ctk/-ctv (f16, q8_0, q4_0, ...); transformers' default DynamicCache keeps the
# compute dtype.
KV_DTYPES_BY_ENGINE: Final = {
    "transformers": ("fp32", "bf16", "fp16"),
    "vllm": ("fp32", "bf16", "fp16", "fp8"),
    "llama.cpp": ("fp32", "fp16", "bf16", "q8_0", "q4_0"),
}


def vllm_chunk(memory_bytes: int | None, gpu_name: str = "") -> int:
    """vLLM serve's default max_num_batched_tokens for a GPU of ``memory_bytes``."""
    large = (memory_bytes or 0) >= VLLM_LARGE_GPU_BYTES and "a100" not in gpu_name.lower()
    return VLLM_CHUNK_LARGE if large else VLLM_CHUNK_SMALL


@dataclass(frozen=True)
class ComputeBuffer:
    """llama.cpp's compute buffer: the largest set of intermediate tensors alive at once
    in one micro-batch's graph (its allocator reuses memory between nodes)."""

    logits: float  # the output layer's f32 logits for the micro-batch
    attention: float  # f32 KQ scores over the whole context (none with flash attention)
    ffn: float  # the feed-forward's f32 intermediates

    @property
    def total(self) -> float:
        return max(self.logits, self.attention + self.ffn)


def llamacpp_compute_buffer(
    *, hidden: int, intermediate: int, heads: int, vocab: int, context: int, flash: bool
) -> ComputeBuffer:
    """Bytes of llama.cpp's GPU compute buffer at ``context`` with its 512-token
    micro-batch. Its graph allocator keeps the logits apart in time from the attention
    and the feed-forward, so the buffer is the larger of the two phases."""
    ub = min(LLAMACPP_UBATCH, max(1, context))
    logits = 4.0 * ub * (vocab + hidden)
    attention = 0.0 if flash else 4.0 * ub * context * heads
    ffn = 4.0 * ub * (3 * intermediate + 2 * hidden)
    return ComputeBuffer(logits, attention, ffn)
