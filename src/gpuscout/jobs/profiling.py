"""`gpuscout profile`: the user's own training script run under observation, what bounds
it, the fixes that matter, and what it would do on other GPUs.

The script runs in its own Python (``profile.spawn``); this job adds what the script
cannot know: the device's ceilings (the newest stored ``bench micro`` figures of this
host's device, measured now and stored when there are none), how busy the rest of the
machine was, the projection onto catalog GPUs (``predict``, as for gpuscout's own
workloads), and the stored run. A script that takes no optimizer step, or fails before
one, is reported with its exit status and nothing is stored as a measurement.
"""

from __future__ import annotations

import math
import platform
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gpuscout._types import Ceiling, GpuInfo, NvmlState, Result
from gpuscout.bench import run_micro
from gpuscout.bench.monitor import NvmlMonitor
from gpuscout.catalog import GpuSpec, find_gpu
from gpuscout.errors import UsageError
from gpuscout.fit import FitRequest, ModelSpec, estimate
from gpuscout.fit.models import parse_hf_config
from gpuscout.jobs.storing import StoreLike, opened, run_fingerprint
from gpuscout.predict import Projection, predict_results
from gpuscout.predict.basis import local_ceilings
from gpuscout.predict.project import MICRO_PREFIXES
from gpuscout.probe.nvml import nvml_session, probe_nvidia
from gpuscout.profile.bottleneck import Bottleneck, bottleneck
from gpuscout.profile.hooks import Observations, Work
from gpuscout.profile.spawn import Profiled, run_profiled, script_name
from gpuscout.store import Store
from gpuscout.timing.load import host_load, mark_busy

# Where a script is projected when the user names no GPU: a consumer card, the two
# datacenter generations people rent, and an inference card.
DEFAULT_TARGETS = ("rtx-4090", "a100-sxm4-80gb", "h100-sxm5-80gb", "l4")
_CEILING_BENCHMARKS = ("matmul", "memory", "launch")
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class ProfileOptions:
    """``command``: the script and its arguments, or an interpreter, script and
    arguments. ``steps``: optimizer steps observed after ``warmup`` (None: the whole run,
    the script finishing as it would). ``device``: what the script sees ("cpu": no GPU;
    "cuda:N": only GPU N; None: as it is). ``gpus``: catalog GPUs to project onto."""

    command: tuple[str, ...]
    steps: int | None = None
    warmup: int = 3
    device: str | None = None
    gpus: tuple[str, ...] | None = None  # None: DEFAULT_TARGETS
    store: bool = True
    measure_ceilings: bool = True  # measure (and store) them when none are stored
    stdout_to_stderr: bool = False  # the script's output, where a --json answer is not


@dataclass(frozen=True)
class MemoryCheck:
    """``fit``'s estimate of the script's training memory beside what it used, for a
    model that carries a Hugging Face config fit reads. Both are the allocator's peak:
    fit's total without the CUDA context, torch's max_memory_allocated."""

    model: str
    request: str  # what was estimated, in fit's words
    estimated_bytes: int | None  # None: fit cannot estimate this request (``problem``)
    measured_bytes: int | None  # None off a GPU
    problem: str | None = None

    @property
    def measured_over_estimated(self) -> float | None:
        if not self.estimated_bytes or self.measured_bytes is None:
            return None
        return self.measured_bytes / self.estimated_bytes


@dataclass(frozen=True)
class ProfileOutcome:
    command: tuple[str, ...]
    exit_code: int  # the script's own; 130 after Ctrl-C, 143 after SIGTERM
    wall_s: float
    observations: Observations
    device: str  # where its model ran: "cpu", "cuda:0"
    diagnosis: Bottleneck | None  # None: no step to judge (see ``problem``)
    ceiling: Ceiling | None
    ceiling_run: int | None  # the stored run the ceilings come from
    projections: tuple[Projection, ...] = ()
    busy_pct: float | None = None  # other processes' share of the CPUs meanwhile
    run_id: int | None = None
    problem: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # The script's GPU as NVML sampled it over the timed steps: utilization, SM clock,
    # power, clock-event reasons (bench.monitor.summarise_samples); None off NVIDIA
    gpu: Mapping[str, Any] | None = None
    memory: MemoryCheck | None = None  # fit's estimate beside the measured peak

    @property
    def disturbed(self) -> bool:
        return self.busy_pct is not None and self.busy_pct >= 25.0


def check_device(device: str | None) -> dict[str, str]:
    """The environment that shows the script only ``device``; UsageError for a bad word."""
    if device is None:
        return {}
    if not _DEVICE.match(device):
        raise UsageError(f"unknown device {device!r}", "use cpu, cuda or cuda:N")
    if device == "cpu":
        return {"CUDA_VISIBLE_DEVICES": ""}
    return {"CUDA_VISIBLE_DEVICES": device.split(":")[1]} if ":" in device else {}


def profile(where: StoreLike, options: ProfileOptions, *, nvml: Any = None) -> ProfileOutcome:
    """Run the script observed, diagnose it against its device's ceilings, project it
    onto ``options.gpus`` and store the run (unless ``options.store`` is False). Each GPU
    NVML sees is sampled meanwhile (``nvml``: pynvml, or a stand-in such as FakeNvml)."""
    env = check_device(options.device)
    # A typo fails before the script runs
    targets = [find_gpu(g) for g in (DEFAULT_TARGETS if options.gpus is None else options.gpus)]
    with host_load() as load, gpu_sampling(nvml) as monitors:
        run = run_profiled(
            list(options.command),
            warmup=options.warmup,
            steps=options.steps,
            stdout_to_stderr=options.stdout_to_stderr,
            env=env,
        )
    obs = run.observations
    gpu = gpu_during(obs, monitors, options.device)
    device = _device_of(obs, options.device)
    problem = _problem(run)
    if problem is not None:
        return ProfileOutcome(
            run.command,
            run.exit_code,
            run.wall_s,
            obs,
            device,
            diagnosis=None,
            ceiling=None,
            ceiling_run=None,
            busy_pct=load.busy_pct,
            problem=problem,
            gpu=gpu,
        )
    fp = run_fingerprint() if options.store else {"host": platform.node()}
    with opened(where if options.store else ":memory:") as store:
        micro, ceiling_run = _ceiling_results(store, device, options, fp)
        ceiling = local_ceilings(micro).get(device)
        if ceiling is None:
            ceiling = Ceiling(source="not measured: defaults")
        found = bottleneck(obs, ceiling)
        result = mark_busy([as_result(run, device, found, ceiling, gpu)], load.busy_pct)[0]
        projections, notes = _project(result, micro, targets)
        memory = memory_check(obs)
        kept = {"projections": _kept(projections), "memory_check": _memory_kept(memory)}
        result = replace(result, extra={**result.extra, **kept})
        run_id = _store(store, result, fp) if options.store else None
    return ProfileOutcome(
        run.command,
        run.exit_code,
        run.wall_s,
        obs,
        device,
        diagnosis=found,
        ceiling=ceiling,
        ceiling_run=ceiling_run,
        projections=tuple(projections),
        busy_pct=load.busy_pct,
        run_id=run_id,
        notes=tuple(notes),
        gpu=gpu,
        memory=memory,
    )


@contextmanager
def gpu_sampling(nvml: Any = None) -> Iterator[list[tuple[GpuInfo, NvmlMonitor]]]:
    """A monitor on each GPU NVML sees, sampling while the block runs; none without NVML."""
    info = probe_nvidia(nvml)
    gpus = [g for g in info.gpus if not g.lost] if info.state == NvmlState.OK else []
    factory = (lambda: nvml_session(nvml)) if nvml is not None else None
    monitors = [(g, NvmlMonitor(g.index, interval_s=0.1, session_factory=factory)) for g in gpus]
    with ExitStack() as stack:
        for _, monitor in monitors:
            stack.enter_context(monitor)
        yield monitors


def gpu_during(
    obs: Observations, monitors: Sequence[tuple[GpuInfo, NvmlMonitor]], asked: str | None = None
) -> Mapping[str, Any] | None:
    """The script's GPU as sampled over its timed steps: found by UUID (NVML's index
    differs from the script's under CUDA_VISIBLE_DEVICES), else by the index asked for
    or seen; None when the script ran on no GPU NVML sees."""
    if obs.device.get("type") != "cuda":
        return None
    picked = _monitor_of(obs.device, monitors, asked)
    if picked is None:
        return None
    t0, t1 = obs.window_clock if len(obs.window_clock) == 2 else (-math.inf, math.inf)
    return picked.window(t0, t1)


def _monitor_of(
    device: Mapping[str, Any], monitors: Sequence[tuple[GpuInfo, NvmlMonitor]], asked: str | None
) -> NvmlMonitor | None:
    uuid = str(device.get("uuid") or "").removeprefix("GPU-")
    if uuid:
        for gpu, monitor in monitors:
            if (gpu.uuid or "").removeprefix("GPU-") == uuid:
                return monitor
    index = int(asked.split(":")[1]) if asked and ":" in asked else device.get("index") or 0
    return next((m for g, m in monitors if g.index == index), None)


_OPTIMIZERS = {"AdamW": "adamw", "Adam": "adam", "SGD": "sgd"}


def memory_check(obs: Observations) -> MemoryCheck | None:
    """fit's estimate for the script's model, batch, sequence, precision and optimizer,
    beside the peak it measured; None when the model carries no config fit reads."""
    config = (obs.model or {}).get("config")
    work = obs.work
    if not isinstance(config, dict) or work is None:
        return None
    try:
        spec = parse_hf_config(config, "the script's model config")
    except UsageError:  # not a model family fit knows
        return None
    measured = obs.memory.get("peak_device_bytes")
    name = str(config.get("_name_or_path") or (obs.model or {}).get("class") or spec.name)
    request = _fit_request(spec, work)
    words = (
        f"training, batch {request.batch_size}, sequence {request.seq_len or 'default'}, "
        f"{request.dtype}, {request.optimizer}"
    )
    try:
        est = estimate(request)
    except UsageError as exc:
        return MemoryCheck(name, words, None, measured, exc.message)
    return MemoryCheck(name, words, est.total_bytes - est.overhead_bytes, measured)


def _fit_request(spec: ModelSpec, work: Work) -> FitRequest:
    """What the script trains, in fit's words."""
    shape = work.input_shape or []
    optimizer = _OPTIMIZERS.get(work.optimizer or "", "adamw")
    return FitRequest(
        spec,
        mode="train",
        batch_size=work.samples or 1,
        seq_len=shape[1] if len(shape) >= 2 and spec.family != "vit" else None,
        dtype=_PARAM_DTYPES.get(str(work.param_dtype), "fp32"),
        optimizer="sgd-momentum" if optimizer == "sgd" and work.momentum else optimizer,
    )


_PARAM_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def _memory_kept(m: MemoryCheck | None) -> dict[str, Any] | None:
    return None if m is None else asdict(m) | {"ratio": m.measured_over_estimated}


def _device_of(obs: Observations, asked: str | None) -> str:
    """The device as gpuscout names it outside the script (``cuda:N`` under
    CUDA_VISIBLE_DEVICES=N is the script's cuda:0)."""
    kind = str(obs.device.get("type") or "cpu")
    if kind != "cuda":
        return "cpu"
    if asked is not None and asked.startswith("cuda:"):
        return asked
    return f"cuda:{obs.device.get('index') or 0}"


def _problem(run: Profiled) -> str | None:
    """Why there is nothing to judge, or None."""
    obs = run.observations
    if obs.window and obs.work is not None:
        return None
    if obs.error:
        return f"the script failed before a step was observed: {obs.error}"
    if obs.torch is None:
        return "the script never imported torch: nothing to observe"
    if obs.steps_seen <= obs.warmup:
        return (
            f"{obs.steps_seen} optimizer step(s) seen, {obs.warmup} of them warm-up: "
            "too few to time (profile a longer run, or lower --warmup)"
        )
    return "no optimizer step was observed"


def _ceiling_results(
    store: Store, device: str, options: ProfileOptions, fp: Mapping[str, Any]
) -> tuple[list[Result], int | None]:
    """The newest stored ceilings of ``device`` on the host of ``fp``, or measured now
    (and stored as a bench run of their own)."""
    host = fp.get("host")
    for run in store.list_runs(limit=200):
        if run.fingerprint.get("host") not in (None, host):
            continue
        found = [r for r in store.results(run.id) if _is_ceiling(r, device)]
        if found:
            return found, run.id
    if not options.measure_ceilings:
        return [], None
    measured = run_micro([device], list(_CEILING_BENCHMARKS), quick=True)
    if not options.store:
        return measured, None
    with store.run("bench", fp) as handle:
        handle.add_results(measured)
    return measured, handle.id


def _is_ceiling(r: Result, device: str) -> bool:
    return r.device == device and r.status == "ok" and r.name.startswith(MICRO_PREFIXES)


def as_result(
    run: Profiled,
    device: str,
    found: Bottleneck,
    ceiling: Ceiling,
    gpu: Mapping[str, Any] | None = None,
) -> Result:
    """The profile as one stored figure: samples (or steps) per second, with the split,
    the verdict and the fixes in ``extra``. No ``workload`` key: the predictor and the
    report do not mistake it for one of gpuscout's workloads."""
    obs = run.observations
    work = obs.work
    samples = (work.samples if work is not None else None) or 1
    step = found.split.step_s
    return Result(
        name=f"profile/{script_name(run.command)}",
        device=device,
        figure=samples / step,
        unit="samples/s" if work is not None and work.samples else "steps/s",
        peak_fraction=found.peak_fraction,
        extra={
            "command": list(run.command),
            "exit_code": run.exit_code,
            "steps_seen": obs.steps_seen,
            "steps_timed": len(obs.window),
            "batch_size": samples,
            "step_time_s": step,
            "verdict": found.kind,
            "words": found.words,
            "split": asdict(found.split),
            "fixes": [asdict(f) for f in found.fixes],
            "warnings": list(found.warnings),
            "precision": found.precision,
            "achieved_tflops": found.achieved_tflops,
            "flops_per_step": work.flops if work is not None else None,
            "bytes_per_step": found.bytes_per_step,
            "host_ops_per_step": work.kernel_ops if work is not None else None,
            "ceiling_source": ceiling.source,
            "device_facts": obs.device,
            "loader": obs.loader,
            "model": obs.model,
            "memory": obs.memory,
            "torch": obs.torch,
            "gpu_during": dict(gpu) if gpu is not None else None,
        },
    )


def _project(
    result: Result, micro: list[Result], targets: list[GpuSpec]
) -> tuple[list[Projection], list[str]]:
    """The script's step on each target GPU, by the predictor gpuscout's own workloads
    use (a CPU-measured step is projected from the defaults, and says so), plus the
    time it waits for data, which stays on the host."""
    if not targets:
        return [], []
    split = result.extra["split"]
    waits = split["data_s"] + split["h2d_s"]
    try:
        prediction = predict_results(
            [_as_workload(result, waits), *micro], None, targets, impl=None
        )
    except UsageError as exc:  # nothing it can project (no FLOPs counted, for one)
        return [], [exc.message]
    step = split["step_s"]
    out = [_with_waits(p, waits, step) for p in prediction.projections]
    notes = list(prediction.assumptions)
    if waits > 0.05 * step:
        notes.append(
            f"each step's {1e3 * waits:.3g} ms waiting for data is kept on every GPU: the "
            "DataLoader runs on the host whatever the GPU"
        )
    return out, notes


def _kept(projections: Sequence[Projection]) -> list[dict[str, Any]]:
    """What the report shows of each projection, stored with the run."""
    return [
        {
            "gpu_id": p.gpu_id,
            "gpu_name": p.gpu_name,
            "step_s": p.step_s,
            "speedup": p.speedup,
            "bound": p.bound,
            "fits": p.fits,
        }
        for p in projections
    ]


def _with_waits(p: Projection, waits: float, measured_step: float) -> Projection:
    """A projection of the step without its data waits, with them added back."""
    step = p.step_s + waits
    return replace(
        p,
        step_s=step,
        step_low_s=p.step_low_s + waits,
        step_high_s=p.step_high_s + waits,
        throughput=p.throughput * p.step_s / step,
        speedup=measured_step / step,
    )


def _as_workload(result: Result, waits: float) -> Result:
    """The figure as the predictor reads a workload's: the user's program, as written,
    its step without the time it waited for data (no GPU shortens that)."""
    e: Mapping[str, Any] = result.extra
    keep: Callable[[str], Any] = e.get
    extra = {
        "workload": result.name,
        "impl": "reference",
        "step_time_s": max(float(keep("step_time_s")) - waits, 1e-9),
        "batch_size": keep("batch_size"),
        "flops_per_step": keep("flops_per_step"),
        "bytes_per_step": keep("bytes_per_step"),
        "host_ops_per_step": keep("host_ops_per_step"),
        "dtype": keep("precision"),
        "device_name": (keep("device_facts") or {}).get("name") or result.device,
    }
    return Result(result.name, result.device, result.figure, result.unit, extra=extra)


def _store(store: Store, result: Result, fp: Mapping[str, Any]) -> int:
    with store.run("profile", fp) as handle:
        handle.add_result(result)
    return handle.id
