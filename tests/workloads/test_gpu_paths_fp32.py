"""fp32 means IEEE fp32: every workload run in the worker has TF32 off for cuBLAS and
cuDNN (the CPU build has the same switches), and the settings are put back after, both
PyTorch's legacy flags and (PyTorch >= 2.9) its per-backend ``fp32_precision``."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from gpuscout.workloads import child, cnn, registry  # noqa: E402
from gpuscout.workloads.base import WorkloadConfig, strict_fp32, tf32_convolutions  # noqa: E402

CPU = torch.device("cpu")
backends: Any = torch.backends


def new_api() -> dict[str, str]:
    """Every per-backend fp32_precision setting this torch has (none before 2.9)."""
    out = {}
    for name in ("", "cuda.matmul", "cudnn", "cudnn.conv", "cudnn.rnn", "mkldnn", "mkldnn.matmul"):
        knob = backends
        for part in filter(None, name.split(".")):
            knob = getattr(knob, part, None)
        if knob is not None and hasattr(knob, "fp32_precision"):
            out[name or "global"] = knob.fp32_precision
    return out


def flags() -> dict[str, Any]:
    """The legacy readings (what the brief's switches are) beside the new API's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy getters are deprecated in 2.9+
        return {
            "matmul_precision": torch.get_float32_matmul_precision(),
            "cuda_matmul_tf32": bool(backends.cuda.matmul.allow_tf32),
            "cudnn_tf32": bool(backends.cudnn.allow_tf32),
            "new": new_api(),
        }


@pytest.fixture(autouse=True)
def _tf32_on() -> Iterator[None]:
    """TF32 on everywhere before each test, as an imported library may leave it (and
    as cuDNN's default has it); the process's own settings are put back after."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = (torch.get_float32_matmul_precision(), backends.cudnn.allow_tf32, new_api())
        torch.set_float32_matmul_precision("high")
        backends.cudnn.allow_tf32 = True
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.set_float32_matmul_precision(saved[0])
        backends.cudnn.allow_tf32 = saved[1]


def assert_ieee(state: dict[str, Any]) -> None:
    assert state["matmul_precision"] == "highest"
    assert state["cuda_matmul_tf32"] is False and state["cudnn_tf32"] is False
    assert "tf32" not in state["new"].values(), state["new"]


def test_strict_fp32_turns_tf32_off_and_puts_every_setting_back() -> None:
    before = flags()
    assert before["cuda_matmul_tf32"] and before["cudnn_tf32"]  # the fixture's TF32
    with strict_fp32():
        assert_ieee(flags())
        assert not tf32_convolutions()
    assert flags() == before
    assert tf32_convolutions()


def test_strict_fp32_restores_after_an_exception() -> None:
    before = flags()
    with pytest.raises(ValueError), strict_fp32():
        raise ValueError("a run that fails")
    assert flags() == before


@pytest.mark.skipif(
    not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="PyTorch < 2.9"
)
def test_strict_fp32_restores_a_setting_made_through_the_new_api_only() -> None:
    """Someone set cuBLAS's new-API precision alone: the legacy reading is then refused
    ("mix of the legacy and new APIs"), and the mixed state is what comes back."""
    backends.cuda.matmul.fp32_precision = "tf32"
    try:
        before = new_api()
        with strict_fp32():
            assert_ieee(flags())
        assert new_api() == before
    finally:
        torch.set_float32_matmul_precision("high")


@pytest.mark.parametrize("impl", ["reference", "tuned"])
@pytest.mark.parametrize("name", registry.names())
def test_every_workload_runs_in_ieee_fp32_inside_the_worker(
    monkeypatch: pytest.MonkeyPatch, name: str, impl: str
) -> None:
    seen: list[dict[str, Any]] = []

    def run(cfg: WorkloadConfig, inst: Any) -> list[dict[str, Any]]:
        seen.append(flags())
        return []

    spec = dataclasses.replace(registry.get(name), run=run)
    monkeypatch.setattr(registry, "get", lambda _: spec)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # a tuned run's setup
    before = flags()
    out = child.run_one({"name": name, "device": "cpu", "impl": impl})
    assert out["figures"] == []
    (inside,) = seen
    assert_ieee(inside)
    assert flags() == before


def test_cnn_names_the_precision_its_convolutions_ran_in() -> None:
    """An fp32 cnn run on a GPU reads cuDNN's switch for its ceiling: TF32 where it was
    on (cuDNN's default), fp32 inside the worker's strict section."""
    c = WorkloadConfig(
        "cnn", "cpu", "reference", model="resnet-tiny", batch_size=2, options={"image_size": 16}
    )
    wl = cnn.build(c, CPU)
    wl.device = torch.device("cuda", 0)  # describe() only looks at the device's type
    assert wl.describe()["ceiling_precision"] == "tf32"
    with strict_fp32():
        assert wl.describe()["ceiling_precision"] == "fp32"
