"""``WorkloadSpec``: everything gpuscout asks of a workload, in one typed, frozen record.

A workload module (mlp.py, for one) ends with ``WORKLOAD = WorkloadSpec(...)`` beside
its ``build`` and ``run``; ``workloads.registry`` finds it there, or takes one from
``registry.register`` for a workload that lives elsewhere. The suite, the multi-GPU
scaling, the predictor, the advice, the verdict and the report read the record and name
no workload themselves, so a new workload is one file (docs/architecture.md says how).

The record is checked when it is made: a broken workload module fails on import, loudly,
rather than costing a figure later. Importing this module imports no framework.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from gpuscout.errors import UnknownNameError
from gpuscout.fit.models import find_model
from gpuscout.fit.spec import ModelSpec
from gpuscout.workloads.base import WorkloadConfig
from gpuscout.workloads.instruments import Instruments

TASKS: Final = ("train", "infer")
PARALLEL: Final = ("ddp", "fsdp")
# The kinds of work the predictor has published priors for (predict.defaults.PRIORS).
PRIORS: Final = ("train", "train-cnn", "decode", "prefill")
_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_-]*$")

# run(cfg, inst) -> one dict per figure: {"variant", "figure", "unit", "extra"[, "stats"]}
RunFn = Callable[[WorkloadConfig, Instruments], list[dict[str, Any]]]


class RunFacts(Protocol):
    """What the advice reads to describe a measured figure (predict's Basis has it)."""

    @property
    def model(self) -> str | None: ...
    @property
    def batch_size(self) -> int | None: ...
    @property
    def seq_len(self) -> int | None: ...
    @property
    def image_size(self) -> int | None: ...


@dataclass(frozen=True)
class Sizes:
    """A workload's default sizes on one device class in one mode (a flag overrides each).

    ``lengths``: the image sides or sequence lengths it measures, one figure each (the
    encoder measures sequence 128 and 512); ``extra``: sizes only this workload has
    (the llm's ``new_tokens`` and ``reps``).
    """

    model: str  # a key of WorkloadSpec.models
    batch: int
    steps: int | None = None  # timed steps; None where whole epochs are timed
    epochs: int | None = None
    lengths: tuple[int, ...] = ()
    extra: Mapping[str, int] = field(default_factory=dict)

    @property
    def length(self) -> int | None:
        return self.lengths[0] if self.lengths else None


@dataclass(frozen=True)
class DeviceSizes:
    """Sizes per device class and mode; a quick size left None is the full one."""

    gpu: Sizes
    cpu: Sizes
    gpu_quick: Sizes | None = None
    cpu_quick: Sizes | None = None

    def pick(self, *, gpu: bool, quick: bool) -> Sizes:
        quick_sizes = (self.gpu_quick if gpu else self.cpu_quick) if quick else None
        return quick_sizes or (self.gpu if gpu else self.cpu)

    def every(self) -> tuple[Sizes, ...]:
        return tuple(s for s in (self.gpu, self.cpu, self.gpu_quick, self.cpu_quick) if s)


@dataclass(frozen=True)
class Scaling:
    """How `gpuscout bench dist` measures the workload across processes.

    ``parallel`` "ddp": the workload's own tuned step under DistributedDataParallel
    (``build(cfg, device)`` must give ``make_batch``, ``step``, ``eager`` and
    ``samples_per_step``); "fsdp": its model, a Llama-shaped decoder from the table,
    sharded with FSDP2. ``sizes`` are per rank; ``length`` is the image side or sequence
    length each rank trains at.
    """

    parallel: str
    sizes: DeviceSizes
    default: bool = True  # in the set `bench dist` measures when none is named


@dataclass(frozen=True)
class RunSize:
    """What one run of the workload is, when the user does not say (advise --samples)."""

    samples: int
    words: str  # "one ImageNet-1k epoch (1,281,167 images)"


@dataclass(frozen=True)
class Comparison:
    """A third-party program measured beside the tuned version (``--compare``).

    ``run(cfg)`` runs in the worker and returns figures as a workload's ``run`` does;
    the Results carry ``package`` as their implementation.
    """

    package: str  # the importable package it needs ("keras"); "skipped" without it
    program: str  # how the verdict names it ("the Keras tutorial program")
    run: Callable[[WorkloadConfig], list[dict[str, Any]]]


@dataclass(frozen=True)
class RealData:
    """The real dataset a workload trains on by default: fetched once by the suite
    before the workers start, and named when a stand-in replaced it."""

    dataset: str  # gpuscout.data's name for it ("fashion-mnist")
    label: str  # how people write it ("Fashion-MNIST")
    model_words: str  # the model, as a report sentence starts ("The MLP")


@dataclass(frozen=True)
class WorkloadSpec:
    """One workload: what it is, how big it runs, and what the rest of gpuscout needs.

    Results: ``name/impl[/variant]``, each with ``extra["workload"] = name``.
    Predictor: each figure is split by the prior of its kind (``prior``, or
    ``variant_priors[variant]``): "train", "train-cnn", "decode" or "prefill";
    ``graphed_on_gpu`` lists the kinds whose tuned GPU program replays CUDA graphs (one
    host launch a step); ``bf16_on_gpu``: its tuned GPU program autocasts to bf16 where
    the GPU has it natively. ``primary_variant`` is the figure that stands for it in the
    verdict and the advice (None: the first variant measured).
    """

    name: str
    task: str  # "train" or "infer"
    description: str  # one line, for lists
    unit: str  # of its main figure ("images/s")
    run_size: RunSize
    models: Mapping[str, str]  # the models it builds: its name for each -> model-table id
    sizes: DeviceSizes
    build: Callable[..., Any]  # build(cfg, device, ...): the model ready to step
    run: RunFn  # the whole measurement, inside an isolated worker
    describe: Callable[[RunFacts], str]  # a measured figure in words, for the advice
    prior: str
    timeout_s: float  # the worker's limit for a full run
    order: int = 1000  # where it comes in lists ("all", --help): lower first
    length_name: str | None = None  # "image_size" (an option) or "seq_len" (a flag)
    quick: bool = False  # in `gpuscout run`'s quick set
    quick_cpu: Mapping[str, int] = field(default_factory=dict)  # config fields, quick on a CPU
    scaling: Scaling | None = None  # None: not measured across GPUs
    variant_priors: Mapping[str, str] = field(default_factory=dict)
    graphed_on_gpu: tuple[str, ...] = ()
    bf16_on_gpu: bool = False
    primary_variant: str | None = None
    optimizer: str = "adamw"  # what `fit` assumes it trains with
    comparison: Comparison | None = None
    data: RealData | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError(f"workload {self.name!r}: " + "; ".join(problems))

    @property
    def module(self) -> str:
        """The module that holds ``run`` (what a worker process imports)."""
        return str(self.run.__module__)

    @property
    def default_model(self) -> str:
        """The model it builds on a GPU by default (what `fit` and predict assume)."""
        return self.sizes.gpu.model

    def check_model(self, model: str | None) -> str:
        """``model`` (default: the GPU's), or UnknownNameError naming the close ones."""
        if model is None:
            return self.default_model
        if model not in self.models:
            close = difflib.get_close_matches(model, list(self.models), 3, 0.5)
            raise UnknownNameError(f"{self.name} model", model, close, list(self.models))
        return model

    def model_spec(self, model: str | None = None) -> ModelSpec:
        """The model-table row of ``model`` (the workload's name for it; None: default)."""
        return find_model(self.models[self.check_model(model)])

    def prior_for(self, variant: str | None) -> str:
        return self.variant_priors.get(variant or "", self.prior)


def _problems(spec: WorkloadSpec) -> list[str]:
    """What is wrong with ``spec`` (empty when nothing is); the model table is not read
    here, so a module imports cheaply (the contract test reads it for every workload)."""
    out = []
    if not _NAME_RE.match(spec.name):
        out.append("a name is lower-case letters, digits, - and _")
    if spec.task not in TASKS:
        out.append(f"task {spec.task!r} is not one of {', '.join(TASKS)}")
    if not spec.models:
        out.append("it builds no model")
    if spec.scaling is not None and spec.scaling.parallel not in PARALLEL:
        out.append(f"parallel {spec.scaling.parallel!r} is not one of {', '.join(PARALLEL)}")
    if not spec.timeout_s > 0 or not spec.run_size.samples > 0:
        out.append("timeout_s and run_size.samples must be more than zero")
    if not callable(spec.build) or not callable(spec.run) or not callable(spec.describe):
        out.append("build, run and describe must be functions")
    return out + _unknown_names(spec)


def _unknown_names(spec: WorkloadSpec) -> list[str]:
    """Sizes naming a model it does not build; priors predict does not have."""
    sizes = [*spec.sizes.every(), *(spec.scaling.sizes.every() if spec.scaling else ())]
    models = sorted({s.model for s in sizes} - set(spec.models))
    priors = {spec.prior, *spec.variant_priors.values(), *spec.graphed_on_gpu} - set(PRIORS)
    return [f"size model {m!r} is not one of its models" for m in models] + [
        f"prior {p!r} is not one of {', '.join(PRIORS)}" for p in sorted(priors)
    ]
