"""Weight formats: the bytes a model's weights take in each format people run.

Bits per weight come from each format's block layout (bytes per block / weights per
block), scales and zeros included. Which tensors stay in higher precision follows the
tools that write and load the format: transformers with bitsandbytes, AutoGPTQ / AutoAWQ,
exllamav2, vLLM / llm-compressor, llama.cpp. GGUF block sizes come from the ``gguf``
package (``GGML_QUANT_SIZES``), and a llama.cpp mix (Q4_K_M, ...) gives each tensor the
type llama.cpp's ``llama_tensor_get_type`` gives it (src/llama-quant.cpp).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from gpuscout.errors import UnknownNameError
from gpuscout.fit.spec import ModelSpec, block_linears, param_groups

KINDS: Final = ("float", "bitsandbytes", "gptq", "awq", "exl2", "gguf")


@dataclass(frozen=True)
class WeightFormat:
    """How one format stores a model's weights, in bits per weight.

    ``linear_bits``: a quantized linear layer's weight with its scales and zeros (per
    group, per block). ``row_bytes`` / ``column_bytes`` / ``tensor_bytes``: what each
    quantized linear adds per input feature (GPTQ's g_idx), per output feature (a
    per-channel scale) and once. ``embedding_bits`` / ``head_bits`` / ``other_bits``: the
    token embedding, an untied output layer, and norms, biases and routers, as the format
    leaves them. ``gguf_mix``: the llama.cpp file type whose per-tensor types weight_bytes
    follows (None: one type for every quantized tensor).
    """

    name: str
    kind: str  # one of KINDS
    linear_bits: float
    embedding_bits: float
    head_bits: float
    other_bits: float
    trainable: bool  # can be trained directly (a quantized base takes LoRA adapters only)
    source: str
    row_bytes: float = 0.0
    column_bytes: float = 0.0
    tensor_bytes: float = 0.0
    gguf_mix: str | None = None

    @property
    def quantized(self) -> bool:
        return self.kind != "float"


def ggml_bits(type_name: str) -> float:
    """Bits per weight of a ggml type from its block layout (Q4_K: 144 bytes / 256)."""
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
    return 8 * size / block


def _quantized(name: str, kind: str, linear_bits: float, source: str, **rest: Any) -> WeightFormat:
    """A weight-only format: the embedding, head and norms left in 16-bit unless ``rest``
    says otherwise; not trainable directly."""
    sixteen: dict[str, Any] = {"embedding_bits": 16.0, "head_bits": 16.0, "other_bits": 16.0}
    fields = sixteen | {"trainable": False} | rest
    return WeightFormat(name=name, kind=kind, linear_bits=linear_bits, source=source, **fields)


def _float(name: str, bits: int, source: str) -> WeightFormat:
    return WeightFormat(name, "float", bits, bits, bits, bits, True, source)


_FIXED: Final[dict[str, WeightFormat]] = {
    "fp32": _float("fp32", 32, "IEEE float32"),
    "bf16": _float("bf16", 16, "bfloat16"),
    "fp16": _float("fp16", 16, "IEEE float16"),
    # E4M3 weights with one fp32 scale per tensor (vLLM's "fp8", AutoFP8); the embedding
    # and lm_head stay 16-bit, as vLLM and llm-compressor leave them ("ignore": lm_head).
    # Kind float and trainable: fp8 training (Transformer Engine) keeps 16/32-bit masters.
    "fp8": _quantized(
        "fp8", "float", 8, "E4M3, per-tensor fp32 scale", tensor_bytes=4, trainable=True
    ),
    "fp8-channel": _quantized(
        "fp8-channel", "float", 8, "E4M3, per-channel fp32 scale", column_bytes=4, trainable=True
    ),
    # DeepSeek-V3's checkpoint: one fp32 scale per 128 x 128 block (weight_block_size).
    "fp8-block128": _quantized(
        "fp8-block128",
        "float",
        8 + 32 / (128 * 128),
        "E4M3, fp32 scale per 128x128 block",
        trainable=True,
    ),
    # LLM.int8 (bitsandbytes Linear8bitLt): int8 weights and an fp32 scale per output
    # row (SCB). transformers leaves lm_head (llm_int8_skip_modules), embeddings, norms
    # and biases in the 16-bit dtype the model is loaded in.
    "int8": _quantized(
        "int8", "bitsandbytes", 8, "LLM.int8: int8 + fp32 row scale", column_bytes=4
    ),
}


def _bnb4(name: str, double: bool) -> WeightFormat:
    """bitsandbytes Linear4bit: 4-bit codes, one fp32 absmax per block of 64 weights; with
    double quantization the absmax is 8-bit and each 256 absmax share an fp32 scale."""
    absmax = 8 / 64 + 32 / (64 * 256) if double else 32 / 64
    how = "8-bit absmax + fp32 per 256 blocks" if double else "fp32 absmax"
    kind = name.split("-")[0].upper()
    return _quantized(name, "bitsandbytes", 4 + absmax, f"bitsandbytes {kind}: block 64, {how}")


for _q in ("nf4", "fp4"):
    _FIXED[_q] = _bnb4(_q, False)
    _FIXED[f"{_q}-dq"] = _bnb4(f"{_q}-dq", True)

_ALIASES: Final = {
    "float32": "fp32",
    "f32": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "f16": "fp16",
    "float8": "fp8",
    "e4m3": "fp8",
    "fp8-e4m3": "fp8",
    "llm.int8": "int8",
    "bnb-int8": "int8",
    "bnb-nf4": "nf4",
    "qlora": "nf4-dq",
    "gptq": "gptq-4bit-g128",
    "awq": "awq-4bit-g128",
    # the planner's old int4: 4 bits + an fp16 scale and a 4-bit zero per 128 weights
    "int4": "awq-4bit-g128",
}

_GROUPED_RE: Final = re.compile(
    r"^(gptq|awq)(?:-?(?:int)?(\d)(?:bit|b)?)?(?:-?(?:g(-1|\d+)|g?(channel)))?$"
)
_EXL2_RE: Final = re.compile(r"^exl2-?(\d+(?:\.\d+)?)(?:bpw)?(?:-?h(\d+))?$")


def _grouped(method: str, bits: int, group: int) -> WeightFormat:
    """GPTQ and AWQ: b-bit codes packed in int32; per group of g input rows an fp16 scale
    and a b-bit zero (packed in int32) for each output column. GPTQ also stores g_idx, an
    int32 per input row. Group -1: one scale and zero per output column."""
    where = "channel" if group < 0 else f"g{group}"
    name = f"{method}-{bits}bit-{where}"
    row = 4.0 if method == "gptq" else 0.0
    if group < 0:
        linear, column = float(bits), (16 + bits) / 8
    else:
        linear, column = bits + (16 + bits) / group, 0.0
    source = f"{method.upper()} {bits}-bit, fp16 scale + {bits}-bit zero per {where}"
    return _quantized(name, method, linear, source, row_bytes=row, column_bytes=column)


def _exl2(bpw: float, head: int) -> WeightFormat:
    """EXL2 (exllamav2): a measured mix averaging ``bpw`` bits per weight over the linear
    layers, scales included; the output layer at ``head`` bits (6 unless -hb says 8)."""
    name = f"exl2-{bpw:g}" + ("" if head == 6 else f"-h{head}")
    source = f"EXL2 {bpw:g} bpw average, head {head}-bit"
    return _quantized(name, "exl2", bpw, source, head_bits=float(head))


# -- GGUF -----------------------------------------------------------------------------

# llama.cpp's file types (llama-quantize's type argument), by the names the gguf package
# gives them: MOSTLY_Q4_K_M -> "Q4_K_M".
_FTYPES: Final = {
    t.name.removeprefix("MOSTLY_"): t for t in LlamaFileType if t.name.startswith("MOSTLY_")
}
_FLOAT_FTYPES: Final = {"F16": "fp16", "BF16": "bf16"}
# llama_ftype_get_default_type (src/llama-quant.cpp) where the file type's name is not
# itself the ggml type: the rest of the model's weights take this type.
_FTYPE_DEFAULT: Final = {
    "Q2_K_S": "Q2_K",
    "Q3_K_S": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K",
    "Q4_K_M": "Q4_K",
    "Q5_K_S": "Q5_K",
    "Q5_K_M": "Q5_K",
    "IQ3_XS": "IQ3_S",
    "IQ3_M": "IQ3_S",
    "IQ2_S": "IQ2_XS",
    "IQ2_M": "IQ2_S",
    "MXFP4_MOE": "MXFP4",
}
_UNQUANTIZED: Final = ("F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64")


def _ftype_default(ftype: str) -> str:
    return _FTYPE_DEFAULT.get(ftype, ftype)


def _gguf(name: str, ftype: str | None, type_name: str) -> WeightFormat:
    """A llama.cpp mix (``ftype``) or one ggml type for every quantized tensor (None).
    Norms and biases stay F32, as convert_hf_to_gguf writes them."""
    head = embedding = type_name
    if ftype is not None:
        ctx = _MixContext(ftype, n_layers=32, gqa=4, experts=0, big=False, tied=False)
        head = _gguf_type(ctx, "output", 0, 4096)
        embedding = _gguf_type(ctx, "token_embd", 0, 4096)
    what = f"llama.cpp {ftype} mix" if ftype else f"ggml {type_name}"
    return _quantized(
        name,
        "gguf",
        ggml_bits(type_name),
        f"{what}: {type_name} blocks (gguf GGML_QUANT_SIZES)",
        embedding_bits=ggml_bits(embedding),
        head_bits=ggml_bits(head),
        other_bits=32.0,
        gguf_mix=ftype,
    )


def _gguf_format(key: str) -> WeightFormat | None:
    upper = key.upper()
    if upper in _FLOAT_FTYPES:
        return _FIXED[_FLOAT_FTYPES[upper]]
    if upper in _FTYPES and _ftype_default(upper) in GGMLQuantizationType.__members__:
        return _gguf(key, upper, _ftype_default(upper))
    if upper in GGMLQuantizationType.__members__ and upper not in _UNQUANTIZED:
        return _gguf(key, None, upper)
    return None


# The per-tensor rules below are llama.cpp's llama_tensor_get_type_impl (ggml-org/llama.cpp,
# src/llama-quant.cpp, read at 007dbbf), for a non-Falcon model. llama.cpp visits tensors
# sorted by block (llama_model_loader's weight_name_comparer), so its attn_v and ffn_down
# counters are the layer index. tests/fit/test_quant.py holds the result to llama.cpp's
# own Llama 3.1 8B sizes (tools/quantize/README.md).


@dataclass(frozen=True)
class _MixContext:
    """What llama.cpp's per-tensor choice reads from the model (llama_tensor_get_type)."""

    ftype: str
    n_layers: int
    gqa: int  # n_gqa(): query heads per KV head
    experts: int  # n_expert
    big: bool  # llama.cpp's LLM_TYPE_70B: 80 layers (Llama 2/3 70B, Qwen2 72B)
    tied: bool  # no output.weight: token_embd is quantized as the output layer

    @property
    def default(self) -> str:
        return _ftype_default(self.ftype)


def _use_more_bits(i: int, n: int) -> bool:
    """llama-quant.cpp's use_more_bits: the first and last eighth of the layers and every
    third layer in between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


_IQ_LOW: Final = ("IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M")


def _output_type(ctx: _MixContext, ncols: int) -> str:
    """output.weight (and a tied token_embd)."""
    if ctx.ftype == "MXFP4_MOE" or ncols % _block(ctx.default):
        return "Q8_0"
    if ctx.ftype in (*_IQ_LOW, "IQ3_XXS"):
        return "Q5_K"
    return ctx.default if ctx.default == "Q8_0" else "Q6_K"


def _embd_type(ctx: _MixContext) -> str:
    """An untied token_embd."""
    return {
        "IQ2_XXS": "Q2_K",
        "IQ2_XS": "Q2_K",
        "IQ1_S": "Q2_K",
        "IQ1_M": "Q2_K",
        "IQ2_S": "IQ3_S",
        "IQ2_M": "IQ3_S",
        "IQ3_XXS": "IQ3_S",
        "TQ1_0": "Q4_K",
        "TQ2_0": "Q4_K",
    }.get(ctx.ftype, ctx.default)


def _iq_low_type(ctx: _MixContext, category: str, layer: int) -> str:
    """The 1- and 2-bit i-quant mixes."""
    wide = "IQ3_S" if ctx.ftype in ("IQ2_S", "IQ2_M") else "Q2_K"
    if category == "attn_v":
        return "Q4_K" if ctx.gqa >= 4 or ctx.experts >= 4 else wide
    if category == "attn_k" and ctx.experts == 8:
        return "Q4_K"
    if category == "ffn_down":
        return wide if layer < ctx.n_layers // 8 else ctx.default
    if category == "attn_output":
        if ctx.experts == 8:
            return "Q5_K"
        return {"IQ1_S": "IQ2_XXS", "IQ1_M": "IQ2_XXS", "IQ2_S": "IQ3_S", "IQ2_M": "IQ3_S"}.get(
            ctx.ftype, ctx.default
        )
    return ctx.default


def _attn_v_choice(ctx: _MixContext, i: int) -> str:
    """attn_v before the 70B and 8-expert bumps; ``i`` counts attn_v tensors (= layer)."""
    f, gqa4 = ctx.ftype, ctx.gqa >= 4
    by_gqa = {"Q2_K": ("Q4_K", "Q3_K"), "IQ3_XXS": ("Q4_K", "IQ3_XXS")}
    if f in by_gqa:
        return by_gqa[f][0 if gqa4 else 1]
    if gqa4 and f in ("Q2_K_S", "IQ3_XS", "IQ3_S"):
        return "Q4_K"
    if gqa4 and f in ("IQ4_NL", "IQ4_XS"):
        return "Q5_K"
    fixed = {"IQ3_M": "Q4_K", "Q3_K_L": "Q5_K", "Q3_K_M": "Q5_K" if i < 2 else "Q4_K"}
    if f in fixed:
        return fixed[f]
    if f in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i, ctx.n_layers):
        return "Q6_K"
    if f == "Q4_K_S" and i < 4:
        return "Q5_K"
    return ctx.default


def _attn_v_type(ctx: _MixContext, i: int) -> str:
    chosen = _attn_v_choice(ctx, i)
    if ctx.big and chosen in ("Q3_K", "Q4_K"):
        chosen = "Q5_K"  # 8 query heads share each V row: more bits for little size
    return "Q8_0" if ctx.experts == 8 else chosen


def _ffn_down_type(ctx: _MixContext, i: int) -> str:
    f, n = ctx.ftype, ctx.n_layers
    first_eighth = i < n // 8
    more = _use_more_bits(i, n)
    if f == "Q2_K":
        return "Q3_K"
    if f == "Q3_K_M":
        return "Q5_K" if i < n // 16 else "Q4_K"
    if f == "Q3_K_L":
        return "Q5_K"
    if f in ("Q4_K_M", "Q5_K_M") and more:
        return "Q6_K"
    if first_eighth and f in ("Q2_K_S", "IQ3_M"):
        return "Q4_K"
    if f == "IQ3_M" and ctx.experts == 8 and more:
        return "Q4_K"
    if first_eighth and f in ("IQ4_NL", "IQ4_XS", "Q4_K_S"):
        return "Q5_K"  # IQ4_*: without an importance matrix, as llama-quantize's default
    return ctx.default


_ATTN_OUT_8X: Final = (
    "Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S",
    "IQ3_M", "IQ4_XS",
)  # fmt: skip


def _attn_output_type(ctx: _MixContext) -> str:
    if ctx.experts == 8:
        return "Q5_K" if ctx.ftype in _ATTN_OUT_8X else ctx.default
    return {
        "Q2_K": "Q3_K",
        "IQ3_XXS": "IQ3_S",
        "Q3_K_M": "Q4_K",
        "Q3_K_L": "Q5_K",
        "IQ3_M": "Q4_K",
    }.get(ctx.ftype, ctx.default)


def _other_type(ctx: _MixContext, category: str, layer: int) -> str:
    """attn_q, attn_k, ffn_gate, ffn_up and everything else in a block."""
    f, n = ctx.ftype, ctx.n_layers
    if category == "attn_k" and ctx.experts == 8:
        return "Q8_0"
    if category in ("attn_k", "attn_q"):
        return {"IQ3_XS": "IQ3_XXS", "IQ3_XXS": "IQ2_S"}.get(f, ctx.default)
    if category in ("ffn_gate", "ffn_up") and f == "IQ3_XS" and n // 8 <= layer < 7 * n // 8:
        return "IQ3_XXS"
    return ctx.default


def _mix_type(ctx: _MixContext, category: str, layer: int) -> str:
    """llama_tensor_get_type_impl for one tensor of a llama.cpp mix (a non-Falcon model;
    no importance matrix except where the mix requires one: IQ1/IQ2/IQ3_XXS)."""
    if ctx.ftype == "MXFP4_MOE":
        return "Q8_0"  # only 3-D expert tensors take MXFP4 (see _gguf_type)
    if category == "token_embd":
        return _embd_type(ctx)
    if ctx.ftype in _IQ_LOW:
        return _iq_low_type(ctx, category, layer)
    if category == "attn_v":
        return _attn_v_type(ctx, layer)
    if category == "ffn_down":
        return _ffn_down_type(ctx, layer)
    if category == "attn_output":
        return _attn_output_type(ctx)
    return _other_type(ctx, category, layer)


# llama-quant.cpp's tensor_type_fallback: a tensor whose rows (ne[0]) do not split into
# the type's blocks takes a type with 32-weight blocks, else F16.
_FALLBACK: Final = {
    **dict.fromkeys(
        ("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_XS"), "IQ4_NL"
    ),
    **dict.fromkeys(("Q2_K", "Q3_K", "TQ1_0", "TQ2_0"), "Q4_0"),
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}


def _block(type_name: str) -> int:
    return GGML_QUANT_SIZES[GGMLQuantizationType[type_name]][0]


def _fallback(type_name: str, ncols: int) -> str:
    if ncols % _block(type_name) == 0:
        return type_name
    other = _FALLBACK.get(type_name, "F16")
    return other if ncols % _block(other) == 0 else "F16"


def _gguf_type(ctx: _MixContext, category: str, layer: int, ncols: int, experts: int = 1) -> str:
    """The ggml type llama.cpp gives one tensor: ``category`` is llama-quant.cpp's
    (token_embd, output, attn_q/k/v/output, ffn_gate/up/down, other), ``ncols`` its row
    length, ``experts`` > 1 for a 3-D expert tensor."""
    if category == "output" or (category == "token_embd" and ctx.tied):
        chosen = _output_type(ctx, ncols)
    elif ctx.ftype == "MXFP4_MOE" and experts > 1:
        chosen = "MXFP4"
    else:
        chosen = _mix_type(ctx, category, layer)
    return _fallback(chosen, ncols)


# -- names ----------------------------------------------------------------------------

_EXAMPLES: Final = ("gptq-4bit-g128", "gptq-8bit-g128", "awq-4bit-g64", "exl2-4.65")


def format_names() -> list[str]:
    """Every fixed format name and the GGUF mixes and types (GPTQ/AWQ/EXL2 take
    parameters: examples are listed)."""
    gguf = [k.lower() for k in _FTYPES if _gguf_format(k.lower())]
    types = [
        k.lower()
        for k in GGMLQuantizationType.__members__
        if k not in _UNQUANTIZED and k.lower() not in gguf
    ]
    return [*_FIXED, *_EXAMPLES, *gguf, *types]


@functools.lru_cache(maxsize=256)
def parse_format(name: str) -> WeightFormat:
    """A weight format by name: fp32, bf16, fp16, fp8, int8, nf4[-dq], fp4[-dq],
    gptq/awq[-Nbit][-gG], exl2-BPW[-hH], a GGUF mix or type (q4_k_m, q8_0, iq4_xs, ...).
    UnknownNameError with close matches."""
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    key = _ALIASES.get(key, key)
    if key in _FIXED:
        return _FIXED[key]
    found = _parametric(key) or _gguf_format(key.replace("-", "_"))
    if found is None:
        names = {n.replace("_", "-"): n for n in format_names()}  # compared as the key is
        close = [names[c] for c in difflib.get_close_matches(key, list(names), n=3, cutoff=0.6)]
        exc = UnknownNameError("weight format", name, close)
        exc.hint = exc.hint or "e.g. bf16, fp8, int8, nf4, awq, gptq-8bit-g128, exl2-4.65, q4_k_m"
        raise exc
    return found


def _parametric(key: str) -> WeightFormat | None:
    m = _GROUPED_RE.match(key)
    if m:
        bits = int(m.group(2) or 4)
        where = m.group(3) or m.group(4) or "128"
        group = -1 if where in ("-1", "channel") else int(where)
        if bits in (2, 3, 4, 8) and group != 0:
            return _grouped(m.group(1), bits, group)
        return None
    m = _EXL2_RE.match(key)
    if m:
        bpw, head = float(m.group(1)), int(m.group(2) or 6)
        if 2.0 <= bpw <= 8.0 and head in (6, 8):
            return _exl2(bpw, head)
    return None


# -- bytes ----------------------------------------------------------------------------


def _category(role: str) -> str:
    """llama-quant.cpp's tensor category for a block linear's role."""
    named = {
        "q": "attn_q",
        "k": "attn_k",
        "v": "attn_v",
        "qkv": "attn_v",  # category_is_attn_v: attn_qkv and attn_kv_b count as attn_v
        "kv_b": "attn_v",
        "o": "attn_output",
        "fc1": "ffn_up",
        "fc2": "ffn_down",
    }
    if role in named:
        return named[role]
    for part in ("down", "up", "gate"):
        if part in role:
            return f"ffn_{part}"
    return "other"


def _transformer_linears(spec: ModelSpec) -> Iterator[tuple[int, str, int, int, int]]:
    """(layer, role, fan_in, fan_out, copies) of every block linear."""
    for layer in range(spec.layers or 0):
        for lin in block_linears(spec, layer):
            yield layer, lin.role, lin.fan_in, lin.fan_out, lin.copies


def _mix_context(spec: ModelSpec, ftype: str) -> _MixContext:
    heads, kv = spec.heads or 1, spec.kv_heads or spec.heads or 1
    layers = spec.layers or 0
    return _MixContext(
        ftype=ftype,
        n_layers=layers,
        gqa=heads // kv,
        experts=spec.experts or 0,
        # llama-model.cpp's LLM_TYPE_70B: 80 layers (Llama with GQA, Qwen2); a 65B
        # without GQA is another type
        big=layers == 80 and kv < heads,
        tied=spec.tied_embeddings,
    )


def _gguf_split(spec: ModelSpec, fmt: WeightFormat) -> tuple[float, float]:
    """(bytes tensor parallelism splits, bytes every rank keeps) of a GGUF format."""
    groups = param_groups(spec)
    ftype = fmt.gguf_mix
    type_name = _ftype_default(ftype) if ftype else "F16"
    if ftype is None:  # one type everywhere (--pure): the mix's choice is skipped
        ctx = None
        type_name = fmt.name.upper()
    else:
        ctx = _mix_context(spec, ftype)

    def bytes_of(category: str, layer: int, ncols: int, count: int, experts: int = 1) -> float:
        chosen = type_name if ctx is None else _gguf_type(ctx, category, layer, ncols, experts)
        chosen = _fallback(chosen, ncols)
        return count * ggml_bits(chosen) / 8

    split = 0.0
    counted = 0
    for layer, role, fan_in, fan_out, copies in _transformer_linears(spec):
        count = fan_in * fan_out * copies
        split += bytes_of(_category(role), layer, fan_in, count, copies)
        counted += count
    hidden = spec.hidden or 1
    split += bytes_of("other", 0, hidden, max(0, groups.linear - counted))
    split += bytes_of("token_embd", 0, hidden, groups.embedding)
    split += bytes_of("output", 0, hidden, groups.head)
    return split, groups.other * fmt.other_bits / 8


def _linear_extra_bytes(spec: ModelSpec, fmt: WeightFormat) -> float:
    """Bytes a format adds per quantized linear beyond its bits per weight."""
    if not (fmt.row_bytes or fmt.column_bytes or fmt.tensor_bytes):
        return 0.0
    total = 0.0
    for _, _, fan_in, fan_out, copies in _transformer_linears(spec):
        total += copies * (fmt.row_bytes * fan_in + fmt.column_bytes * fan_out + fmt.tensor_bytes)
    return total


@functools.lru_cache(maxsize=256)
def _split_bytes(spec: ModelSpec, fmt: WeightFormat) -> tuple[float, float]:
    """(bytes tensor parallelism splits, bytes every rank keeps), counted from the shape."""
    groups = param_groups(spec)
    if fmt.kind == "gguf":
        split, kept = _gguf_split(spec, fmt)
    else:
        split = (
            groups.linear * fmt.linear_bits / 8
            + _linear_extra_bytes(spec, fmt)
            + groups.embedding * fmt.embedding_bits / 8
            + groups.head * fmt.head_bits / 8
        )
        kept = groups.other * fmt.other_bits / 8
    # the vision tower: in a float format's width, else 16-bit (quantizers skip it)
    vision_bits = fmt.other_bits if fmt.kind == "float" else 16.0
    return split, kept + groups.vision * vision_bits / 8


def weight_bytes(spec: ModelSpec, fmt: WeightFormat, tp: int = 1) -> float:
    """Bytes of weights one tensor-parallel rank holds: linear layers (MoE experts
    included) in the format, the rest as the format leaves it; linears, embedding and
    head split over ``tp``, norms, biases and the vision tower on every rank. A model
    read from files in this format (``spec.quant``) costs the bytes the files hold."""
    split, kept = _split_bytes(spec, fmt)
    if spec.stored_bytes is not None and spec.quant == fmt.name:
        kept = min(kept, spec.stored_bytes)
        split = spec.stored_bytes - kept
    return split / tp + kept


# -- KV cache -------------------------------------------------------------------------

KV_DTYPES: Final[dict[str, float]] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,  # vLLM's fp8 / fp8_e4m3 / fp8_e5m2 cache
    # llama.cpp's -ctk/-ctv block types: bytes per block / elements per block
    **{
        t.lower(): GGML_QUANT_SIZES[GGMLQuantizationType[t]][1]
        / GGML_QUANT_SIZES[GGMLQuantizationType[t]][0]
        for t in ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL")
    },
}
_KV_ALIASES: Final = {
    "float32": "fp32",
    "f32": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "f16": "fp16",
    "auto": "bf16",
    "fp8_e4m3": "fp8",
    "fp8_e5m2": "fp8",
    "fp8-e4m3": "fp8",
    "fp8-e5m2": "fp8",
    "int8": "q8_0",
}


def parse_kv_dtype(name: str) -> str:
    """A KV-cache element type by name (vLLM's and llama.cpp's spellings);
    UnknownNameError with close matches."""
    key = name.strip().lower()
    key = _KV_ALIASES.get(key, key)
    if key not in KV_DTYPES:
        close = difflib.get_close_matches(key, list(KV_DTYPES), n=3, cutoff=0.5)
        raise UnknownNameError("KV cache dtype", name, close, known=list(KV_DTYPES))
    return key


# -- config.json ----------------------------------------------------------------------

_TORCH_DTYPES: Final = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float32": "fp32",
    "float": "fp32",
}


def format_from_hf_config(doc: Mapping[str, Any]) -> str | None:
    """The format a config.json says its weights are stored in: its quantization_config
    (AWQ, GPTQ, bitsandbytes, fp8, compressed-tensors float, EXL2) or, without one, its
    torch_dtype. None when neither says (or the quantization method is not one of these)."""
    qc = doc.get("quantization_config")
    if isinstance(qc, Mapping) and qc:
        return _from_quantization_config(qc)
    dtype = doc.get("torch_dtype") or doc.get("dtype")  # transformers >= 4.56 writes dtype
    return _TORCH_DTYPES.get(str(dtype).removeprefix("torch.")) if dtype else None


def _from_quantization_config(qc: Mapping[str, Any]) -> str | None:
    method = str(qc.get("quant_method", "")).lower()
    if method in ("awq", "gptq"):
        bits = _int(qc.get("bits", qc.get("w_bit")), 4)
        group = _int(qc.get("group_size", qc.get("q_group_size")), 128)
        return _grouped(method, bits, group).name if bits in (2, 3, 4, 8) and group else None
    if method == "bitsandbytes" or "load_in_4bit" in qc or "load_in_8bit" in qc:
        return _bnb_name(qc)
    if method == "fp8":
        block = qc.get("weight_block_size")
        return "fp8-block128" if block == [128, 128] else "fp8"
    if method == "compressed-tensors":
        return _compressed_tensors_name(qc)
    if method == "exl2":
        return _exl2_name(qc)
    return None


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _bnb_name(qc: Mapping[str, Any]) -> str | None:
    if qc.get("load_in_4bit") or qc.get("_load_in_4bit"):
        # transformers' BitsAndBytesConfig defaults: fp4, no double quantization
        kind = str(qc.get("bnb_4bit_quant_type") or "fp4").lower()
        if kind not in ("nf4", "fp4"):
            return None
        return f"{kind}-dq" if qc.get("bnb_4bit_use_double_quant") else kind
    if qc.get("load_in_8bit") or qc.get("_load_in_8bit"):
        return "int8"
    return None


def _compressed_tensors_name(qc: Mapping[str, Any]) -> str | None:
    """llm-compressor's float8 schemes: per-tensor, per-channel or 128x128-block scales."""
    groups = qc.get("config_groups")
    if not isinstance(groups, Mapping):
        return None
    for group in groups.values():
        weights = group.get("weights") if isinstance(group, Mapping) else None
        if not isinstance(weights, Mapping):
            continue
        if weights.get("type") == "float" and weights.get("num_bits") == 8:
            strategy = weights.get("strategy")
            return {"tensor": "fp8", "channel": "fp8-channel", "block": "fp8-block128"}.get(
                str(strategy)
            )
    return None


def _exl2_name(qc: Mapping[str, Any]) -> str | None:
    bits = qc.get("bits")
    if not isinstance(bits, (int, float)) or isinstance(bits, bool) or not 2 <= bits <= 8:
        return None
    head = _int(qc.get("head_bits"), 6)
    return _exl2(float(bits), head if head in (6, 8) else 6).name
