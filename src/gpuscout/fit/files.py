"""A model read from what the user has: a GGUF file, a checkpoint folder (config.json and
safetensors), a config.json, a Hugging Face repo id in the local cache, or a shipped
preset. Only headers and metadata are read, never tensor data, and nothing is fetched.

A file-backed model carries the format its weights are stored in (``quant``) and the
exact bytes the files hold (``stored_bytes``, per block in ``stored_layer_bytes``), so
that ``quant.weight_bytes`` costs it as stored.
"""

from __future__ import annotations

import dataclasses
import json
import math
import mmap
import os
import re
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from gguf import (
    GGML_QUANT_SIZES,
    GGUF_DEFAULT_ALIGNMENT,
    GGMLQuantizationType,
    GGUFValueType,
    LlamaFileType,
)

from gpuscout.errors import UsageError
from gpuscout.fit.families import parse_hf_config, read_hf_config
from gpuscout.fit.models import find_model
from gpuscout.fit.quant import format_from_hf_config, parse_format
from gpuscout.fit.spec import ModelSpec

_REPO_RE: Final = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SPLIT_RE: Final = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


def load_source(name_or_path: str) -> ModelSpec:
    """A model from a .gguf file; a folder with config.json (its *.safetensors headers
    give the stored bytes) or one .gguf; a config.json; a Hugging Face repo id found in
    the local cache; else a shipped preset (find_model's UnknownNameError unchanged).
    UsageError, one line, for a missing or malformed file."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _from_directory(path)
    if path.is_file():
        return _from_file(path)
    if name_or_path.endswith((".gguf", ".json", ".safetensors")) or name_or_path.startswith(
        ("/", "./", "../", "~")
    ):
        raise UsageError(f"no such file: {name_or_path}", "give a path to a .gguf or config.json")
    if _REPO_RE.match(name_or_path):
        return _from_repo_id(name_or_path)
    return find_model(name_or_path)


def _from_file(path: Path) -> ModelSpec:
    if path.suffix == ".gguf":
        return read_gguf(path)
    if path.suffix == ".safetensors":
        return _from_directory(path.parent)
    return _with_stored(read_hf_config(path), path.parent, _read_json(path))


def _from_directory(folder: Path) -> ModelSpec:
    config = folder / "config.json"
    if config.is_file():
        return _with_stored(read_hf_config(config), folder, _read_json(config))
    ggufs = sorted(p for p in folder.glob("*.gguf") if not _is_later_split(p))
    if len(ggufs) == 1:
        return read_gguf(ggufs[0])
    if ggufs:
        names = ", ".join(p.name for p in ggufs[:4])
        raise UsageError(f"{folder} holds several GGUF files ({names})", "give the file's path")
    raise UsageError(f"{folder} has no config.json or .gguf file", "give a path to either")


def _read_json(path: Path) -> dict[str, Any]:
    """The config.json read_hf_config accepted (so it parses)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return doc if isinstance(doc, dict) else {}


# -- Hugging Face cache -----------------------------------------------------------------


def hf_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads: $HF_HUB_CACHE, else $HF_HOME/hub, else
    $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub."""
    # The documented cache layout, by hand: huggingface_hub would bring eight packages
    # for this one offline lookup (its try_to_load_from_cache).
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "huggingface" / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def _snapshot(repo_dir: Path) -> Path | None:
    """The cached snapshot to read: refs/main's revision first, else the newest one
    holding a config.json or a .gguf."""
    snapshots = repo_dir / "snapshots"
    main = repo_dir / "refs" / "main"
    if main.is_file():
        rev = snapshots / main.read_text(encoding="utf-8").strip()
        if _has_model(rev):
            return rev
    found = [p for p in snapshots.glob("*") if _has_model(p)] if snapshots.is_dir() else []
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _has_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() or any(folder.glob("*.gguf"))


def _from_repo_id(repo: str) -> ModelSpec:
    cache = hf_cache_dir()
    snapshot = _snapshot(cache / f"models--{repo.replace('/', '--')}")
    if snapshot is not None:
        return _from_directory(snapshot)
    try:
        return find_model(repo)  # a shipped preset lists the repo id among its aliases
    except UsageError:
        pass
    raise UsageError(
        f"{repo} is not in the Hugging Face cache ({cache}) and is not a shipped model",
        f"download its config.json: huggingface-cli download {repo} config.json",
    )


# -- safetensors ----------------------------------------------------------------------

_LAYER_RES: Final = (
    re.compile(r"^(?:model\.)?(?:language_model\.)?(?:model\.)?layers\.(\d+)\."),
    re.compile(r"^(?:transformer\.)?h\.(\d+)\."),  # GPT-2
    re.compile(r"^(?:bert\.)?encoder\.layer\.(\d+)\."),  # BERT
)
_EMBEDDING_RE: Final = re.compile(r"(?:embed_tokens|wte|word_embeddings)\.")
_MAX_HEADER: Final = 256 * 1024 * 1024  # a header larger than this is a broken file


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a .safetensors file: an 8-byte little-endian length, then that
    many bytes of JSON naming each tensor's dtype, shape and data offsets. Read by hand:
    the safetensors package would need a framework to hand tensors to, and only the
    header is wanted."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            size = struct.unpack("<Q", raw)[0] if len(raw) == 8 else -1
            if not 0 < size <= _MAX_HEADER:
                raise UsageError(f"{path} is not a safetensors file (bad header length)")
            text = fh.read(size)
        header = json.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not a safetensors file (its header is not JSON)") from exc
    if not isinstance(header, dict):
        raise UsageError(f"{path} is not a safetensors file (its header is not an object)")
    return header


def _tensor_sizes(headers: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for header in headers:
        for name, info in header.items():
            offsets = info.get("data_offsets") if isinstance(info, Mapping) else None
            if name != "__metadata__" and isinstance(offsets, list) and len(offsets) == 2:
                sizes[name] = int(offsets[1]) - int(offsets[0])
    return sizes


def _layer_of(name: str) -> int | None:
    for pattern in _LAYER_RES:
        m = pattern.match(name)
        if m:
            return int(m.group(1))
    return None


@dataclasses.dataclass(frozen=True)
class Stored:
    """Bytes of a model's tensors in its files."""

    total: int
    layers: tuple[int, ...] = ()
    embedding: int = 0
    head: int = 0


def _by_layer(sizes: Mapping[str, int], layer_of: Any, embedding: Any, head: Any) -> Stored:
    """Totals of ``sizes``: per block (``layer_of(name)``), the token embedding and the
    output layer (``embedding(name)``, ``head(name)``: whether a tensor is one)."""
    per: dict[int, int] = {}
    emb = out = 0
    for name, size in sizes.items():
        layer = layer_of(name)
        if layer is not None:
            per[layer] = per.get(layer, 0) + size
        elif embedding(name):
            emb += size
        elif head(name):
            out += size
    layers = tuple(per.get(i, 0) for i in range(max(per) + 1)) if per else ()
    return Stored(sum(sizes.values()), layers, emb, out)


def read_safetensors(folder: Path) -> Stored | None:
    """Stored bytes of the *.safetensors in ``folder`` from their headers, or, when only
    model.safetensors.index.json is there, its total_size; None without either."""
    files = sorted(folder.glob("*.safetensors"))
    if files:
        sizes = _tensor_sizes(safetensors_header(p) for p in files)
        return _by_layer(
            sizes,
            _layer_of,
            lambda n: bool(_EMBEDDING_RE.search(n)) and "vision" not in n,
            lambda n: n.startswith("lm_head."),
        )
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            total = json.loads(index.read_text(encoding="utf-8"))["metadata"]["total_size"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return Stored(int(total)) if isinstance(total, int) else None
    return None


_SAFETENSORS_DTYPES: Final = {"BF16": "bf16", "F16": "fp16", "F32": "fp32"}


def _with_stored(spec: ModelSpec, folder: Path, doc: Mapping[str, Any]) -> ModelSpec:
    """``spec`` with the format config.json names and the bytes the safetensors hold."""
    quant = format_from_hf_config(doc)
    warnings: tuple[str, ...] = ()
    qc = doc.get("quantization_config")
    if quant is None and isinstance(qc, Mapping) and qc:
        method = qc.get("quant_method", "?")
        warnings = (
            f"quantization method {method!r} is not one gpuscout knows: its stored bytes "
            "are not used; give --dtype for the format to cost",
        )
    stored = read_safetensors(folder) if quant is not None else None
    return _finish(spec, quant, stored, warnings)


def _finish(
    spec: ModelSpec, quant: str | None, stored: Stored | None, warnings: tuple[str, ...] = ()
) -> ModelSpec:
    values: dict[str, Any] = {"quant": quant}
    if stored is not None:
        values |= {
            "stored_bytes": stored.total,
            "stored_layer_bytes": stored.layers,
            "stored_embedding_bytes": stored.embedding,
            "stored_head_bytes": stored.head,
        }
    if warnings:
        values["warnings"] = (*spec.warnings, *warnings)
    return dataclasses.replace(spec, **values)


# -- GGUF -----------------------------------------------------------------------------

# GGUF architecture -> Hugging Face model_type (convert_hf_to_gguf's mapping, reversed)
_ARCH_MODEL_TYPE: Final = {
    "llama": "llama",
    "qwen2": "qwen2",
    "qwen2moe": "qwen2_moe",
    "qwen3": "qwen3",
    "qwen3moe": "qwen3_moe",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "gemma3": "gemma3_text",
    "phi3": "phi3",
    "gpt2": "gpt2",
    "starcoder2": "starcoder2",
    "command-r": "cohere",
    "olmo2": "olmo2",
    "granite": "granite",
    "deepseek2": "deepseek_v2",
}
# {arch}.<key> -> the config.json key(s) that carry it
_GGUF_KEYS: Final = {
    "block_count": ("num_hidden_layers",),
    "embedding_length": ("hidden_size",),
    "feed_forward_length": ("intermediate_size",),
    "attention.head_count": ("num_attention_heads",),
    "attention.head_count_kv": ("num_key_value_heads",),
    "context_length": ("max_position_embeddings",),
    "rope.freq_base": ("rope_theta",),
    "attention.sliding_window": ("sliding_window",),
    "expert_count": ("num_local_experts", "num_experts", "n_routed_experts"),
    "expert_used_count": ("num_experts_per_tok",),
    "expert_feed_forward_length": ("moe_intermediate_size",),
    "expert_shared_feed_forward_length": ("shared_expert_intermediate_size",),
    "expert_shared_count": ("n_shared_experts",),
    "leading_dense_block_count": ("first_k_dense_replace",),
    "attention.kv_lora_rank": ("kv_lora_rank",),
    "attention.q_lora_rank": ("q_lora_rank",),
}
_GPT2_KEYS: Final = {
    "num_hidden_layers": "n_layer",
    "hidden_size": "n_embd",
    "num_attention_heads": "n_head",
    "max_position_embeddings": "n_positions",
    "intermediate_size": "n_inner",
}


# The GGUF header is read by hand, in the layout of ggml's docs/gguf.md, with gguf's type
# codes and block sizes: gguf's GGUFReader parses every element of every metadata array
# into numpy parts, 15 s for a Llama 3 tokenizer (128,256 tokens, 280,000 merges) of which
# only the token count is wanted. Here an array is stepped over and its length kept.
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_GGUF_VERSIONS: Final = (2, 3)
_GGUF_SCALARS: Final = {
    kind: struct.Struct(f"<{code}")
    for kind, code in (
        (GGUFValueType.UINT8, "B"),
        (GGUFValueType.INT8, "b"),
        (GGUFValueType.UINT16, "H"),
        (GGUFValueType.INT16, "h"),
        (GGUFValueType.UINT32, "I"),
        (GGUFValueType.INT32, "i"),
        (GGUFValueType.FLOAT32, "f"),
        (GGUFValueType.BOOL, "?"),
        (GGUFValueType.UINT64, "Q"),
        (GGUFValueType.INT64, "q"),
        (GGUFValueType.FLOAT64, "d"),
    )
}
_ENDS_EARLY: Final = "it ends inside its header (a truncated file?)"


@dataclasses.dataclass(frozen=True)
class GgufArray:
    """A metadata array: its element type and length, and its numbers unless they were
    stepped over (strings, nested arrays and the tokenizer's arrays are)."""

    type: GGUFValueType
    count: int
    values: tuple[Any, ...] | None = None


@dataclasses.dataclass(frozen=True)
class GgufTensor:
    """One entry of a GGUF file's tensor table (``shape`` fastest dimension first)."""

    name: str
    shape: tuple[int, ...]
    type: GGMLQuantizationType
    n_bytes: int


@dataclasses.dataclass(frozen=True)
class GgufHeader:
    """A GGUF file's metadata (scalars as Python values, arrays as GgufArray) and its
    tensor table."""

    fields: Mapping[str, Any]
    tensors: tuple[GgufTensor, ...]


class _Malformed(Exception):
    """What is wrong with a GGUF file, in words."""


class _Cursor:
    """Little-endian GGUF values read one after another from ``buf``."""

    def __init__(self, buf: mmap.mmap) -> None:
        self.buf = buf
        self.pos = 0

    def need(self, n: int) -> None:
        if n > len(self.buf) - self.pos:
            raise _Malformed(_ENDS_EARLY)

    def take(self, fmt: struct.Struct) -> Any:
        value = fmt.unpack_from(self.buf, self.pos)[0]
        self.pos += fmt.size
        return value

    def string(self) -> str:
        n = self.take(_U64)
        self.need(n)
        start, self.pos = self.pos, self.pos + n
        return self.buf[start : self.pos].decode("utf-8")

    def value(self, code: int, key: str) -> Any:
        kind = _value_type(code, key)
        if kind == GGUFValueType.STRING:
            return self.string()
        if kind == GGUFValueType.ARRAY:
            return self.array(key)
        return self.take(_GGUF_SCALARS[kind])

    def array(self, key: str) -> GgufArray:
        """An array (u32 element type, u64 count, the elements): its numbers kept (a
        per-layer value) unless it is the tokenizer's, strings and nested arrays stepped
        over."""
        kind = _value_type(self.take(_U32), key)
        count = self.take(_U64)
        self.need(count)  # every element takes a byte at least
        if kind == GGUFValueType.STRING:
            self._skip_strings(count)
        elif kind == GGUFValueType.ARRAY:
            for _ in range(count):
                self.array(key)
            return GgufArray(kind, count)
        else:
            size = _GGUF_SCALARS[kind].size * count
            self.need(size)
            if not key.startswith("tokenizer."):
                fmt = struct.Struct(f"<{count}{_GGUF_SCALARS[kind].format[-1]}")
                values = fmt.unpack_from(self.buf, self.pos)
                self.pos += size
                return GgufArray(kind, count, values)
            self.pos += size
        return GgufArray(kind, count)

    def _skip_strings(self, count: int) -> None:
        buf, pos, length = self.buf, self.pos, _U64.unpack_from
        for _ in range(count):  # each string: its u64 length, then that many bytes
            pos += 8 + length(buf, pos)[0]
        if pos > len(buf):
            raise _Malformed(_ENDS_EARLY)
        self.pos = pos


def _value_type(code: int, key: str) -> GGUFValueType:
    try:
        return GGUFValueType(code)
    except ValueError:
        raise _Malformed(f"{key} has the unknown value type {code}") from None


def read_gguf_header(path: Path) -> GgufHeader:
    """The metadata and tensor table of a GGUF file (version 2 or 3, little-endian); the
    tensor data is not read, only checked to be all there. UsageError, one line, for a
    file that is not such a GGUF file."""
    try:
        with path.open("rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                raise _Malformed("it is empty")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse_gguf(_Cursor(buf))
    except OSError as exc:
        what = str(exc)
    except _Malformed as exc:
        what = str(exc)
    except (struct.error, OverflowError):
        what = _ENDS_EARLY
    except UnicodeDecodeError:
        what = "a key or string in it is not UTF-8"
    raise UsageError(f"{path} is not a readable GGUF file: {what}")


def _parse_gguf(cur: _Cursor) -> GgufHeader:
    if cur.buf[:4] != b"GGUF":
        raise _Malformed("it does not start with the GGUF magic")
    cur.pos = 4
    version = cur.take(_U32)
    if version not in _GGUF_VERSIONS:
        if int.from_bytes(cur.buf[4:8], "big") in _GGUF_VERSIONS:
            raise _Malformed("it is big-endian (gpuscout reads little-endian GGUF files)")
        raise _Malformed(f"GGUF version {version} (gpuscout reads versions 2 and 3)")
    n_tensors, n_fields = cur.take(_U64), cur.take(_U64)
    fields: dict[str, Any] = {}
    for _ in range(n_fields):
        key = cur.string()
        if key in fields:
            raise _Malformed(f"the key {key} appears twice")
        fields[key] = cur.value(cur.take(_U32), key)
    tensors: dict[str, tuple[GgufTensor, int]] = {}
    for _ in range(n_tensors):
        tensor, offset = _tensor_info(cur)
        if tensor.name in tensors:
            raise _Malformed(f"the tensor {tensor.name} appears twice")
        tensors[tensor.name] = (tensor, offset)
    _check_data(cur, fields, tensors.values())
    return GgufHeader(fields, tuple(t for t, _ in tensors.values()))


def _tensor_info(cur: _Cursor) -> tuple[GgufTensor, int]:
    """One tensor's name, dimensions, ggml type and offset into the data."""
    name = cur.string()
    n_dims = cur.take(_U32)
    cur.need(8 * n_dims)
    shape = tuple(cur.take(_U64) for _ in range(n_dims))
    code = cur.take(_U32)
    offset = cur.take(_U64)
    try:
        ggml_type = GGMLQuantizationType(code)
        block, block_bytes = GGML_QUANT_SIZES[ggml_type]
    except (ValueError, KeyError):
        raise _Malformed(f"the tensor {name} has the unknown ggml type {code}") from None
    n_bytes = math.prod(shape) * block_bytes // block
    return GgufTensor(name, shape, ggml_type, n_bytes), offset


def _check_data(
    cur: _Cursor, fields: Mapping[str, Any], tensors: Iterable[tuple[GgufTensor, int]]
) -> None:
    """That the file holds all its tensors' data (which starts at the next multiple of
    general.alignment after the tensor table)."""
    align = fields.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
    if type(align) is not int or align <= 0 or align & (align - 1):
        raise _Malformed(f"its general.alignment {align!r} is not a power of two")
    start = -(-cur.pos // align) * align
    end = start + max((offset + t.n_bytes for t, offset in tensors), default=0)
    if end > len(cur.buf):
        raise _Malformed(
            f"its tensors end at byte {end:,} but it holds {len(cur.buf):,} "
            "(a truncated file or an unfinished download?)"
        )


def _field(header: GgufHeader, key: str) -> Any:
    """A metadata value (the largest entry of a per-layer array of numbers; None for
    another array)."""
    value = header.fields.get(key)
    if isinstance(value, GgufArray):
        return max(value.values) if value.values else None
    return value


def gguf_config(header: GgufHeader, tensors: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """A Hugging Face config.json-like dict from a GGUF file's metadata (``tensors``:
    each tensor's GGUF shape, fastest dimension first)."""
    arch = str(_field(header, "general.architecture") or "")
    doc: dict[str, Any] = {"_name_or_path": _field(header, "general.name") or arch}
    for key, names in _GGUF_KEYS.items():
        value = _field(header, f"{arch}.{key}")
        if value is not None:
            doc |= dict.fromkeys(names, value)
    doc["model_type"] = _model_type(header, arch, doc)
    doc["vocab_size"] = _vocab(header, arch, tensors)
    doc["tie_word_embeddings"] = "output.weight" not in tensors
    if "blk.0.attn_q.bias" in tensors:
        doc["attention_bias"] = True
    doc |= _head_dims(header, arch, doc)
    if arch == "gpt2":
        doc |= {gpt2: doc[hf] for hf, gpt2 in _GPT2_KEYS.items() if hf in doc}
    return doc


def _model_type(header: GgufHeader, arch: str, doc: Mapping[str, Any]) -> str:
    if arch == "llama" and doc.get("num_local_experts"):
        return "mixtral"  # llama.cpp writes Mixtral as a llama with experts
    if arch == "deepseek2" and _field(header, f"{arch}.expert_gating_func") == 2:
        return "deepseek_v3"  # sigmoid gating: V3 / R1 and their kin
    return _ARCH_MODEL_TYPE.get(arch, arch)


def _vocab(header: GgufHeader, arch: str, tensors: Mapping[str, tuple[int, ...]]) -> int | None:
    """The tokenizer's token count, unless the embedding has another number of rows
    (padding): the tensor is what takes memory."""
    tokens = header.fields.get("tokenizer.ggml.tokens")
    count = tokens.count if isinstance(tokens, GgufArray) else _field(header, f"{arch}.vocab_size")
    rows = tensors.get("token_embd.weight", ())
    if len(rows) == 2 and rows[1] != count:
        return int(rows[1])
    return int(count) if count else None


def _head_dims(header: GgufHeader, arch: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """head_dim, or MLA's per-head widths (DeepSeek V2/V3): newer files store the absorbed
    key width in key_length and the per-head ones in key_length_mla/value_length_mla."""
    key = _field(header, f"{arch}.attention.key_length")
    if not doc.get("kv_lora_rank"):
        return {"head_dim": key} if key else {}
    rope = _field(header, f"{arch}.rope.dimension_count") or 0
    key = _field(header, f"{arch}.attention.key_length_mla") or key or 0
    value = _field(header, f"{arch}.attention.value_length_mla") or _field(
        header, f"{arch}.attention.value_length"
    )
    return {
        "q_lora_rank": doc.get("q_lora_rank"),  # absent: a plain q projection (V2-Lite)
        "qk_rope_head_dim": rope,
        "qk_nope_head_dim": key - rope,
        "v_head_dim": value,
        # the checkpoint's KV heads: MLA files store 1 (the shared latent)
        "num_key_value_heads": doc.get("num_attention_heads"),
    }


def _gguf_quant(header: GgufHeader, sizes: Mapping[str, int], types: Mapping[str, str]) -> str:
    """The format name of general.file_type (a llama.cpp mix), else of the type that
    holds most of the bytes."""
    ftype = _field(header, "general.file_type")
    if isinstance(ftype, int):
        try:
            name = LlamaFileType(ftype & ~LlamaFileType.GUESSED).name.removeprefix("MOSTLY_")
            return parse_format("fp32" if name == "ALL_F32" else name).name
        except (ValueError, UsageError):
            pass
    by_type: dict[str, int] = {}
    for tensor, size in sizes.items():
        by_type[types[tensor]] = by_type.get(types[tensor], 0) + size
    return parse_format(max(by_type, key=lambda t: by_type[t])).name


def _gguf_parts(path: Path) -> list[Path]:
    """A split GGUF's files (name-00001-of-00003.gguf ...), or just ``path``."""
    m = _SPLIT_RE.search(path.name)
    if not m:
        return [path]
    stem, count = path.name[: m.start()], int(m.group(2))
    parts = [path.with_name(f"{stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise UsageError(f"{path.name} is one part of a split GGUF; missing {missing[0]}")
    return parts


def _is_later_split(path: Path) -> bool:
    m = _SPLIT_RE.search(path.name)
    return bool(m) and m is not None and m.group(1) != "00001"


def read_gguf(path: Path) -> ModelSpec:
    """A model from a GGUF file's metadata and tensor table (all parts of a split file)."""
    parts = _gguf_parts(path)
    first = read_gguf_header(parts[0])
    headers = [first, *(read_gguf_header(p) for p in parts[1:])]
    sizes: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    types: dict[str, str] = {}
    for header in headers:
        for t in header.tensors:
            sizes[t.name] = t.n_bytes
            shapes[t.name] = t.shape
            types[t.name] = t.type.name
    doc = gguf_config(first, shapes)
    spec = parse_hf_config(doc, str(path))
    spec = dataclasses.replace(spec, source=str(path))
    stored = _by_layer(sizes, _gguf_layer, lambda n: n == "token_embd.weight", _is_output)
    return _finish(spec, _gguf_quant(first, sizes, types), stored)


def _gguf_layer(name: str) -> int | None:
    m = re.match(r"^blk\.(\d+)\.", name)
    return int(m.group(1)) if m else None


def _is_output(name: str) -> bool:
    return name == "output.weight"
