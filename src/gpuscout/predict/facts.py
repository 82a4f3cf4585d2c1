"""What the predictor asks of a measured workload, read from its record.

A figure's workload is looked up in ``workloads.registry`` by the name stored with it.
A name this gpuscout does not know (a run imported from a newer one, a plugin not
registered now) gets the plain training defaults rather than an error: its figure is
still a measured step. ``model`` is predict's own name for a model nobody measured
(``predict.derived``), which no record describes.
"""

from __future__ import annotations

from gpuscout.errors import UsageError
from gpuscout.fit.spec import ModelSpec
from gpuscout.workloads import registry
from gpuscout.workloads.spec import RunFacts, WorkloadSpec

UNMEASURED = "model"  # the workload name of a model nobody measured (predict.derived)
# An unmeasured model's decoding is served with CUDA graphs, as gpt-fast and vLLM do.
UNMEASURED_GRAPHED = ("decode",)


def spec(workload: str) -> WorkloadSpec | None:
    return None if workload == UNMEASURED else registry.find(workload)


def prior_kind(workload: str, variant: str | None) -> str:
    """The key of ``defaults.PRIORS`` for one figure of ``workload``."""
    s = spec(workload)
    return s.prior_for(variant) if s is not None else "train"


def graphed_on_gpu(workload: str, kind: str) -> bool:
    """Whether the tuned GPU program of ``workload`` replays CUDA graphs for work of
    ``kind`` (one host launch a step)."""
    if workload == UNMEASURED:
        return kind in UNMEASURED_GRAPHED
    s = spec(workload)
    return s is not None and kind in s.graphed_on_gpu


def bf16_on_gpu(workload: str) -> bool:
    """Whether its tuned GPU program autocasts to bf16 where the GPU has it natively."""
    s = spec(workload)
    return s is not None and s.bf16_on_gpu


def bf16_workloads() -> list[str]:
    return sorted(s.name for s in registry.specs() if s.bf16_on_gpu)


def known(workload: str) -> WorkloadSpec:
    """The record of a measured workload the advice is asked about; UsageError when
    this gpuscout has none for it."""
    s = spec(workload)
    if s is None:
        raise UsageError(
            f"no workload called {workload!r} is known here",
            f"known workloads: {', '.join(registry.names())}",
        )
    return s


def run_size(workload: str) -> tuple[float, str]:
    """(samples, words): what one run of ``workload`` is when the user does not say."""
    size = known(workload).run_size
    return float(size.samples), size.words


def describe(workload: str, facts: RunFacts) -> str:
    return known(workload).describe(facts)


def primary_variant(workload: str) -> str | None:
    s = spec(workload)
    return s.primary_variant if s is not None else None


def optimizer(workload: str) -> str:
    s = spec(workload)
    return s.optimizer if s is not None else "adamw"


def model_spec(workload: str, model: str | None) -> ModelSpec:
    """The model-table row of a measured workload's model (UnknownNameError if none)."""
    return registry.get(workload).model_spec(model)


def builder_of(model_id: str) -> str | None:
    """The first workload (in list order) that builds the model-table row ``model_id``."""
    return next((s.name for s in registry.specs() if model_id in s.models.values()), None)
