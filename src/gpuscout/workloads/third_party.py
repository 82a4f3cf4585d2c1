"""Optional comparisons: the programs people actually run, beside our two versions.

- mlp: the TensorFlow/Keras beginner tutorial as written (Keras 3 ``Sequential`` and
  ``fit``, default batch 32), on the same data.
- llm: Hugging Face ``LlamaForCausalLM.generate`` on a model built from a config with
  random weights (never downloaded), greedy, the same shape, prompt and length.

Each needs its package; ``available(name)`` says whether it is importable, without
importing it, so the suite can record a clean "skipped".
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any

from gpuscout.workloads.base import WorkloadConfig, amp_dtype, dtype_name
from gpuscout.workloads.registry import COMPARISONS as COMPARE_PACKAGES


def available(workload: str) -> str | None:
    """None when the comparison can run, else why not."""
    package = COMPARE_PACKAGES.get(workload)
    if package is None:
        return f"no comparison program for {workload}"
    if importlib.util.find_spec(package) is None:
        return f"{package} is not installed (pip install {package})"
    return None


def _keras_env(cfg: WorkloadConfig) -> None:
    # Keras picks its backend and torch its GPUs at import: decide before importing.
    if "KERAS_BACKEND" not in os.environ:
        for backend, module in (("tensorflow", "tensorflow"), ("jax", "jax"), ("torch", "torch")):
            if importlib.util.find_spec(module) is not None:
                os.environ["KERAS_BACKEND"] = backend
                break
    os.environ["CUDA_VISIBLE_DEVICES"] = cfg.device.split(":")[1] if cfg.on_gpu else ""


def keras_mlp(cfg: WorkloadConfig) -> list[dict[str, Any]]:
    _keras_env(cfg)
    # Imported by name: both are optional and untyped here.
    keras = importlib.import_module("keras")
    np = importlib.import_module("numpy")

    from gpuscout.workloads.mlp import BATCH, EPOCHS, load

    ds = load(cfg)

    def arrays(split: Any) -> tuple[Any, Any]:
        x = np.frombuffer(split.images, dtype=np.uint8).reshape(split.count, 28, 28)
        return x / 255.0, np.frombuffer(split.labels, dtype=np.uint8).astype("int64")

    (x, y), (xt, yt) = arrays(ds.train), arrays(ds.test)
    keras.utils.set_random_seed(cfg.seed)
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    epochs, batch = cfg.epochs or EPOCHS, cfg.batch_size or BATCH
    t0 = time.perf_counter()
    history = model.fit(x, y, epochs=epochs, batch_size=batch)  # verbose as in the tutorial
    elapsed = time.perf_counter() - t0
    _, accuracy = model.evaluate(xt, yt, verbose=0)
    samples = ds.train.count * epochs
    extra = {
        "time_s": elapsed,
        "epochs": epochs,
        "batch_size": batch,
        "accuracy": float(accuracy),
        "loss": float(history.history["loss"][-1]),
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "synthetic_data": ds.synthetic,
        "data_source": ds.source,
    }
    return [{"variant": None, "figure": samples / elapsed, "unit": "samples/s", "extra": extra}]


def hf_generate(cfg: WorkloadConfig) -> list[dict[str, Any]]:
    import torch

    transformers = importlib.import_module("transformers")

    from gpuscout.workloads.llama import check_model
    from gpuscout.workloads.llm import settings

    s = settings(cfg)
    shape = check_model(s["model"])
    device = torch.device(cfg.device)
    dtype = amp_dtype(cfg.replace(impl="tuned")) or torch.float32
    config = transformers.LlamaConfig(
        vocab_size=shape.vocab,
        hidden_size=shape.dim,
        intermediate_size=shape.ffn,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        rope_theta=shape.rope_theta,
        rms_norm_eps=shape.norm_eps,
        tie_word_embeddings=shape.tie_embeddings,
        max_position_embeddings=s["prompt"] + s["new"],
    )
    torch.manual_seed(cfg.seed)
    with torch.device(device):
        model = transformers.LlamaForCausalLM(config).to(dtype).eval()
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    prompt = torch.randint(0, shape.vocab, (1, s["prompt"]), generator=gen).to(device)

    def timed(n: int) -> float:
        kw = {"max_new_tokens": n, "min_new_tokens": n, "do_sample": False}
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            model.generate(prompt, attention_mask=torch.ones_like(prompt), **kw)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    timed(s["new"])  # warm-up
    first = min(timed(1) for _ in range(s["reps"]))  # prefill + one token: the TTFT
    total = min(timed(s["new"]) for _ in range(s["reps"]))
    step_s = max(total - first, 1e-9) / (s["new"] - 1)
    extra = {
        "model": s["model"],
        "batch_size": 1,
        "prompt_len": s["prompt"],
        "new_tokens": s["new"],
        "ttft_s": first,
        "ms_per_token": step_s * 1e3,
        "dtype": dtype_name(None if dtype == torch.float32 else dtype),
        "transformers_version": transformers.__version__,
        "synthetic_data": True,
    }
    return [{"variant": "decode-b1", "figure": 1 / step_s, "unit": "tokens/s", "extra": extra}]


def run(cfg: WorkloadConfig) -> list[dict[str, Any]]:
    if cfg.name == "mlp":
        return keras_mlp(cfg)
    if cfg.name == "llm":
        return hf_generate(cfg)
    raise ValueError(f"no comparison program for {cfg.name}")
