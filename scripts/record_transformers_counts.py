"""Record what Hugging Face transformers counts for each config.json fixture.

Each tests/fit/fixtures/configs/<name>.json is built by transformers on the meta device
(no weights, no memory) as the class listed in CLASSES, and its parameters() are counted
(tied weights once, as torch deduplicates them). The result is written to
tests/fit/fixtures/transformers_counts.json, which tests/fit/test_families.py holds
gpuscout's own counts against without importing transformers.

transformers is not a gpuscout dependency: run this from a throwaway environment,

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install torch transformers
    /tmp/tfvenv/bin/python scripts/record_transformers_counts.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fit" / "fixtures"
CONFIGS = FIXTURES / "configs"
OUT = FIXTURES / "transformers_counts.json"

# fixture -> the transformers class whose parameters gpuscout's count stands for: the
# causal LM (with its output layer) for decoders, the class a config's "architectures"
# names for the rest.
CLASSES: dict[str, str] = {
    "llama-2-7b": "LlamaForCausalLM",
    "llama-3.1-8b": "LlamaForCausalLM",
    "llama-3.2-1b": "LlamaForCausalLM",
    "llama-3.3-70b": "LlamaForCausalLM",
    "mistral-7b-v0.1": "MistralForCausalLM",
    "mistral-7b-v0.3": "MistralForCausalLM",
    "mixtral-8x7b": "MixtralForCausalLM",
    "qwen2.5-7b": "Qwen2ForCausalLM",
    "qwen1.5-moe-a2.7b": "Qwen2MoeForCausalLM",
    "qwen3-8b": "Qwen3ForCausalLM",
    "qwen3-30b-a3b": "Qwen3MoeForCausalLM",
    "gemma-7b": "GemmaForCausalLM",
    "gemma-2-9b": "Gemma2ForCausalLM",
    "gemma-3-1b-it": "Gemma3ForCausalLM",
    "gemma-3-12b-it": "Gemma3ForConditionalGeneration",
    "phi-3-mini-4k": "Phi3ForCausalLM",
    "phi-3.5-mini": "Phi3ForCausalLM",
    "phi-4": "Phi3ForCausalLM",
    "deepseek-v2-lite": "DeepseekV2ForCausalLM",
    "deepseek-v3": "DeepseekV3ForCausalLM",
    "gpt2": "GPT2LMHeadModel",
    "bert-base-uncased": "BertForMaskedLM",
    "vit-base-patch16-224": "ViTForImageClassification",
}


def count(name: str, class_name: str) -> int:
    import torch
    import transformers
    from transformers import CONFIG_MAPPING

    doc: dict[str, Any] = json.loads((CONFIGS / f"{name}.json").read_text(encoding="utf-8"))
    doc.pop("auto_map", None)  # the classes built in, not a checkpoint's own code
    config = CONFIG_MAPPING[doc["model_type"]].from_dict(doc)
    model_class = getattr(transformers, class_name)
    with torch.device("meta"):
        model = model_class(config)
    return sum(p.numel() for p in model.parameters())


def main() -> int:
    import torch
    import transformers

    names = sorted(p.stem for p in CONFIGS.glob("*.json"))
    missing = sorted(set(names) ^ set(CLASSES))
    if missing:
        print(f"fixtures and CLASSES differ: {missing}", file=sys.stderr)
        return 1
    counts = {}
    for name in names:
        params = count(name, CLASSES[name])
        counts[name] = {"class": CLASSES[name], "params": params}
        print(f"{name:24} {CLASSES[name]:32} {params:>16,}")
    record = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "counts": counts,
    }
    OUT.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
