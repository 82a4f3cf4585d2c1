"""What bounds a profiled script, in plain words, and the fixes that matter, each with the
gain it should bring.

A step is split (medians over the observed window) into: waiting for data (the
DataLoader) and host-to-device copies; the least time its arithmetic and memory traffic
could take on this device (FLOPs / measured peak, bytes / measured bandwidth: the
roofline floor); kernel launches (kernels x the measured cost of one); and the rest
(Python, the framework's own work, kernels running below peak). Then:

- input-bound: data and copies take ``INPUT_SHARE`` of the step or more, and more than
  any other part;
- compute- or memory-bound: the step reaches ``BUSY_EFFICIENCY`` of its floor (the
  device does real arithmetic most of the time), by which floor term is larger;
- host-bound (launch and Python overhead) otherwise: the device could do the step's
  work in a small fraction of the time it takes.

Thresholds are stated here, once; the tests hold each rule and boundary.
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass

from gpuscout._types import Ceiling
from gpuscout.profile.hooks import Observations

INPUT_SHARE = 0.3
BUSY_EFFICIENCY = 0.3
BATCH_FACTOR = 4  # the "raise the batch size" fix is costed at 4x
LAUNCH_S_DEFAULT = {"cpu": 3e-6, "cuda": 8e-6}  # when the launch cost was not measured
_PRECISION = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "float64": "fp64"}


@dataclass(frozen=True)
class Split:
    """Where one step's time goes (seconds, medians)."""

    step_s: float
    p10_s: float
    p90_s: float
    data_s: float
    h2d_s: float
    compute_s: float  # FLOPs / peak
    memory_s: float  # bytes / bandwidth
    launch_s: float  # kernels x one launch
    other_s: float  # the rest: Python, the framework, kernels below peak

    @property
    def input_s(self) -> float:
        return self.data_s + self.h2d_s

    @property
    def floor_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def busy_s(self) -> float:
        """The step without its waits: what the training step itself takes."""
        return max(self.step_s - self.input_s, 1e-12)


@dataclass(frozen=True)
class Fix:
    what: str  # the change, as the user would make it
    why: str
    speedup: float  # expected steps per second after / before


@dataclass(frozen=True)
class Bottleneck:
    kind: str  # "input-bound", "compute-bound", "memory-bound", "host-bound"
    words: str  # one sentence for people
    split: Split
    precision: str
    achieved_tflops: float
    peak_fraction: float  # achieved / peak of the precision it ran in
    bytes_per_step: float
    fixes: tuple[Fix, ...]
    warnings: tuple[str, ...]


def step_bytes(obs: Observations) -> float:
    """The fewest bytes a training step moves: weights read twice (forward, backward),
    gradients written and read, weights updated, optimizer state read and written, and
    each activation written in the forward and read in the backward."""
    w = obs.work
    if w is None:
        return 0.0
    return float(6 * w.param_bytes + 2 * w.state_bytes + 2 * w.activation_bytes)


def precision_of(obs: Observations) -> str:
    w = obs.work
    dtype = (w.autocast_dtype or w.param_dtype) if w is not None else None
    return _PRECISION.get(str(dtype), "fp32")


def split_step(obs: Observations, ceilings: Ceiling) -> Split:
    times = sorted(s.time_s for s in obs.window)
    if not times or obs.work is None:
        raise ValueError("no step was observed")
    med = statistics.median
    step = med(times)
    data = med(s.data_s for s in obs.window)
    h2d = med(s.h2d_s for s in obs.window)
    peak = ceilings.tflops.get(precision_of(obs)) or ceilings.tflops.get("fp32") or math.inf
    compute = obs.work.flops / (peak * 1e12)
    bandwidth = ceilings.bandwidth_gbs
    memory = step_bytes(obs) / (bandwidth * 1e9) if bandwidth else 0.0  # unknown: no term
    kind = str(obs.device.get("type", "cpu"))
    per_launch = ceilings.launch_s or LAUNCH_S_DEFAULT.get(kind, LAUNCH_S_DEFAULT["cpu"])
    launch = obs.work.kernel_ops * per_launch
    other = max(0.0, step - data - h2d - max(compute, memory) - launch)
    p10, p90 = _quantile(times, 0.1), _quantile(times, 0.9)
    return Split(step, p10, p90, data, h2d, compute, memory, launch, other)


def _quantile(xs: list[float], q: float) -> float:
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def kind_of(split: Split) -> str:
    """The rule of the module docstring."""
    parts = {"input": split.input_s, "floor": split.floor_s, "rest": split.launch_s + split.other_s}
    if split.input_s >= INPUT_SHARE * split.step_s and max(parts, key=parts.__getitem__) == "input":
        return "input-bound"
    if split.floor_s >= BUSY_EFFICIENCY * split.busy_s:
        return "compute-bound" if split.compute_s >= split.memory_s else "memory-bound"
    return "host-bound"


def bottleneck(obs: Observations, ceilings: Ceiling, cores: int | None = None) -> Bottleneck:
    """What bounds the observed script, with its fixes and warnings; ``cores`` is how
    many CPU cores DataLoader workers could use (default: those this process may run on)."""
    split = split_step(obs, ceilings)
    kind = kind_of(split)
    precision = precision_of(obs)
    flops = obs.work.flops if obs.work is not None else 0.0
    achieved = flops / split.step_s / 1e12
    peak = ceilings.tflops.get(precision) or ceilings.tflops.get("fp32") or math.inf
    fixes = tuple(
        sorted(
            _fixes(kind, split, obs, ceilings, cores or usable_cores()), key=lambda f: -f.speedup
        )
    )
    return Bottleneck(
        kind=kind,
        words=_words(kind, split, achieved, peak),
        split=split,
        precision=precision,
        achieved_tflops=achieved,
        peak_fraction=achieved / peak,
        bytes_per_step=step_bytes(obs),
        fixes=fixes[:3],
        warnings=tuple(placement_warnings(obs)),
    )


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%"


def _words(kind: str, s: Split, achieved: float, peak: float) -> str:
    if kind == "input-bound":
        return (
            f"input-bound: {_pct(s.input_s, s.step_s)} of each step waits for data "
            f"(the DataLoader and host-to-device copies)"
        )
    if kind in ("compute-bound", "memory-bound"):
        what = "arithmetic" if kind == "compute-bound" else "memory traffic"
        return (
            f"{kind}: the step's {what} alone needs {_pct(s.floor_s, s.busy_s)} of its time "
            f"at this device's measured peak ({achieved:.3g} of {peak:.3g} TFLOPS)"
        )
    return (
        f"host-bound: the device could do each step's work in {_pct(s.floor_s, s.step_s)} of "
        f"its time; the rest is Python, kernel launches and framework overhead"
    )


def _fixes(kind: str, s: Split, obs: Observations, c: Ceiling, cores: int) -> list[Fix]:
    out: list[Fix] = []
    if s.data_s > 0.05 * s.step_s:
        out.append(_more_workers(s, obs, cores))
    if s.launch_s + s.other_s > 0.3 * s.step_s:
        out.append(_bigger_batch(s))
    if kind == "compute-bound":
        out += _lower_precision(s, obs, c)
    if obs.device.get("type") == "cuda" and s.launch_s > 0.2 * s.step_s:
        out.append(
            Fix(
                "torch.compile(model) or CUDA graphs",
                "one launch for many kernels",
                s.step_s / max(s.step_s - s.launch_s, 1e-12),
            )
        )
    return [f for f in out if f.speedup > 1.05]


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the host's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _more_workers(s: Split, obs: Observations, cores: int) -> Fix:
    loader = obs.loader or {}
    workers = int(loader.get("num_workers") or 0)
    k = max(1, min(8, cores))
    # Workers prepare batches while the step runs: a step then takes the longest of the
    # step itself, a batch shared among k workers, and all the CPU work (decoding and the
    # step's own host side) spread over the cores they share.
    decode = s.data_s * max(workers, 1)  # one batch's preparation, one worker's time
    after = max(s.busy_s, decode / k, (decode + s.busy_s) / cores) + s.h2d_s
    what = f"DataLoader(num_workers={k})" if workers < k else "cheaper __getitem__"
    why = f"{_pct(s.data_s, s.step_s)} of each step waits for the next batch"
    return Fix(what, why, s.step_s / max(after, 1e-12))


def _bigger_batch(s: Split) -> Fix:
    k = BATCH_FACTOR
    fixed = s.launch_s + s.other_s  # per step, whatever the batch
    scaled = s.step_s - fixed  # grows with the batch
    speedup = k * s.step_s / (fixed + k * scaled)
    return Fix(
        f"raise the batch size {k}x",
        f"{_pct(fixed, s.step_s)} of each step is per-step overhead a larger batch shares",
        speedup,
    )


def _lower_precision(s: Split, obs: Observations, c: Ceiling) -> list[Fix]:
    have = precision_of(obs)
    if have != "fp32":
        return []
    fp32 = c.tflops.get("fp32") or 0.0
    bf16 = c.tflops.get("bf16") or 0.0
    if not fp32 or bf16 <= 1.5 * fp32:  # no native bf16 here: it would be slower
        return []
    after = s.step_s - s.compute_s + s.compute_s * fp32 / bf16
    return [
        Fix(
            "torch.autocast(dtype=torch.bfloat16)", "bf16 matmuls run faster here", s.step_s / after
        )
    ]


def placement_warnings(obs: Observations) -> list[str]:
    """What is left on the CPU, or in fp32, that need not be."""
    out = []
    dev, loader = obs.device, obs.loader or {}
    on_gpu = dev.get("type") == "cuda"
    if dev.get("gpu_available") and not on_gpu:
        out.append("the model's parameters are on the CPU although a GPU is present")
    if on_gpu and loader.get("batch_device") == "cpu" and not loader.get("pin_memory"):
        out.append("batches are copied from pageable memory: DataLoader(pin_memory=True)")
    if on_gpu and precision_of(obs) == "fp32" and not dev.get("tf32"):
        out.append("fp32 matmuls without TF32 or autocast: bf16 autocast is faster on this GPU")
    syncs = statistics.mean(s.syncs for s in obs.window) if obs.window else 0.0
    if syncs >= 1:
        out.append(
            f"{syncs:.0f} host read(s) of GPU values per step (.item(), .cpu()): each waits "
            f"for the GPU to finish"
        )
    return out
