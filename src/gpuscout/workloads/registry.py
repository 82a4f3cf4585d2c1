"""Workloads by name. Modules are imported on first use; none imports torch at import."""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType

from gpuscout.errors import UnknownNameError

# name -> module; the order is the order `--help` and `all` use.
WORKLOADS = {
    "mlp": "gpuscout.workloads.mlp",
    "cnn": "gpuscout.workloads.cnn",
    "encoder": "gpuscout.workloads.encoder",
    "llm": "gpuscout.workloads.llm",
}
# The optional third-party programs each workload is compared with (issue 4, part 5).
COMPARISONS = {"mlp": "keras", "llm": "transformers"}


def names() -> list[str]:
    return list(WORKLOADS)


def check(name: str) -> str:
    key = name.strip().lower()
    if key not in WORKLOADS:
        raise UnknownNameError(
            "workload",
            name,
            difflib.get_close_matches(key, list(WORKLOADS), 3, 0.5),
            list(WORKLOADS),
        )
    return key


def get(name: str) -> ModuleType:
    """The workload's module: ``build(cfg)``, ``run(cfg, inst)``, ``MODELS``, ..."""
    return importlib.import_module(WORKLOADS[check(name)])


def check_model(name: str, model: str | None) -> None:
    """UnknownNameError (exit 2) for a model the workload does not have."""
    if model is None:
        return
    models: tuple[str, ...] = get(name).MODELS
    if model not in models:
        raise UnknownNameError(
            f"{name} model", model, difflib.get_close_matches(model, list(models), 3, 0.5), models
        )
