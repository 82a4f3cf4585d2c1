"""The GPU-only decisions of the workloads, made on the CPU with torch.cuda stood in for:
bf16 only where the hardware has it, torch.compile's arguments and its compiled step,
the measured section starting on an idle device, and no timing of a non-finite loss."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from gpuscout.workloads import base, cnn, encoder, training  # noqa: E402
from gpuscout.workloads.base import WorkloadConfig, amp_dtype, index_batches  # noqa: E402
from gpuscout.workloads.instruments import Instruments  # noqa: E402

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("capability", "want"), [((7, 5), None), ((8, 0), "bf16"), ((9, 0), "bf16")]
)
def test_bf16_autocast_only_on_ampere_or_newer(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], want: str | None
) -> None:
    asked: list[Any] = []

    def get_capability(device: Any = None) -> tuple[int, int]:
        asked.append(device)
        return capability

    monkeypatch.setattr(torch.cuda, "get_device_capability", get_capability)
    # torch's own check says yes on a T4 too (bf16 emulated): it must not be what decides.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    got = amp_dtype(WorkloadConfig("cnn", "cuda:1", "tuned"))
    assert (None if got is None else base.dtype_name(got)) == want
    assert asked == ["cuda:1"]  # the workload's device, not the current one
    assert amp_dtype(WorkloadConfig("cnn", "cuda:1", "reference")) is None


def test_compile_is_static_shaped_with_the_configured_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_compile(model: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = torch.nn.Linear(2, 2)
    on_gpu = WorkloadConfig("cnn", "cuda:0", "tuned")
    training.maybe_compile(model, on_gpu)
    training.maybe_compile(model, on_gpu.replace(options={"compile_mode": "max-autotune"}))
    training.maybe_compile(model, on_gpu.replace(options={"compile_backend": "aot_eager"}))
    assert calls == [
        {"mode": "default", "dynamic": False},
        {"mode": "max-autotune", "dynamic": False},
        {"backend": "aot_eager", "dynamic": False},
    ]
    assert training.maybe_compile(model, on_gpu.replace(impl="reference")) is model
    assert training.maybe_compile(model, on_gpu.replace(quick=True)) is model
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("module", "name", "kw"),
    [
        (encoder, "encoder", {"model": "bert-tiny", "batch_size": 4, "seq_len": 16}),
        (cnn, "cnn", {"model": "resnet-tiny", "batch_size": 4, "channels_last": True}),
    ],
)
def test_the_compiled_step_trains_as_the_eager_one(module: Any, name: str, kw: Any) -> None:
    """The tuned step through torch.compile (the aot_eager backend: Dynamo's graph and
    autograd's compiled backward, no C++ compiler), measured as a GPU run measures it."""
    options = {"min_time_s": 0.0, "image_size": 32, "channels_last": kw.pop("channels_last", False)}
    out = {}
    for compiled in (False, True):
        opts = options | ({"compile_backend": "aot_eager"} if compiled else {})
        c = WorkloadConfig(name, "cpu", "tuned", compile=compiled, steps=2, options=opts, **kw)
        wl = module.build(c, CPU)
        assert wl.compiled is compiled
        with Instruments(CPU) as inst:
            out[compiled] = training.measure_training(wl, c, inst, steps=2, unit="x")["extra"]
    assert out[True]["compile"] is True and out[True]["compile_error"] is None
    for key in ("loss_first", "loss_check"):
        assert out[True][key] == pytest.approx(out[False][key], rel=1e-4)


class _NanStep:
    samples_per_step, flops_per_step, bytes_per_step, host_ops_per_step = 1, 1.0, 1, 1
    bytes_per_step_bf16 = 1
    compiled = False
    compile_error: str | None = None
    eager = torch.nn.Linear(1, 1)

    def __init__(self) -> None:
        self.steps = 0

    def make_batch(self) -> Any:
        return None

    def step(self, batch: Any) -> Any:
        self.steps += 1
        return torch.tensor(float("nan") if self.steps >= 2 else 1.0)

    def uncompile(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {}


def test_a_non_finite_loss_is_refused_before_anything_is_timed() -> None:
    wl = _NanStep()
    c = WorkloadConfig("cnn", "cpu", "tuned", options={"min_time_s": 0.0})
    with Instruments(CPU) as inst, pytest.raises(RuntimeError, match="not finite"):
        training.measure_training(wl, c, inst, steps=3, unit="x")
    assert wl.steps == 3  # the cold step and two more: no timed step ran


def test_a_cuda_section_starts_on_an_idle_device_and_reads_its_own_peak(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: log.append("sync"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: log.append("reset"))

    def peak(device: Any = None) -> int:
        log.append("peak")
        return 7

    monkeypatch.setattr(torch.cuda, "max_memory_allocated", peak)
    with Instruments(torch.device("cuda:0")) as inst, inst.section() as sec:
        log.append("work")
    assert log == ["sync", "reset", "work", "peak"]
    assert sec.peak_mem_bytes == 7


def test_device_index_batches_are_the_host_ones() -> None:
    host, dev = index_batches(10, 3, 5), index_batches(10, 3, 5, device=CPU)
    for _ in range(7):  # past a pass: a fresh permutation, the same on both
        assert torch.equal(next(host), next(dev))


def test_an_mlp_run_with_a_nan_epoch_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from gpuscout.workloads import mlp

    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path))
    monkeypatch.setenv("GPUSCOUT_OFFLINE", "1")
    # run_epoch: what the timed section calls (its loss stays on the device until after)
    monkeypatch.setattr(mlp.Tuned, "run_epoch", lambda self, order: torch.tensor(float("nan")))
    c = WorkloadConfig("mlp", "cpu", "tuned", epochs=1, limit_samples=64)
    with Instruments(CPU) as inst, pytest.raises(RuntimeError, match="not finite"):
        mlp.run(c, inst)
