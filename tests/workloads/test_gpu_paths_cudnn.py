"""The tuned cnn on a GPU autotunes cuDNN's convolution algorithms (cudnn.benchmark) for
its run, and the reference keeps PyTorch's default; checked on the CPU with the workload
and its measurement stood in for (the switch exists in the CPU build)."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from gpuscout.workloads import cnn  # noqa: E402
from gpuscout.workloads.base import WorkloadConfig  # noqa: E402
from gpuscout.workloads.instruments import Instruments  # noqa: E402

backends: Any = torch.backends


@pytest.mark.parametrize(
    ("device", "impl", "want"),
    [("cuda:0", "tuned", True), ("cuda:0", "reference", False), ("cpu", "tuned", False)],
)
def test_cudnn_autotuning_only_for_the_tuned_gpu_run(
    monkeypatch: pytest.MonkeyPatch, device: str, impl: str, want: bool
) -> None:
    seen: dict[str, bool] = {}

    def build(cfg: WorkloadConfig, device: Any = None) -> Any:
        seen["build"] = backends.cudnn.benchmark  # cuDNN's choices start with the model
        return type("Stub", (), {"s": {"steps": 1}})()

    def measure(wl: Any, cfg: WorkloadConfig, inst: Any, **kw: Any) -> dict[str, Any]:
        seen["measure"] = backends.cudnn.benchmark
        return {"variant": None, "extra": {}}

    monkeypatch.setattr(cnn, "build", build)
    monkeypatch.setattr(cnn, "measure_training", measure)
    monkeypatch.setattr(backends.cudnn, "benchmark", False)
    (result,) = cnn.run(WorkloadConfig("cnn", device, impl), Instruments(torch.device("cpu")))
    assert seen == {"build": want, "measure": want}
    assert result["extra"]["cudnn_benchmark"] is want
    assert backends.cudnn.benchmark is False  # put back after the run
