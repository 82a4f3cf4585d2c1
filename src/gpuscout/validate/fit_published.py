"""`gpuscout fit` held against published figures: engines' own logs (vLLM's memory
profile, llama.cpp's buffer sizes), papers and model cards.

The figures live in tests/fit/fixtures/published.toml, each with its URL and the line
it was read from. Each ``Case`` here turns one figure into the fit request that
reproduces its settings and the quantity fit gives for it; ``compare`` says how far
apart they are and whether that is within the case's tolerance (or on the right side
of a bound, for figures such as "does not fit in 80 GB"). ``markdown`` renders the table
in docs/fit-validation.md; tests/fit/test_fit_published.py asserts every case.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gpuscout.catalog import find_gpu
from gpuscout.fit import FitRequest, ModelSpec, estimate, fit_on, load_model
from gpuscout.fit.families import parse_hf_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

GIB: Final = 1024**3
WEIGHTS_TOLERANCE: Final = 0.01
PEAK_TOLERANCE: Final = 0.10


def load_figures(path: Path) -> dict[str, dict[str, Any]]:
    """The published figures by id."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    return {f["id"]: f for f in doc["figure"]}


@dataclass(frozen=True)
class Case:
    """One published figure and the fit request that reproduces it."""

    figure: str  # the id in published.toml
    request: Callable[[], FitRequest]
    quantity: Callable[[FitRequest], float]  # what fit says for it
    tolerance: float | None = None  # relative; None: only the figure's bound is checked
    miss: str = ""  # why fit differs, when it does by more than the tolerance


@dataclass(frozen=True)
class Comparison:
    case: Case
    published: float
    relation: str
    ours: float

    @property
    def error(self) -> float:
        return self.ours / self.published - 1.0

    @property
    def agrees(self) -> bool:
        """Within the tolerance (an "eq" figure) or on the figure's side of a bound."""
        if self.relation == "eq":
            tol = self.case.tolerance
            return tol is None or abs(self.error) <= tol
        ours, value = self.ours, self.published
        return {
            "lt": ours < value,
            "le": ours <= value,
            "gt": ours > value,
            "ge": ours >= value,
        }[self.relation]

    @property
    def holds(self) -> bool:
        """Agrees, or the case explains why not."""
        return self.agrees or bool(self.case.miss)


def compare(case: Case, figures: Mapping[str, Mapping[str, Any]]) -> Comparison:
    fig = figures[case.figure]
    ours = case.quantity(case.request())
    return Comparison(case, float(fig["value"]), str(fig.get("relation", "eq")), float(ours))


# -- what fit says, per kind of figure ------------------------------------------------


def weights(req: FitRequest) -> float:
    """All weight bytes (on the GPU, and in RAM where the engine keeps some there)."""
    est = estimate(req)
    return float(est.weights_bytes + est.host_bytes)


def gpu_weights(req: FitRequest) -> float:
    return float(estimate(req).weights_bytes)


def kv_cache(req: FitRequest) -> float:
    return float(estimate(req).kv_cache_bytes)


def compute_buffer(req: FitRequest) -> float:
    return float(estimate(req).activations_bytes)


def peak(req: FitRequest) -> float:
    return float(estimate(req).total_bytes)


def vllm_kv(total_gib: float) -> Callable[[FitRequest], float]:
    """vLLM's KV-cache share: utilization x the total memory its log states, less the
    weights, the profiled activations and the other non-KV memory inside the budget."""

    def kv(req: FitRequest) -> float:
        est = estimate(req)
        inside = est.total_bytes - est.outside_budget_bytes - est.kv_cache_bytes
        return req.gpu_memory_utilization * total_gib * GIB - inside

    return kv


def vllm_max_context(total_gib: float, gpu: str) -> Callable[[FitRequest], float]:
    def longest(req: FitRequest) -> float:
        fit = fit_on(req, find_gpu(gpu), usable_bytes=round(total_gib * GIB))
        return float(fit.max_seq_len or 0)

    return longest


def params(req: FitRequest) -> float:
    return float(req.model.params)


def _llama_65b() -> ModelSpec:
    """LLaMA-65B (the QLoRA paper's model), from its published shape."""
    return parse_hf_config(
        {
            "model_type": "llama",
            "num_hidden_layers": 80,
            "hidden_size": 8192,
            "num_attention_heads": 64,
            "intermediate_size": 22016,
            "vocab_size": 32000,
            "max_position_embeddings": 2048,
        },
        "LLaMA-65B (arXiv 2302.13971, Table 2)",
    )


def _req(model: str | Callable[[], ModelSpec], **kw: Any) -> Callable[[], FitRequest]:
    def make() -> FitRequest:
        spec = model() if callable(model) else load_model(model)
        return FitRequest(spec, **kw)

    return make


def _with_context(model: str, context: int) -> Callable[[], ModelSpec]:
    return lambda: dataclasses.replace(load_model(model), max_seq_len=context)


_V0 = {"mode": "infer", "engine": "vllm"}
_CPP = {"mode": "infer", "engine": "llama.cpp"}

CASES: Final[tuple[Case, ...]] = (
    # (a) vLLM's own memory profile. The V0 engine of these logs profiled a whole
    # max_model_len of tokens at once (no chunked prefill): prefill_chunk says so.
    Case(
        "vllm-pr10511-llama3-8b-h100-weights",
        _req("llama-3-8b", **_V0),
        gpu_weights,
        WEIGHTS_TOLERANCE,
    ),
    Case(
        "vllm-pr10511-llama3-8b-h100-tp2-weights",
        _req("llama-3-8b", tp=2, gpus=2, **_V0),
        gpu_weights,
        WEIGHTS_TOLERANCE,
    ),
    Case(
        "vllm12330-llama3-8b-a100-40gb-weights",
        _req("llama-3-8b", **_V0),
        gpu_weights,
        WEIGHTS_TOLERANCE,
    ),
    Case(
        "vllm10517-llama31-8b-3090-weights",
        _req("llama-3.1-8b", **_V0),
        gpu_weights,
        WEIGHTS_TOLERANCE,
    ),
    Case(
        "vllm-pr10511-llama3-8b-h100-kv",
        _req("llama-3-8b", prefill_chunk=8192, seq_len=8192, **_V0),
        vllm_kv(79.22),
        PEAK_TOLERANCE,
    ),
    Case(
        "vllm10517-llama31-8b-3090-kv-20k",
        _req("llama-3.1-8b", prefill_chunk=20_000, seq_len=20_000, **_V0),
        vllm_kv(23.58),
        PEAK_TOLERANCE,
    ),
    Case(
        "vllm10517-llama31-8b-3090-max-context-29k",
        _req("llama-3.1-8b", prefill_chunk=29_000, seq_len=29_000, **_V0),
        vllm_max_context(23.58, "rtx-3090"),
        PEAK_TOLERANCE,
    ),
    # (b) llama.cpp: the quantize README's sizes and a full-offload log on an 8 GB card
    Case(
        "llamacpp-quantize-readme-llama31-8b-q4_k_m-size",
        _req("llama-3.1-8b", dtype="q4_k_m", **_CPP),
        weights,
        WEIGHTS_TOLERANCE,
    ),
    Case(
        "llamacpp-quantize-readme-llama31-8b-q8_0-size",
        _req("llama-3.1-8b", dtype="q8_0", **_CPP),
        weights,
        WEIGHTS_TOLERANCE,
    ),
    Case(
        "llamacpp-bllossom-llama3-8b-q4km-rtx3070-gpu-weights",
        _req("llama-3-8b", dtype="q4_k_m", seq_len=512, flash_attention=False, **_CPP),
        gpu_weights,
        WEIGHTS_TOLERANCE,
    ),
    Case(
        "llamacpp-bllossom-llama3-8b-q4km-kv-512",
        _req("llama-3-8b", dtype="q4_k_m", seq_len=512, flash_attention=False, **_CPP),
        kv_cache,
        PEAK_TOLERANCE,
    ),
    Case(
        "llamacpp-bllossom-llama3-8b-q4km-compute-buffer-512",
        _req("llama-3-8b", dtype="q4_k_m", seq_len=512, flash_attention=False, **_CPP),
        compute_buffer,
        PEAK_TOLERANCE,
    ),
    Case(
        "ollama-pr6279-llama31-70b-q4_0-size",
        _req("llama-3.1-70b", dtype="q4_0", **_CPP),
        weights,
        WEIGHTS_TOLERANCE,
    ),
    # (c) training
    Case(
        "qlora-65b-single-48gb",
        _req(
            _llama_65b,
            dtype="nf4-dq",
            lora_rank=64,
            lora_targets="all",
            checkpointing=True,
            seq_len=512,
        ),
        peak,
        miss="the paper keeps its 800M LoRA parameters in bf16 and pages the optimizer "
        "states to CPU memory under pressure; fit counts PEFT's default fp32 adapters "
        "(4 more bytes per adapter parameter: 3.2 GB here) and no paging",
    ),
    Case("qlora-65b-full-16bit-over-780gb", _req(_llama_65b, seq_len=512), peak),
    Case(
        "zero-gpt2-1.5b-adam-model-states",
        _req("gpt2-xl", dtype="fp16", seq_len=1024),
        lambda r: float(sum(_states(r))),
    ),
    Case(
        "transformers-10754-gpt2-run-clm-defaults-oom-v100-32gb",
        _req("gpt2", dtype="fp32", batch_size=8, seq_len=1024, flash_attention=False),
        peak,
        miss="GPT-2's config trains with dropout 0.1 on the attention probabilities, the "
        "residuals and the embeddings, and the 2020 implementation kept the masked scores, "
        "the softmax and the dropout output and mask (17 bytes per score, not 8: ~11 GB "
        "more here) plus a shifted copy of the fp32 logits; fit counts no dropout",
    ),
    Case(
        "torchtune-llama31-8b-qlora-4090",
        _req(
            "llama-3.1-8b",
            dtype="nf4-dq",
            lora_rank=8,
            lora_targets="all",
            batch_size=2,
            seq_len=2048,
            checkpointing=True,
        ),
        peak,
        PEAK_TOLERANCE,
        miss="torchtune's recipe computes the loss in chunks (CEWithChunkedOutputLoss, 8 "
        "chunks) and compiles the model: the 6 GiB logits spike fit counts for an "
        "unchunked cross-entropy over 4,096 tokens x 128,256 entries is not there",
    ),
    Case(
        "peft-readme-bloomz-7b1-full-oom-a100-80gb",
        _req("mistral-7b", seq_len=256),
        peak,
    ),
    # (d) parameter counts as their authors publish them
    Case("params-llama3-8b-llamacpp", _req("llama-3-8b"), params, WEIGHTS_TOLERANCE),
    Case("params-mixtral-8x7b-total", _req("mixtral-8x7b"), params, WEIGHTS_TOLERANCE),
    Case("params-llama31-70b-llamacpp", _req("llama-3.1-70b"), params, WEIGHTS_TOLERANCE),
    Case("params-gemma2-9b", _req("gemma-2-9b"), params, WEIGHTS_TOLERANCE),
    Case("params-qwen3-8b", _req("qwen3-8b"), params, 0.02),  # published rounded: 8.2B
    Case("params-qwen3-30b-a3b-total", _req("qwen3-30b-a3b"), params, WEIGHTS_TOLERANCE),
    Case("params-phi-3-mini", _req("phi-3-mini"), params, 0.02),  # published rounded: 3.8B
    Case(
        "params-phi-4",
        _req("phi-4"),
        params,
        WEIGHTS_TOLERANCE,
        miss="Microsoft's card rounds to 14B; the config counts 14.66B (transformers counts "
        "the same, tests/fit/fixtures/transformers_counts.json)",
    ),
    Case("params-deepseek-v3-total", _req("deepseek-v3"), params, WEIGHTS_TOLERANCE),
)


def _states(req: FitRequest) -> tuple[int, int, int]:
    est = estimate(req)
    return est.weights_bytes, est.gradients_bytes, est.optimizer_bytes


def markdown(comparisons: list[Comparison], figures: Mapping[str, Mapping[str, Any]]) -> str:
    """The validation table: the figure, its source, fit's value and the gap."""
    lines = [
        "| figure | published | gpuscout | gap | holds |",
        "|---|---:|---:|---:|:---:|",
    ]
    for c in comparisons:
        fig = figures[c.case.figure]
        gap = f"{c.error:+.1%}" if c.relation == "eq" else "bound"
        lines.append(
            f"| [{c.case.figure}]({fig['url']}) | {fig['unit_as_printed']} | "
            f"{_show(c.ours, fig)} | {gap} | {_verdict(c)} |"
        )
    return "\n".join(lines)


def _verdict(c: Comparison) -> str:
    if c.agrees:
        return "yes"
    return "explained" if c.case.miss else "NO"


def _show(value: float, fig: Mapping[str, Any]) -> str:
    what = str(fig["what"])
    if what.endswith("_bytes"):
        return f"{value / GIB:,.2f} GiB"
    return f"{value:,.0f}"


def families_markdown(fixtures: Path) -> str:
    """Each family fixture's parameter count beside the one transformers recorded."""
    import json

    from gpuscout.fit.models import read_hf_config

    recorded = json.loads((fixtures / "transformers_counts.json").read_text(encoding="utf-8"))
    lines = [
        f"transformers {recorded['transformers']} on the meta device (torch {recorded['torch']})",
        "",
        "| config | transformers class | transformers | gpuscout | difference |",
        "|---|---|---:|---:|---:|",
    ]
    for name, row in sorted(recorded["counts"].items()):
        ours = read_hf_config(fixtures / "configs" / f"{name}.json").params
        diff = ours - int(row["params"])
        lines.append(f"| {name} | {row['class']} | {row['params']:,} | {ours:,} | {diff:+,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the two tables of docs/fit-validation.md (run from the repository root)."""
    fixtures = Path(argv[0] if argv else "tests/fit/fixtures")
    figures = load_figures(fixtures / "published.toml")
    print(families_markdown(fixtures))
    print()
    print(markdown([compare(c, figures) for c in CASES], figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
