"""Adding a workload is one file: a toy workload written to a temporary folder (outside any
package on the path), registered through the public registry only, is run in an isolated
worker, stored, reported, predicted onto a catalog GPU and advised on, with no other file
of gpuscout changed. docs/architecture.md walks through the same steps."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from gpuscout.catalog import find_gpu
from gpuscout.errors import UnknownNameError
from gpuscout.predict import advise, predict_results
from gpuscout.report import build_report
from gpuscout.store import Store
from gpuscout.workloads import registered, registry, run_workloads

pytest.importorskip("torch")

TOY = textwrap.dedent(
    '''
    """A toy workload: the model table's 784-128-10 MLP on random vectors, plain SGD."""

    from __future__ import annotations

    from typing import Any

    from gpuscout.workloads.base import WorkloadConfig
    from gpuscout.workloads.instruments import Instruments
    from gpuscout.workloads.spec import DeviceSizes, RunFacts, RunSize, Sizes, WorkloadSpec
    from gpuscout.workloads.training import measure_training


    class Toy:
        def __init__(self, cfg: WorkloadConfig, device: Any) -> None:
            import torch

            dims = WORKLOAD.model_spec(cfg.model).mlp_dims
            sizes = WORKLOAD.sizes.pick(gpu=cfg.on_gpu, quick=cfg.quick)
            self.cfg, self.device = cfg, device
            self.batch = self.samples_per_step = cfg.batch_size or sizes.batch
            torch.manual_seed(cfg.seed)
            nn = torch.nn
            self.eager = self.model = nn.Sequential(
                nn.Linear(dims[0], dims[1]), nn.ReLU(), nn.Linear(dims[1], dims[2])
            ).to(device)
            self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01)
            weights = dims[0] * dims[1] + dims[1] * dims[2]
            self.flops_per_step = 6.0 * weights * self.batch  # forward 2, backward 4
            self.bytes_per_step = 4 * 4 * weights  # weights read twice, grads written and read
            self.bytes_per_step_bf16 = self.bytes_per_step // 2
            self.host_ops_per_step = 12
            self.compiled, self.compile_error = False, None
            self.x = torch.randn(4 * self.batch, dims[0], device=device)
            self.y = torch.randint(0, dims[2], (4 * self.batch,), device=device)
            self.i = 0

        def make_batch(self) -> Any:
            self.i = (self.i + 1) % 4
            rows = slice(self.i * self.batch, (self.i + 1) * self.batch)
            return self.x[rows], self.y[rows]

        def step(self, batch: Any) -> Any:
            import torch.nn.functional as F

            loss = F.cross_entropy(self.model(batch[0]), batch[1])
            loss.backward()
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            return loss.detach()

        def uncompile(self) -> None:
            pass

        def describe(self) -> dict[str, Any]:
            return {"model": self.cfg.model or "toy", "batch_size": self.batch, "dtype": "fp32"}


    def build(cfg: WorkloadConfig, device: Any = None) -> Toy:
        import torch

        return Toy(cfg, torch.device(cfg.device) if device is None else device)


    def run(cfg: WorkloadConfig, inst: Instruments) -> list[dict[str, Any]]:
        wl = build(cfg, inst.device)
        steps = cfg.steps or WORKLOAD.sizes.pick(gpu=cfg.on_gpu, quick=cfg.quick).steps or 1
        return [measure_training(wl, cfg, inst, steps=steps, unit=WORKLOAD.unit)]


    def describe(b: RunFacts) -> str:
        return f"toy (a {b.model} trained on random vectors, batch {b.batch_size})"


    WORKLOAD = WorkloadSpec(
        name="toy",
        task="train",
        description="a toy MLP on random vectors",
        unit="samples/s",
        run_size=RunSize(1_000_000, "a million random vectors"),
        models={"toy": "mlp"},
        sizes=DeviceSizes(gpu=Sizes("toy", 64, steps=3), cpu=Sizes("toy", 16, steps=3)),
        build=build,
        run=run,
        describe=describe,
        prior="train",
        timeout_s=300.0,
        order=500,
        optimizer="sgd",
    )
    '''
)


def load(path: Path) -> ModuleType:
    """The toy module from its file, as a plugin would load it: not importable by name."""
    spec = importlib.util.spec_from_file_location("gpuscout_toy_workload", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GPUSCOUT_OFFLINE", "1")
    path = tmp_path / "plugins" / "toy_workload.py"
    path.parent.mkdir()
    path.write_text(TOY)
    module = load(path)
    assert "gpuscout_toy_workload" not in sys.modules  # the worker cannot import it by name
    return module


def test_a_toy_workload_runs_is_stored_reported_predicted_and_advised(toy: ModuleType) -> None:
    h100 = find_gpu("h100-sxm5-80gb")
    with registered(toy.WORKLOAD):
        assert registry.names()[-1] == "toy" and "toy" not in registry.quick_names()
        results = run_workloads("toy", "cpu", "tuned", steps=3, options={"min_time_s": 0.0})
        (r,) = results
        assert (r.status, r.name, r.unit, r.error) == ("ok", "toy/tuned", "samples/s", None)
        assert r.extra["workload"] == "toy" and r.extra["params"] == 784 * 128 + 128 * 10 + 138

        with Store(":memory:") as store:
            with store.run("workload", {"host": "lab", "cpu_model": "a CPU"}) as run:
                run.add_results(results)
            (stored,) = store.results(run.id)
            assert (stored.name, stored.figure) == (r.name, r.figure)

            report = build_report(store)
            rows = report.workloads
            assert isinstance(rows, tuple)
            assert [(w.workload, w.impl, w.device) for w in rows] == [("toy", "tuned", "cpu")]
            assert any(line.startswith("toy:") for line in report.summary)

        prediction = predict_results(results, {"cpu_model": "a CPU"}, [h100])
        (projection,) = prediction.projections
        assert (projection.workload, projection.gpu_id) == ("toy", h100.id)
        assert projection.throughput > 0 and projection.throughput_unit == "samples/s"
        assert projection.fits is True  # fit sized the table's MLP row at batch 16 with SGD

        advice = advise(results=results, workload="toy", gpus=[h100])
        assert advice.workload == "toy (a toy trained on random vectors, batch 16)"
        assert advice.samples_per_run == 1_000_000
        # (after a caveat, when other processes disturbed the measurement)
        assert f"{advice.workload}, one run = a million random vectors: " in advice.verdict
    with pytest.raises(UnknownNameError):  # registered for the block only
        registry.get("toy")


def test_a_name_is_registered_once(toy: ModuleType) -> None:
    with registered(toy.WORKLOAD), pytest.raises(ValueError, match="registered already"):
        registry.register(toy.WORKLOAD)
    with pytest.raises(ValueError, match="registered already"):
        registry.register(registry.get("mlp"))
