"""How a step-based training workload (cnn, encoder) is measured, in one place.

The first step runs alone and is reported as ``cold_s``: it pays for torch.compile,
cuDNN autotuning and the allocator's first growth, which a user pays once per run. If
that first step fails inside torch.compile (no compiler on the machine, an
unsupported op), the workload falls back to eager and says so, rather than report
nothing. Then a short warm-up, then ``timing.measure`` inside an instrumented section,
so the energy and memory figures cover steady-state steps only.
"""

from __future__ import annotations

from typing import Any, Protocol

from gpuscout._types import to_jsonable
from gpuscout.workloads.base import WorkloadConfig, synchronize
from gpuscout.workloads.instruments import Instruments, section_extra


class StepWorkload(Protocol):
    samples_per_step: int
    flops_per_step: float
    bytes_per_step: int  # counted by flops.training_traffic, for the predictor
    bytes_per_step_bf16: int  # the same step under bf16 autocast (a GPU's tuned program)
    host_ops_per_step: int
    eager: Any  # the uncompiled model
    compiled: bool
    compile_error: str | None

    def make_batch(self) -> Any: ...
    def step(self, batch: Any) -> Any: ...
    def uncompile(self) -> None: ...
    def describe(self) -> dict[str, Any]: ...


def measure_training(
    wl: StepWorkload, cfg: WorkloadConfig, inst: Instruments, *, steps: int, unit: str
) -> dict[str, Any]:
    """One result dict: samples/s from the median step, plus the common extras."""
    import time

    from gpuscout.timing import clock_for, measure

    device = inst.device
    last: list[Any] = []

    def one() -> None:
        last[:] = [wl.step(wl.make_batch())]

    t0 = time.perf_counter()
    try:
        one()
        synchronize(device)
    except Exception as exc:
        if not wl.compiled:
            raise
        wl.uncompile()  # keeps the step's meaning; only the speed-up is lost
        wl.compile_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        one()
        synchronize(device)
    cold_s = time.perf_counter() - t0
    first_loss = float(last[0])
    for _ in range(2):
        one()
    # The loss after exactly three steps: the timed loop below runs for a time, not a
    # count, so only this one is comparable between two implementations.
    check_loss = float(last[0])
    check_finite(first_loss, check_loss, what="training loss")
    with inst.section() as sec:
        m = measure(
            one,
            clock=clock_for(device),
            warmup=1,
            min_iters=steps,
            min_time_s=float(cfg.option("min_time_s", 1.0)),
            max_time_s=float(cfg.option("max_time_s", 60.0)),
        )
        synchronize(device)
    check_finite(float(last[0]), what="training loss after the timed steps")
    median = m.stats.median_s
    steps_in_section = 2 + m.stats.n  # measure's own cold call and warm-up, then the samples
    extra = section_extra(sec) | {
        "step_time_s": median,
        "cold_s": cold_s,
        "steps": steps_in_section,
        "loss_first": first_loss,
        "loss_check": check_loss,
        "loss_check_step": 3,
        "loss": float(last[0]),
        "flops_per_step": wl.flops_per_step,
        "bytes_per_step": wl.bytes_per_step,
        "bytes_per_step_bf16": wl.bytes_per_step_bf16,
        "host_ops_per_step": wl.host_ops_per_step,
        "params": sum(p.numel() for p in wl.eager.parameters()),
        "achieved_tflops": wl.flops_per_step / median / 1e12,
        "compile": wl.compiled,
        "compile_error": wl.compile_error,
        "energy_j_per_sample": (
            None
            if sec.energy_j is None
            else sec.energy_j / (steps_in_section * wl.samples_per_step)
        ),
    }
    extra |= wl.describe()
    return {
        "variant": None,
        "figure": wl.samples_per_step / median,
        "unit": unit,
        "stats": to_jsonable(m.stats),
        "extra": extra,
    }


def check_finite(*values: float, what: str) -> None:
    """Never time (or report) a step whose loss is NaN or infinite: a bf16 overflow or a
    broken kernel would otherwise pass as a fast result."""
    import math

    if not all(math.isfinite(v) for v in values):
        raise RuntimeError(f"{what} is not finite ({', '.join(map(str, values))})")


def maybe_compile(model: Any, cfg: WorkloadConfig, default_mode: str = "default") -> Any:
    """``torch.compile(model)`` when the policy says so, else the model itself.

    ``dynamic=False``: every batch of a run has one shape, and a second shape in the same
    process (the encoder's sequence 128, then 512) must get its own static kernels, not
    the dynamic-shape ones torch.compile switches to on a recompile by default. The
    ``compile_backend`` option exists for tests ("aot_eager" traces the same graph on a
    CPU without a C++ compiler's minutes).
    """
    import torch

    from gpuscout.workloads.base import use_compile

    if not use_compile(cfg):
        return model
    backend = str(cfg.option("compile_backend", "inductor"))
    if backend != "inductor":  # modes are inductor's: other backends refuse the keyword
        return torch.compile(model, backend=backend, dynamic=False)
    return torch.compile(model, mode=cfg.option("compile_mode", default_mode), dynamic=False)
