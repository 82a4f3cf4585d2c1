"""Llama-shaped text generation with random weights: prefill tokens/s, time to first
token, decode tokens/s at batch 1 and at a larger batch, and "bandwidth achieved".

Decoding one token must read every weight once, so at batch 1 its speed is bounded by
memory bandwidth: weight bytes x tokens/s, as a share of the device's bandwidth, says
how close a program gets (gpt-fast's metric; it reaches ~75-80% on an A100/H100).

- reference: the first generate loop anyone writes. Eager fp32, a KV cache grown with
  ``torch.cat`` every token, attention written out, and an end-of-sequence check that
  reads the token back to the host each step.
- tuned: a static preallocated KV cache written in place, bf16 where supported, SDPA,
  no host synchronisation while decoding, and on a GPU the decode step compiled with
  ``mode="reduce-overhead"`` (CUDA graphs), or, without a compiler, captured by hand
  in a CUDA graph that advances its own position and token.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from gpuscout._types import to_jsonable
from gpuscout.workloads.base import WorkloadConfig, amp_dtype, dtype_name, synchronize
from gpuscout.workloads.instruments import Instruments, section_extra
from gpuscout.workloads.llama import (
    LlamaShape,
    growing_cache,
    make_llama,
    static_cache,
    step_flops,
    step_traffic,
    weight_bytes,
)
from gpuscout.workloads.spec import (
    Comparison,
    DeviceSizes,
    RunFacts,
    RunSize,
    Scaling,
    Sizes,
    WorkloadSpec,
)

NEVER = -1  # the reference's end-of-sequence id: checked every step, never produced


def settings(cfg: WorkloadConfig) -> dict[str, Any]:
    sizes = WORKLOAD.sizes.pick(gpu=cfg.on_gpu, quick=cfg.quick)
    batch = cfg.batch_size or sizes.batch
    return {
        "model": cfg.model or sizes.model,
        "prompt": cfg.seq_len or sizes.length,
        "new": int(cfg.option("new_tokens", sizes.extra["new_tokens"])),
        "batches": (1, batch) if batch > 1 else (1,),
        "reps": int(cfg.option("reps", sizes.extra["reps"])),
    }


def model_shape(model: str) -> LlamaShape:
    """The shape of the llm workload's model ``model`` (a model-table row)."""
    return LlamaShape.from_spec(WORKLOAD.model_spec(model))


class Reference:
    def __init__(self, model: Any, b: int, prompt_len: int, new: int) -> None:
        self.model, self.new = model, new

    def generate(self, prompt: Any) -> tuple[Any, float, float]:
        import torch

        dev = prompt.device
        self.model.set_caches(growing_cache)
        t0 = time.perf_counter()
        with torch.no_grad():
            tok = self.model(prompt, torch.arange(prompt.shape[1], device=dev)).argmax(-1)
            synchronize(dev)
            t1 = time.perf_counter()
            out = [tok]
            for i in range(self.new - 1):
                pos = torch.tensor([prompt.shape[1] + i], device=dev)
                tok = self.model(tok, pos).argmax(-1)
                out.append(tok)
                if bool((tok == NEVER).all()):  # the tutorial's EOS check: a sync per token
                    break
            synchronize(dev)
        return torch.cat(out, 1), t1 - t0, time.perf_counter() - t1


class Tuned:
    def __init__(self, model: Any, b: int, prompt_len: int, new: int, compile: bool) -> None:
        import torch

        self.model, self.new, self.p = model, new, prompt_len
        dev = model.tok.weight.device
        dtype = model.tok.weight.dtype
        shape = model.s
        model.set_caches(lambda: static_cache(shape, b, prompt_len + new, dtype, dev))
        self.gpu = dev.type == "cuda"
        self.mode = "eager"
        self.compile_error: str | None = None
        self.compiled: Any = None
        if self.gpu and compile:
            # dynamic=False: batch 1 and then batch 8 in one process must each get static
            # kernels and their own CUDA graphs, not one dynamic-shape recompile.
            self.compiled = torch.compile(
                self._decode, mode="reduce-overhead", fullgraph=True, dynamic=False
            )
            self.mode = "compile"
        elif self.gpu:
            self.mode = "cuda_graph"
        self.graph: Any = None
        self.tok = torch.zeros(b, 1, dtype=torch.long, device=dev)
        self.pos = torch.zeros(1, dtype=torch.long, device=dev)
        self.out = torch.zeros(b, new, dtype=torch.long, device=dev)

    def _decode(self, tok: Any, pos: Any) -> Any:
        return self.model(tok, pos).argmax(-1)

    def _graph_body(self) -> None:
        """One decode step that reads and advances its own state (for CUDA graphs)."""
        nxt = self._decode(self.tok, self.pos)
        self.out.index_copy_(1, self.pos - self.p + 1, nxt)
        self.tok.copy_(nxt)
        self.pos.add_(1)

    def _capture(self) -> None:
        import torch

        stream: Any = torch.cuda.Stream  # untyped in torch's stubs
        side = stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self.pos.fill_(self.p)  # warm-up writes cache rows that decoding overwrites
                self._graph_body()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._graph_body()

    def generate(self, prompt: Any) -> tuple[Any, float, float]:
        import torch

        dev = prompt.device
        t0 = time.perf_counter()
        with torch.no_grad():
            first = self.model(prompt, torch.arange(self.p, device=dev)).argmax(-1)
            synchronize(dev)
            t1 = time.perf_counter()
            self.out[:, :1] = first
            self.tok.copy_(first)
            self.pos.fill_(self.p)
            if self.mode == "compile":
                try:
                    self._decode_compiled()
                except Exception as exc:  # no compiler here: fall back to a hand-made graph
                    self.use_hand_graph(f"{type(exc).__name__}: {str(exc)[:200]}")
                    self.tok.copy_(first)
                    self.pos.fill_(self.p)
            if self.mode == "cuda_graph":
                if self.graph is None:
                    self._capture()
                    self.tok.copy_(first)
                    self.pos.fill_(self.p)
                for _ in range(self.new - 1):
                    self.graph.replay()
            elif self.mode == "eager":
                for _ in range(self.new - 1):
                    self._graph_body()
            synchronize(dev)
        return self.out.clone(), t1 - t0, time.perf_counter() - t1

    def use_hand_graph(self, why: str) -> None:
        """Decode with the hand-captured CUDA graph from now on, saying why."""
        self.mode, self.compiled, self.compile_error = "cuda_graph", None, why

    def _decode_compiled(self) -> None:
        tok = self.tok
        for i in range(1, self.new):
            nxt = self.compiled(tok, self.pos)
            self.out[:, i : i + 1] = nxt
            tok = nxt.clone()  # the graph's output buffer is reused by its next replay
            self.pos += 1


def cudagraph_skips() -> int:
    """How many times, in this process, inductor compiled a graph it was asked to run as
    a CUDA graph (mode="reduce-overhead") and ran it without one."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # a torch without the compiler: nothing was skipped
        return 0
    return int(counters["inductor"]["cudagraph_skips"])


def build(cfg: WorkloadConfig, device: Any = None, batch: int = 1, model: Any = None) -> Any:
    """A generator (``generate(prompt) -> (tokens, prefill_s, decode_s)``) and its prompt;
    ``model`` reuses one built before (for another batch size)."""
    import torch

    s = settings(cfg)
    llama = model_shape(s["model"])
    dev = torch.device(cfg.device) if device is None else device
    if model is None:
        dtype = amp_dtype(cfg) or torch.float32
        torch.manual_seed(cfg.seed)
        model = make_llama(llama, dev, dtype, sdpa=cfg.tuned, max_len=s["prompt"] + s["new"])
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    prompt = torch.randint(0, llama.vocab, (batch, s["prompt"]), generator=gen).to(dev)
    if cfg.tuned:
        from gpuscout.workloads.base import use_compile

        return Tuned(model, batch, s["prompt"], s["new"], use_compile(cfg)), prompt
    return Reference(model, batch, s["prompt"], s["new"]), prompt


def run(cfg: WorkloadConfig, inst: Instruments) -> list[dict[str, Any]]:
    from gpuscout.timing import summarise

    s = settings(cfg)
    shape = model_shape(s["model"])
    prefill_flops, token_flops = step_flops(shape, s["prompt"], s["prompt"] + s["new"] / 2)
    counts = step_traffic(shape, s["prompt"], 4 if amp_dtype(cfg) is None else 2)
    results: list[dict[str, Any]] = []
    model = None
    for b in s["batches"]:
        gen, prompt = build(cfg, inst.device, b, model)
        model = gen.model
        compiling = getattr(gen, "mode", "") == "compile"
        skips = cudagraph_skips() if compiling else 0
        gen.generate(prompt)  # warm-up: compile, CUDA graph capture, allocator growth
        if compiling and cudagraph_skips() > skips:
            # Inductor compiled the step but declined to graph it (it logs why): every
            # kernel of every token would be launched from Python, and batch-1 decode
            # is launch-bound. The hand-made graph is the tuned program then.
            gen.use_hand_graph("torch.compile skipped CUDA graphs (see its cudagraphs log)")
            gen.generate(prompt)
        with inst.section() as sec:
            runs = [gen.generate(prompt) for _ in range(s["reps"])]
        tokens = runs[-1][0]
        steps = s["new"] - 1
        pre = summarise([r[1] for r in runs])
        dec = summarise([r[2] / steps for r in runs])
        wbytes = weight_bytes(model)
        elem = model.tok.weight.element_size()
        kv_bytes = 2 * shape.layers * b * shape.kv_heads * shape.head_dim * elem
        kv_bytes *= s["prompt"] + s["new"] / 2
        common = section_extra(sec) | {
            "model": s["model"],
            "batch_size": b,
            "prompt_len": s["prompt"],
            "new_tokens": s["new"],
            "dtype": dtype_name(amp_dtype(cfg)),
            "decode_mode": getattr(gen, "mode", "eager-growing-cache"),
            "compile": getattr(gen, "mode", "") == "compile",
            "compile_error": getattr(gen, "compile_error", None),
            "kv_cache": "static" if cfg.tuned else "growing (torch.cat)",
            "synthetic_data": True,
            "generated_digest": hashlib.sha256(str(tokens.tolist()).encode()).hexdigest()[:16],
            "params": sum(p.numel() for p in model.parameters()),
        }
        step_s = dec.median_s
        decode = common | {
            "ms_per_token": step_s * 1e3,
            "weight_bytes": wbytes,
            "kv_bytes_per_step": kv_bytes,
            "bandwidth_achieved_gbs": wbytes / step_s / 1e9,
            "bandwidth_with_kv_gbs": (wbytes + kv_bytes) / step_s / 1e9,
            "flops_per_step": token_flops * b,
            "bytes_per_step": wbytes + kv_bytes,
            # Weights and cache both in bf16 on a GPU with it (amp_dtype): the same bytes
            # at 2 per element.
            "bytes_per_step_bf16": (wbytes + kv_bytes) * 2 // elem,
            "host_ops_per_step": counts["decode_ops"],
            "achieved_tflops": token_flops * b / step_s / 1e12,
        }
        results.append(
            {
                "variant": f"decode-b{b}",
                "figure": b / step_s,
                "unit": "tokens/s",
                "stats": to_jsonable(dec),
                "extra": decode,
            }
        )
        if b == 1:
            prefill = common | {
                "flops_per_step": prefill_flops,
                "bytes_per_step": counts["prefill_bytes"],
                "bytes_per_step_bf16": counts["prefill_bytes"] * 2 // elem,
                "host_ops_per_step": counts["prefill_ops"],
                "achieved_tflops": prefill_flops / pre.median_s / 1e12,
                "ttft_s": pre.median_s,
            }
            results.append(
                {
                    "variant": "prefill",
                    "figure": s["prompt"] / pre.median_s,
                    "unit": "tokens/s",
                    "stats": to_jsonable(pre),
                    "extra": prefill,
                }
            )
            results.append(
                {
                    "variant": "ttft",
                    "figure": pre.median_s,
                    "unit": "s",
                    "stats": to_jsonable(pre),
                    "extra": prefill,
                }
            )
        del gen  # its KV cache; the model is reused for the next batch size
    return results


# -- the comparison (--compare): Hugging Face generate, as people run it -------------------


def hf_generate(cfg: WorkloadConfig) -> list[dict[str, Any]]:
    """Hugging Face ``LlamaForCausalLM.generate`` on a model built from a config with
    random weights (never downloaded), greedy, the same shape, prompt and length."""
    import importlib

    import torch

    transformers = importlib.import_module("transformers")  # optional and untyped here

    s = settings(cfg)
    shape = model_shape(s["model"])
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


def describe(b: RunFacts) -> str:
    return f"llm ({b.model or 'Llama'} generation, batch {b.batch_size or 1})"


WORKLOAD = WorkloadSpec(
    name="llm",
    task="infer",
    description="Llama-shaped decoder (random weights): prefill, TTFT, decode tokens/s",
    unit="tokens/s",
    run_size=RunSize(1_000_000, "generating 1,000,000 tokens"),
    models={n: n for n in ("llama-tiny", "llama-125m", "llama-1.1b", "llama-3b", "llama-8b")},
    # lengths: the prompt; batch: the larger decode batch (batch 1 is always measured).
    sizes=DeviceSizes(
        gpu=Sizes("llama-1.1b", 8, lengths=(128,), extra={"new_tokens": 128, "reps": 3}),
        cpu=Sizes("llama-125m", 8, lengths=(32,), extra={"new_tokens": 16, "reps": 1}),
        cpu_quick=Sizes("llama-tiny", 8, lengths=(32,), extra={"new_tokens": 16, "reps": 1}),
    ),
    build=build,
    run=run,
    describe=describe,
    prior="decode",
    variant_priors={"prefill": "prefill"},
    timeout_s=2400.0,
    order=40,
    length_name="seq_len",
    # Trained with FSDP2 for scaling: per rank (model, batch, sequence length, steps).
    scaling=Scaling(
        "fsdp",
        DeviceSizes(
            gpu=Sizes("llama-1.1b", 4, steps=10, lengths=(512,)),
            cpu=Sizes("llama-tiny", 4, steps=10, lengths=(128,)),
            gpu_quick=Sizes("llama-125m", 8, steps=5, lengths=(256,)),
            cpu_quick=Sizes("llama-tiny", 2, steps=10, lengths=(64,)),
        ),
        default=False,
    ),
    # The decode step replays a CUDA graph (compiled with reduce-overhead, or by hand).
    graphed_on_gpu=("decode",),
    bf16_on_gpu=True,
    primary_variant="decode-b1",
    comparison=Comparison("transformers", "Hugging Face generate", hf_generate),
)
