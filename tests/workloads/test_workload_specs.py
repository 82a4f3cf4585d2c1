"""Every workload's record holds what the rest of gpuscout asks of it: valid fields,
models that are rows of the model table, torch models with the table's parameter counts,
and one CPU run at its smallest size. Parametrized over the registry, so a new workload
is checked by adding it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gpuscout.fit import FitRequest
from gpuscout.fit.models import find_model
from gpuscout.predict.defaults import PRIORS
from gpuscout.workloads import registry
from gpuscout.workloads.spec import Sizes, WorkloadSpec

torch = pytest.importorskip("torch")

NAMES = registry.names()
MODELS = [(name, model) for name in NAMES for model in registry.get(name).models]


@pytest.fixture(autouse=True)
def _offline_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No network and no writes outside a temporary gpuscout home."""
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("GPUSCOUT_OFFLINE", "1")


def test_the_four_come_first_in_their_order() -> None:
    assert NAMES[:4] == ["mlp", "cnn", "encoder", "llm"]
    assert registry.quick_names() == ("mlp", "cnn")  # what `gpuscout run` measures


@pytest.mark.parametrize("name", NAMES)
def test_the_record_is_valid(name: str) -> None:
    spec = registry.get(name)
    assert isinstance(spec, WorkloadSpec) and spec.name == name
    assert spec.task in ("train", "infer") and spec.unit.endswith("/s")
    assert spec.description and spec.run_size.samples > 0 and spec.run_size.words
    assert spec.default_model in spec.models
    kinds = {spec.prior, *spec.variant_priors.values(), *spec.graphed_on_gpu}
    assert kinds <= set(PRIORS)  # the predictor has a prior for each kind
    sizes: list[Sizes] = [*spec.sizes.every()]
    if spec.scaling is not None:
        assert spec.scaling.parallel in ("ddp", "fsdp")
        sizes += spec.scaling.sizes.every()
        assert all(s.length for s in spec.scaling.sizes.every())  # a rank's image or sequence
    assert all(s.model in spec.models and s.batch >= 1 for s in sizes)
    assert (spec.task == "infer") == spec.prior.startswith(("decode", "prefill"))
    assert spec.module == f"gpuscout.workloads.{name}"  # one workload, one file


@pytest.mark.parametrize("name", NAMES)
def test_every_model_is_a_row_of_the_model_table(name: str) -> None:
    spec = registry.get(name)
    for model, row_id in spec.models.items():
        assert spec.model_spec(model) == find_model(row_id)


def test_a_broken_record_fails_when_it_is_made() -> None:
    mlp = registry.get("mlp")
    with pytest.raises(ValueError, match="not one of its models"):
        dataclasses.replace(mlp, models={"other": "mlp"})
    with pytest.raises(ValueError, match="prior 'guess'"):
        dataclasses.replace(mlp, prior="guess")
    with pytest.raises(ValueError, match="task"):
        dataclasses.replace(mlp, task="serve")


@pytest.mark.parametrize(("name", "model"), MODELS, ids=[f"{n}-{m}" for n, m in MODELS])
def test_the_torch_model_has_the_tables_parameter_count(name: str, model: str) -> None:
    """Built on the meta device (no memory, even for 8B) by the builders the workloads and
    `fit --measure` share; counted by torch, against what fit computes from the row."""
    from gpuscout.fit.measure.build import build_model

    row = registry.workload_model(name, model)
    req = FitRequest(row, mode="infer", dtype="fp32", seq_len=8 if row.is_transformer else None)
    built = build_model(req, torch.device("meta"))
    assert sum(p.numel() for p in built.parameters()) == row.params


def _smallest(spec: WorkloadSpec) -> str:
    return min(spec.models, key=lambda m: spec.model_spec(m).params)


@pytest.mark.parametrize("name", NAMES)
def test_one_cpu_run_at_the_smallest_size(name: str) -> None:
    """The workload's own build and run, in process, at its smallest model and sizes; its
    figure comes in its unit, and the model it built has the table's parameter count."""
    from gpuscout.workloads import run_workloads

    spec = registry.get(name)
    model = _smallest(spec)
    options: dict[str, Any] = {"min_time_s": 0.0}
    length: dict[str, Any] = {}
    if spec.length_name == "seq_len":
        length = {"seq_len": 16}
    elif spec.length_name is not None:
        options[spec.length_name] = 32
    results = run_workloads(
        name,
        "cpu",
        "tuned",
        quick=True,
        isolate=False,
        model=model,
        batch_size=2,
        steps=1,
        epochs=1,
        limit_samples=256,
        options=options,
        db=":memory:",
        **length,
    )
    ok = [r for r in results if r.status == "ok"]
    assert ok and len(ok) == len(results), [r.error for r in results]
    assert results[0].unit == spec.unit and results[0].extra["workload"] == name
    assert {r.extra["params"] for r in ok} == {spec.model_spec(model).params}


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("raise RuntimeError('a typo in a workload module')", RuntimeError),
        ("WORKLOAD = 42", TypeError),
    ],
    ids=["import-fails", "not-a-record"],
)
def test_a_broken_workload_module_fails_discovery_loudly(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, source: str, error: type
) -> None:
    import pkgutil

    (tmp_path / "broken_workload.py").write_text(source + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [pkgutil.ModuleInfo(None, "broken_workload", False)]  # type: ignore[arg-type]
    monkeypatch.setattr(pkgutil, "iter_modules", lambda *a: found)
    monkeypatch.setattr(registry, "_discovered", None)  # discover again, put back after
    with pytest.raises(error):
        registry.names()
