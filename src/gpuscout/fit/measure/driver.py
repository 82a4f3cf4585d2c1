"""The parent's side of `gpuscout fit --measure`: check the request can be built, run
trials.measure_in_worker in an isolated worker (isolate.run_isolated: an
OOM, a crash or a hang comes back as a status), and turn prediction and measurement into
the Results one store run of kind "fit" keeps. Importing this module does not import
torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from gpuscout._types import Result
from gpuscout.errors import UsageError
from gpuscout.fit.estimate import CUDA_CONTEXT_BYTES
from gpuscout.fit.request import FitRequest, MemoryEstimate, check_request
from gpuscout.fit.spec import ModelSpec

MEASURABLE_DTYPES: Final = ("fp32", "bf16", "fp16")
DEFAULT_TIMEOUT_S: Final = 900.0
# The largest-batch search's limits (trials.bounded_search). 24 trials: doubling up
# to the largest cap the CLI sets (65,536) takes 17, and the 7 bisection steps left
# bracket the answer within 1/128 of it (most searches end sooner). 120 s: what a user
# waits for a memory search on top of the model's build, well inside the worker's
# default timeout (900 s), so a stopped search still comes back.
MAX_TRIALS: Final = 24
SEARCH_BUDGET_S: Final = 120.0
_CUDA_RE: Final = re.compile(r"^cuda(?::(\d+))?$")


@dataclass(frozen=True)
class Measured:
    """What --measure found on the local GPU. ``peak_bytes`` = the allocator's maximum
    at the request's batch + the process's memory outside the allocator (context)."""

    status: str  # "ok", "oom" (not even the model fits), "failed", "timeout", "no_cuda"
    device: str
    device_name: str | None = None
    memory_total_bytes: int | None = None
    fits: bool | None = None  # the request's batch ran
    allocated_peak_bytes: int | None = None
    context_bytes: int | None = None
    context_source: str = ""
    peak_bytes: int | None = None
    max_batch: int | None = None
    max_batch_capped: bool = False
    trials: tuple[tuple[int, bool, int | None], ...] = ()
    error: str | None = None
    search_error: str | None = None  # the search stopped on an error that is not memory
    # The search reached its trial or time limit: max_batch is the largest that ran so
    # far (a lower bound), and this says so ("search stopped at the limit: ...").
    search_stopped: str | None = None
    duration_s: float = 0.0
    # The allocator's peak of reserved segments at the request's batch: allocated peak
    # plus rounding and fragmentation, what the device really gave (beside, not in, peak).
    reserved_peak_bytes: int | None = None

    @property
    def complete(self) -> bool:
        """Everything asked ran: the worker came back, and the search (if any) ended,
        at the boundary or at its trial or time limit (``search_stopped`` says which)."""
        return self.status == "ok" and self.search_error is None

    def error_pct(self, predicted_bytes: int) -> float | None:
        """(predicted - measured) / measured, in percent."""
        if not self.peak_bytes:
            return None
        return (predicted_bytes - self.peak_bytes) / self.peak_bytes * 100


def check_measurable(req: FitRequest) -> FitRequest:
    """UsageError (one line) for requests --measure cannot build on one GPU."""
    req = check_request(req)
    spec = req.model
    why = None
    if req.gpus > 1 or req.tp > 1 or req.zero:
        why = "--measure runs on one GPU: drop --gpus, --tp and --zero"
    elif req.dtype not in MEASURABLE_DTYPES:
        why = f"--measure builds fp32, bf16 or fp16 models, not {req.dtype}"
    elif req.optimizer == "adam8bit":
        why = "--measure uses torch's optimizers; adam8bit needs bitsandbytes"
    elif not req.flash_attention:
        why = "--measure runs attention through scaled_dot_product_attention only"
    elif spec.family in ("moe-decoder", "vit"):
        why = f"--measure has no {spec.family} model to build"
    else:
        why = _model_problem(req)
    # Every cnn row is a ResNet and every mlp row a stack of widths (the table checks
    # both), which the workloads' builders take as they are.
    if why:
        raise UsageError(why)
    return req


def cuda_device(device: str) -> str:
    """The --device of --measure as "cuda:N" ("cuda" is cuda:0); UsageError for anything
    else, since it runs on one CUDA GPU. Whether cuda:N exists, the worker asks PyTorch."""
    match = _CUDA_RE.match(device.strip().lower())
    if match is None:
        raise UsageError(
            f"--measure runs on one CUDA GPU, not {device!r}", "use --device cuda or cuda:N"
        )
    return f"cuda:{match.group(1) or 0}"


def _model_problem(req: FitRequest) -> str | None:
    """Why the workloads' builders cannot make this model (None: they can)."""
    spec = req.model
    if spec.family == "decoder" and _decoder_problem(spec):
        return f"--measure builds Llama-shaped decoders; {spec.id} {_decoder_problem(spec)}"
    if spec.sliding_window and (req.effective_seq_len or 0) > spec.sliding_window:
        return f"--measure attends to every token; {spec.id} slides a {spec.sliding_window} window"
    if spec.family == "encoder" and (spec.mlp != "gelu" or spec.norm != "layernorm"):
        return f"--measure builds BERT-shaped encoders; {spec.id} is not one"
    return None


def _decoder_problem(spec: ModelSpec) -> str | None:
    if spec.positions or spec.norm != "rmsnorm" or spec.mlp != "swiglu":
        return "has learned positions, LayerNorm or a GELU MLP"
    if (spec.head_dim or 0) * (spec.heads or 0) != spec.hidden:
        return "has a head width other than hidden / heads"
    # The builder makes a plain Llama block: any of these would be measured as one.
    extras = {
        "MLA attention": spec.kv_lora_rank is not None,
        "shared or dense-first experts": bool(spec.shared_intermediate or spec.dense_layers),
        "a separate expert width": spec.moe_intermediate is not None,
        "q/k norms": spec.qk_norm,
        "norms around attention and MLP": spec.sandwich_norm,
        "biases": spec.bias or spec.qkv_bias,
        "a vision tower": bool(spec.vision_params),
    }
    found = [name for name, present in extras.items() if present]
    if found:
        return "has " + ", ".join(found) + " (the measured model is a plain Llama block)"
    return None


def measure(
    req: FitRequest,
    device: str = "cuda:0",
    *,
    search: bool = True,
    cap: int = 4096,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    target: Callable[..., dict[str, Any]] | None = None,
    max_trials: int = MAX_TRIALS,
    search_budget_s: float = SEARCH_BUDGET_S,
) -> Measured:
    """Run the measurement in a worker; never raises for what happens there.
    ``target`` replaces trials.measure_in_worker (tests pass a fake). The search
    gets at most half of ``timeout_s``: the model's build and the request's own trial
    come first, and a worker killed at its timeout brings nothing back."""
    from gpuscout.isolate.process import OK, run_isolated

    req = check_measurable(req)
    device = cuda_device(device)
    if target is None:
        from gpuscout.fit.measure.trials import measure_in_worker

        target = measure_in_worker
    kwargs = {"req": req, "device": device, "search": search, "cap": cap}
    if search:
        kwargs |= {"max_trials": max_trials, "search_budget_s": min(search_budget_s, timeout_s / 2)}
    outcome = run_isolated(target, kwargs, timeout_s=timeout_s)
    if outcome.status != OK or outcome.value is None:
        return Measured(
            status=outcome.status,
            device=device,
            error=(outcome.error or "")[-2000:],
            duration_s=outcome.duration_s,
        )
    v = outcome.value
    allocated, context = v.get("allocated_peak_bytes"), v.get("context_bytes")
    peak = None
    if allocated is not None:
        peak = allocated + (context if context is not None else CUDA_CONTEXT_BYTES)
    return Measured(
        status=str(v.get("status", "failed")),
        device=device,
        device_name=v.get("device_name"),
        memory_total_bytes=v.get("memory_total_bytes"),
        fits=v.get("fits"),
        allocated_peak_bytes=allocated,
        reserved_peak_bytes=v.get("reserved_peak_bytes"),
        context_bytes=context,
        context_source=str(v.get("context_source", "")),
        peak_bytes=peak,
        max_batch=v.get("max_batch"),
        max_batch_capped=bool(v.get("max_batch_capped", False)),
        trials=tuple((int(n), bool(ok), p) for n, ok, p in v.get("trials", ())),
        error=v.get("error"),
        search_error=v.get("search_error"),
        search_stopped=v.get("search_stopped"),
        duration_s=outcome.duration_s,
    )


def fit_results(
    est: MemoryEstimate, measured: Measured, predicted_max_batch: int | None
) -> list[Result]:
    """The predicted and the measured peak as two Results of one "fit" run."""
    req = est.request
    base = f"fit/{req.model.id}/{req.mode}"
    request = {
        "model": req.model.id,
        "mode": req.mode,
        "batch_size": req.batch_size,
        "seq_len": req.effective_seq_len,
        "dtype": req.dtype,
        "optimizer": req.optimizer if req.mode == "train" else None,
        "lora_rank": req.lora_rank,
        "checkpointing": req.checkpointing,
    }
    terms = {
        k: getattr(est, f"{k}_bytes")
        for k in ("weights", "gradients", "optimizer", "activations", "kv_cache", "overhead")
    }
    predicted = Result(
        name=f"{base}/predicted",
        device=measured.device,
        figure=float(est.total_bytes),
        unit="bytes",
        extra=request
        | terms
        | {
            "low_bytes": est.low_bytes,
            "high_bytes": est.high_bytes,
            "dominant": est.dominant,
            "max_batch": predicted_max_batch,
        },
    )
    error_pct = measured.error_pct(est.total_bytes)
    ok = measured.status == "ok" and measured.peak_bytes is not None
    observed = Result(
        name=f"{base}/measured",
        device=measured.device,
        figure=float(measured.peak_bytes) if ok and measured.peak_bytes is not None else None,
        unit="bytes",
        status="ok" if ok else ("oom" if measured.status == "ok" else measured.status),
        error=None if ok else measured.error,
        extra=request
        | {
            "device_name": measured.device_name,
            "memory_total_bytes": measured.memory_total_bytes,
            "allocated_peak_bytes": measured.allocated_peak_bytes,
            "reserved_peak_bytes": measured.reserved_peak_bytes,
            "context_bytes": measured.context_bytes,
            "context_source": measured.context_source,
            "predicted_bytes": est.total_bytes,
            "error_pct": error_pct,
            "max_batch": measured.max_batch,
            "max_batch_capped": measured.max_batch_capped,
            "search_error": measured.search_error,
            "search_stopped": measured.search_stopped,
            "predicted_max_batch": predicted_max_batch,
            "trials": [list(t) for t in measured.trials],
        },
    )
    return [predicted, observed]
