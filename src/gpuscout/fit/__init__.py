"""Will it fit? Memory for training and inference, by arithmetic alone (no torch).

    >>> from gpuscout.fit import FitRequest, estimate, load_model
    >>> est = estimate(FitRequest(load_model("llama-3-8b"), mode="infer", seq_len=8192))
    >>> est.weights_bytes, est.kv_cache_bytes
    (16060522496, 1073741824)

Model shapes come from models.toml (package data, each row with its source), a Hugging
Face config.json (a file, a folder with safetensors, a repo id in the local Hugging Face
cache) or a GGUF file (``load_model`` reads each); ``estimate`` counts every term per
GPU (weights, gradients, optimizer states, activations with the logits spike, KV cache,
CUDA context) and
``fit_on`` / ``fit_across`` compare them with catalog GPUs. ``search.find_max_batch``
is the doubling-then-bisecting search that ``gpuscout fit --measure`` runs on a real GPU.
"""

from __future__ import annotations

from gpuscout.fit.estimate import CUDA_CONTEXT_BYTES, estimate
from gpuscout.fit.files import load_source as load_model
from gpuscout.fit.models import (
    list_models,
    parse_hf_config,
    parse_models,
    read_hf_config,
)
from gpuscout.fit.on_gpu import DEFAULT_GPUS, GpuFit, default_gpus, fit_across, fit_on, need_bytes
from gpuscout.fit.request import DTYPES, MODES, OPTIMIZERS, FitRequest, MemoryEstimate
from gpuscout.fit.search import Outcome, SearchResult, find_max_batch
from gpuscout.fit.spec import ModelSpec, count_params, lora_params, param_groups

__all__ = [
    "CUDA_CONTEXT_BYTES",
    "DEFAULT_GPUS",
    "DTYPES",
    "MODES",
    "OPTIMIZERS",
    "FitRequest",
    "GpuFit",
    "MemoryEstimate",
    "ModelSpec",
    "Outcome",
    "SearchResult",
    "count_params",
    "default_gpus",
    "estimate",
    "find_max_batch",
    "fit_across",
    "fit_on",
    "list_models",
    "load_model",
    "lora_params",
    "need_bytes",
    "param_groups",
    "parse_hf_config",
    "parse_models",
    "read_hf_config",
]
