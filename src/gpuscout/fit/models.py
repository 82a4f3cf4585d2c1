"""Model shapes: the shipped data file (models.toml), lookup by name, and Hugging Face
``config.json`` files read as plain JSON (transformers is not needed).

Every row is validated when first read: required keys per family, types, allowed
values, and a parameter count (computed from the shape) within 2% of the published one,
because a wrong shape would silently move every estimate.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import re
import sys
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

from gpuscout.errors import CatalogError, UnknownNameError, UsageError
from gpuscout.fit.spec import FAMILIES, HEADS, ModelSpec, count_params

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

MODELS_FILE: Final = "models.toml"
PARAMS_TOLERANCE: Final = 0.02  # computed vs published parameter count
_HINT: Final = "the model data shipped with gpuscout is broken; please report this bug"
_ID_RE: Final = re.compile(r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$")

# key -> (kind, required for which families: "all", "transformer" or a family)
_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "id": ("id", "all"),
    "name": ("str", "all"),
    "family": ("str", "all"),
    "source": ("str", "all"),
    "default_seq_len": ("int", ""),
    "layers": ("int", "transformer"),
    "hidden": ("int", "transformer"),
    "heads": ("int", "transformer"),
    "kv_heads": ("int", ""),
    "head_dim": ("int", ""),
    "intermediate": ("int", "transformer"),
    "vocab": ("int", ""),
    "max_seq_len": ("int", ""),
    "tied_embeddings": ("bool", ""),
    "rope_theta": ("float", ""),
    "experts": ("int", "moe-decoder"),
    "experts_per_token": ("int", "moe-decoder"),
    "mlp": ("str", ""),
    "norm": ("str", ""),
    "bias": ("bool", ""),
    "qkv_bias": ("bool", ""),
    "fused_qkv": ("bool", ""),
    "positions": ("int0", ""),
    "type_vocab": ("int0", ""),
    "pooler": ("bool", ""),
    "head": ("str", ""),
    "num_classes": ("int", ""),
    "image_size": ("int", ""),
    "patch_size": ("int", "vit"),
    "channels": ("int", ""),
    "resnet_block": ("str", "cnn"),
    "resnet_stages": ("ints", "cnn"),
    "resnet_width": ("int", ""),
    "mlp_dims": ("ints", "mlp"),
    "default_dtype": ("str", ""),
    "default_batch_size": ("int", ""),
    "published_params": ("int", ""),
    "params_source": ("str", ""),
    "aliases": ("strs", ""),
    "note": ("str", ""),
}


def parse_models(text: str, origin: str = MODELS_FILE) -> tuple[ModelSpec, ...]:
    """Validate TOML text of ``[[model]]`` tables; CatalogError names the first bad row."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin} is not valid TOML: {exc}", _HINT) from exc
    rows = doc.get("model")
    if set(doc) != {"model"} or not isinstance(rows, list) or not rows:
        raise CatalogError(f"{origin}: expected only [[model]] tables", _HINT)
    specs = tuple(_row(r, f"{origin} row {i} ({r.get('id', '?')})") for i, r in enumerate(rows, 1))
    seen: dict[str, str] = {}
    for spec in specs:
        for key in {_key(spec.id), _key(spec.name), *map(_key, spec.aliases)}:
            if key in seen and seen[key] != spec.id:
                raise CatalogError(f"{origin}: {spec.id!r} and {seen[key]!r} share {key!r}", _HINT)
            seen[key] = spec.id
    return specs


def _row(row: Mapping[str, Any], where: str) -> ModelSpec:
    def bad(message: str) -> CatalogError:
        return CatalogError(f"{where}: {message}", _HINT)

    if not isinstance(row, dict):
        raise bad("not a table")
    unknown = sorted(set(row) - set(_FIELDS))
    if unknown:
        raise bad(f"unknown key(s) {unknown} (a typo?)")
    family = row.get("family")
    if family not in FAMILIES:
        raise bad(f"family {family!r} is not one of {', '.join(FAMILIES)}")
    values: dict[str, Any] = {}
    for key, (kind, needed) in _FIELDS.items():
        required = needed == "all" or needed == family
        required |= needed == "transformer" and family not in ("cnn", "mlp")
        if key not in row:
            if required:
                raise bad(f"missing required key {key!r}")
            continue
        values[key] = _value(row[key], kind, f"{where}: {key}")
    if not _ID_RE.match(values["id"]):
        raise bad(f"id {values['id']!r} must be lower-case words joined by - or .")
    try:
        spec = finish_spec(values)
    except UsageError as exc:
        raise bad(exc.message) from exc
    if spec.published_params is not None:
        off = abs(spec.params - spec.published_params) / spec.published_params
        if off > PARAMS_TOLERANCE:
            raise bad(
                f"{spec.params:,} parameters computed from the shape, {off:.1%} off the "
                f"published {spec.published_params:,}"
            )
    return spec


def _whole(raw: Any, least: int) -> bool:
    return isinstance(raw, int) and not isinstance(raw, bool) and raw >= least


# kind -> whether a raw TOML value is one
_KINDS: Final[dict[str, Callable[[Any], bool]]] = {
    "int": lambda raw: _whole(raw, 1),
    "int0": lambda raw: _whole(raw, 0),
    "float": lambda raw: isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 0,
    "bool": lambda raw: isinstance(raw, bool),
    "str": lambda raw: isinstance(raw, str) and bool(raw.strip()),
    "id": lambda raw: isinstance(raw, str),
    "ints": lambda raw: isinstance(raw, list) and bool(raw) and all(_whole(v, 1) for v in raw),
    "strs": lambda raw: (
        isinstance(raw, list) and all(isinstance(v, str) and v.strip() for v in raw)
    ),
}


def _value(raw: Any, kind: str, where: str) -> Any:
    if not _KINDS[kind](raw):
        raise CatalogError(f"{where} has a bad value {raw!r} ({kind} expected)", _HINT)
    if kind == "float":
        return float(raw)
    return tuple(raw) if kind in ("ints", "strs") else raw


def finish_spec(values: Mapping[str, Any]) -> ModelSpec:
    """Fill the derived fields (kv_heads, head_dim, params) and check the combination;
    UsageError (the caller adds where) for an impossible shape."""
    v = dict(values)
    family = v["family"]
    if family not in ("cnn", "mlp"):
        _finish_transformer(v)
    _check_family(v)
    _check_choices(v)
    v.pop("params_source", None)
    spec = ModelSpec(**(v | {"params": 0}))
    return dataclasses.replace(spec, params=count_params(spec))


def _finish_transformer(v: dict[str, Any]) -> None:
    """kv_heads and head_dim filled in, and the head counts checked."""
    v.setdefault("kv_heads", v["heads"])
    if "head_dim" not in v:
        if v["hidden"] % v["heads"]:
            raise UsageError(f"hidden {v['hidden']} is not a multiple of heads {v['heads']}")
        v["head_dim"] = v["hidden"] // v["heads"]
    if v["heads"] % v["kv_heads"]:
        raise UsageError(f"heads {v['heads']} is not a multiple of kv_heads {v['kv_heads']}")
    if v["family"] in ("decoder", "moe-decoder", "encoder") and "vocab" not in v:
        raise UsageError("a language model needs a vocab size")


def _check_family(v: dict[str, Any]) -> None:
    """What each family needs beyond the required keys (defaults filled in for a cnn)."""
    family = v["family"]
    if family == "vit" and "image_size" not in v:
        raise UsageError("a ViT needs image_size")
    if family == "cnn":
        v.setdefault("image_size", 224)
        v.setdefault("num_classes", 1000)
        if v["resnet_block"] not in ("basic", "bottleneck"):
            raise UsageError(f"resnet_block {v['resnet_block']!r} is not basic or bottleneck")
    if family == "mlp" and len(v["mlp_dims"]) < 2:
        raise UsageError("an MLP needs at least an input and an output width")
    if family == "moe-decoder" and v["experts_per_token"] > v["experts"]:
        raise UsageError("experts_per_token is larger than experts")


def _check_choices(v: dict[str, Any]) -> None:
    """The keys that take one of a few words."""
    if v.get("head", "lm") not in HEADS:
        raise UsageError(f"head {v['head']!r} is not one of {', '.join(HEADS)}")
    if v.get("head") == "classifier" and not v.get("num_classes") and v["family"] != "mlp":
        raise UsageError("a classifier head needs num_classes")
    if v.get("mlp", "swiglu") not in ("swiglu", "gelu"):
        raise UsageError(f"mlp {v['mlp']!r} is not swiglu or gelu")
    if v.get("norm", "rmsnorm") not in ("rmsnorm", "layernorm"):
        raise UsageError(f"norm {v['norm']!r} is not rmsnorm or layernorm")


def _key(name: str) -> str:
    """Comparison key: lower case, letters and digits only ("Llama 3 8B" -> "llama38b")."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.lru_cache(maxsize=1)
def _shipped_models() -> tuple[ModelSpec, ...]:
    try:
        text = resources.files("gpuscout.fit").joinpath(MODELS_FILE).read_text(encoding="utf-8")
    except OSError as exc:  # a broken install, not a user error
        raise CatalogError(f"cannot read the packaged {MODELS_FILE}: {exc}", _HINT) from exc
    return parse_models(text)


def list_models() -> list[ModelSpec]:
    """Every shipped model shape, in data-file order."""
    return list(_shipped_models())


def find_model(name: str) -> ModelSpec:
    """A shipped model by id, name or alias (case and punctuation ignored; an HF repo id
    such as "meta-llama/Meta-Llama-3-8B" works); UnknownNameError with close matches."""
    specs = _shipped_models()
    query = name.strip()
    for spec in specs:
        if query == spec.id:
            return spec
    key = _key(query)
    for spec in specs:
        if key and key in {_key(spec.id), _key(spec.name), *map(_key, spec.aliases)}:
            return spec
    by_key = {_key(n): s.id for s in specs for n in (s.id, *s.aliases)}
    close = difflib.get_close_matches(key, list(by_key), n=8, cutoff=0.6)
    suggestions = list(dict.fromkeys(by_key[k] for k in close))[:3]
    exc = UnknownNameError("model", name, suggestions)
    if not exc.hint:
        exc.hint = "`gpuscout fit --list` shows the models; or give a path to a config.json"
    raise exc


def load_model(name_or_path: str) -> ModelSpec:
    """A shipped model (see find_model) or a Hugging Face config.json (a file or a
    directory holding one). Malformed files raise UsageError with one line."""
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return read_hf_config(path / "config.json")
    if path.is_file():
        return read_hf_config(path)
    if name_or_path.endswith(".json"):
        raise UsageError(f"no such file: {name_or_path}", "give a path to a config.json")
    return find_model(name_or_path)


# -- Hugging Face config.json -------------------------------------------------------

_LLAMA_LIKE: Final = ("llama", "mistral", "qwen2", "mixtral")
SUPPORTED_CONFIGS: Final = (*_LLAMA_LIKE, "gpt2", "bert", "vit")


def read_hf_config(path: Path) -> ModelSpec:
    """Read a config.json as JSON and map it onto a ModelSpec."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(doc, dict):
        raise UsageError(f"{path} is not a config.json: expected a JSON object")
    return parse_hf_config(doc, str(path))


def parse_hf_config(doc: Mapping[str, Any], origin: str) -> ModelSpec:
    kind = doc.get("model_type")
    if kind not in SUPPORTED_CONFIGS:
        raise UsageError(
            f"{origin}: model_type {kind!r} is not supported",
            f"supported model types: {', '.join(SUPPORTED_CONFIGS)}",
        )
    get = _Reader(doc, origin, str(kind))
    name = str(doc.get("_name_or_path") or Path(origin).parent.name or "config")
    ident = re.sub(r"[^a-z0-9.]+", "-", name.lower().rsplit("/", 1)[-1]).strip("-.") or "config"
    v: dict[str, Any] = {"id": ident, "name": name, "source": origin}
    shape = {"gpt2": _gpt2, "bert": _bert, "vit": _vit}.get(str(kind), _llama_like)
    v |= shape(get, doc)
    if v.get("max_seq_len"):
        v["default_seq_len"] = min(v["max_seq_len"], 4096)
    elif v["family"] != "vit":
        v["default_seq_len"] = 4096
    try:
        return finish_spec({k: val for k, val in v.items() if val is not None})
    except UsageError as exc:
        raise UsageError(f"{origin}: {exc.message}") from exc


class _Reader:
    """``get(key, default, kind)``: one config.json value, checked; UsageError naming
    the file and the key for a missing or malformed one."""

    def __init__(self, doc: Mapping[str, Any], origin: str, kind: str) -> None:
        self.doc, self.origin, self.kind = doc, origin, kind

    def __call__(self, key: str, default: Any = ..., kind_: type = int) -> Any:
        doc, origin = self.doc, self.origin
        if key not in doc or doc[key] is None:
            if default is ...:
                raise UsageError(f"{origin}: {self.kind} config has no {key!r}")
            return default
        value = doc[key]
        if kind_ is int and not _whole(value, 1):
            raise UsageError(f"{origin}: {key!r} must be a positive integer, not {value!r}")
        if kind_ is bool and not isinstance(value, bool):
            raise UsageError(f"{origin}: {key!r} must be true or false, not {value!r}")
        return value


def _llama_like(get: _Reader, doc: Mapping[str, Any]) -> dict[str, Any]:
    kind = get.kind
    v = {
        "family": "moe-decoder" if kind == "mixtral" else "decoder",
        "layers": get("num_hidden_layers"),
        "hidden": get("hidden_size"),
        "heads": get("num_attention_heads"),
        "kv_heads": get("num_key_value_heads", get("num_attention_heads")),
        "intermediate": get("intermediate_size"),
        "vocab": get("vocab_size"),
        "max_seq_len": get("max_position_embeddings", None),
        "tied_embeddings": get("tie_word_embeddings", False, bool),
        "qkv_bias": kind == "qwen2" or get("attention_bias", False, bool),
    }
    if doc.get("head_dim") is not None:
        v["head_dim"] = get("head_dim")
    if kind == "mixtral":
        v |= {
            "experts": get("num_local_experts"),
            "experts_per_token": get("num_experts_per_tok"),
        }
    return v


def _gpt2(get: _Reader, doc: Mapping[str, Any]) -> dict[str, Any]:
    hidden = get("n_embd")
    return {
        "family": "decoder",
        "layers": get("n_layer"),
        "hidden": hidden,
        "heads": get("n_head"),
        "intermediate": get("n_inner", 4 * hidden),
        "vocab": get("vocab_size"),
        "positions": get("n_positions"),
        "max_seq_len": get("n_positions"),
        "tied_embeddings": get("tie_word_embeddings", True, bool),
        "mlp": "gelu",
        "norm": "layernorm",
        "bias": True,
        "fused_qkv": True,
    }


def _bert(get: _Reader, doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "family": "encoder",
        "layers": get("num_hidden_layers"),
        "hidden": get("hidden_size"),
        "heads": get("num_attention_heads"),
        "intermediate": get("intermediate_size"),
        "vocab": get("vocab_size"),
        "positions": get("max_position_embeddings"),
        "max_seq_len": get("max_position_embeddings"),
        "type_vocab": get("type_vocab_size", 2),
        "pooler": True,
        "head": "mlm",
        "mlp": "gelu",
        "norm": "layernorm",
        "bias": True,
    }


def _vit(get: _Reader, doc: Mapping[str, Any]) -> dict[str, Any]:
    labels = doc.get("id2label")
    classes = len(labels) if isinstance(labels, dict) and labels else None
    return {
        "family": "vit",
        "layers": get("num_hidden_layers"),
        "hidden": get("hidden_size"),
        "heads": get("num_attention_heads"),
        "intermediate": get("intermediate_size"),
        "image_size": get("image_size"),
        "patch_size": get("patch_size"),
        "channels": get("num_channels", 3),
        "num_classes": classes,
        "head": "classifier" if classes else "none",
        "mlp": "gelu",
        "norm": "layernorm",
        "bias": True,
    }
