"""Model shapes: the shipped data file (models.toml), lookup by name, and a model given
as a Hugging Face ``config.json`` (read by gpuscout.fit.families).

Every row is validated when first read: required keys per family, types, allowed
values, and a parameter count (computed from the shape) within 2% of the published one,
because a wrong shape would silently move every estimate.
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

from gpuscout.errors import CatalogError, UnknownNameError, UsageError
from gpuscout.fit.families import parse_hf_config, read_hf_config
from gpuscout.fit.spec import FAMILIES, ModelSpec, finish_spec

__all__ = [
    "MODELS_FILE",
    "PARAMS_TOLERANCE",
    "find_model",
    "finish_spec",
    "list_models",
    "load_model",
    "parse_hf_config",
    "parse_models",
    "read_hf_config",
]

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
    "moe_intermediate": ("int", ""),
    "shared_intermediate": ("int0", ""),
    "shared_expert_gate": ("bool", ""),
    "dense_layers": ("int0", ""),
    "router_bias": ("bool", ""),
    "kv_lora_rank": ("int", ""),
    "q_lora_rank": ("int", ""),
    "qk_rope_head_dim": ("int", ""),
    "qk_nope_head_dim": ("int", ""),
    "v_head_dim": ("int", ""),
    "qk_norm": ("bool", ""),
    "sandwich_norm": ("bool", ""),
    "o_bias": ("bool", ""),
    "mlp_bias": ("bool", ""),
    "sliding_window": ("int", ""),
    "sliding_layers": ("int0", ""),
    "vision_params": ("int0", ""),
    "quant": ("str", ""),
    "stored_bytes": ("int", ""),
    "stored_layer_bytes": ("ints", ""),
    "stored_embedding_bytes": ("int0", ""),
    "stored_head_bytes": ("int0", ""),
    "warnings": ("strs", ""),
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
