"""How long `gpuscout fit FILE.gguf` takes to read a GGUF file's header, next to the
gguf package's own GGUFReader on the same file (the reference it replaced).

The file is a tiny Llama (2 blocks, Q8_0 tensors) carrying the metadata a real Llama 3
GGUF has: 128,256 tokens with their types and scores, 280,000 merges, a chat template.
Both readers are timed with gpuscout's one timing function (median and spread).

    python scripts/gguf_read_timing.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter, TokenType
from gguf.quants import quantize

from gpuscout.fit.files import load_source
from gpuscout.timing import measure

VOCAB, MERGES, HIDDEN, FFN, LAYERS = 128_256, 280_000, 64, 128, 2


def write(path: Path) -> None:
    rng = np.random.default_rng(0)
    w = GGUFWriter(path, "llama")
    w.add_name("Llama 3 sized tokenizer")
    w.add_block_count(LAYERS)
    w.add_context_length(8192)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_token_list([f"t{i}" for i in range(VOCAB)])
    w.add_tokenizer_model("gpt2")
    w.add_token_types([TokenType.NORMAL] * VOCAB)
    w.add_token_scores([-float(i) for i in range(VOCAB)])
    w.add_token_merges([f"t{i} t{i + 1}" for i in range(MERGES)])
    w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    q8 = GGMLQuantizationType.Q8_0
    shapes: dict[str, tuple[int, ...]] = {
        "token_embd.weight": (256, HIDDEN),
        "output_norm.weight": (HIDDEN,),
    }
    for i in range(LAYERS):
        shapes[f"blk.{i}.attn_q.weight"] = (HIDDEN, HIDDEN)
        shapes[f"blk.{i}.ffn_up.weight"] = (FFN, HIDDEN)
    for name, dims in shapes.items():
        data = rng.standard_normal(dims).astype(np.float32)
        if len(dims) == 2:
            w.add_tensor(name, quantize(data, q8), raw_dtype=q8)
        else:
            w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "llama3-tokenizer.gguf"
        write(path)
        print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")
        for label, fn in (
            ("gpuscout (fit.files.load_source)", lambda: load_source(str(path))),
            ("gguf.GGUFReader", lambda: GGUFReader(path)),
        ):
            m = measure(fn, warmup=1, min_iters=3, min_time_s=0.0, max_time_s=60.0)
            s = m.stats
            print(
                f"{label}: median {s.median_s:.3f} s (p10 {s.p10_s:.3f}, p90 {s.p90_s:.3f}; "
                f"{s.n} runs)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
