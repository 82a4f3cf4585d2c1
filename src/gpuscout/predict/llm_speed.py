"""How fast a language model runs locally: decode tokens/s at batch 1 and prefill tokens/s.

    decode:  t_token = bytes read per token / (bandwidth x eff_decode) + layers x t_layer
             bytes   = the weights one token touches (an MoE: experts_per_token of its
                       routed experts, plus attention, shared experts and the output layer)
                       + the KV cache read at the context
    prefill: t_token = (2 x active weights + attention) FLOPs / (rate x eff_prefill)
             rate    = the int8 tensor rate where llama.cpp runs quantized weights through
                       int8 matrix cores (CUDA's MMQ), else the dense 16-bit tensor rate
                       (fp8 for fp8 weights in vLLM), else the FP32 vector rate (Apple GPUs
                       run FP16 at it; CPUs)
    partial offload (llama.cpp -ngl): the GPU's layers at the GPU's terms, the rest at the
             host's (system RAM bandwidth, CPU FLOPS), added per token.

The efficiencies depend on the engine and the device class (``DEVICE_CLASSES``). They were
fitted on the calibration rows of tests/predict/fixtures/llm_speed_published.toml
(``gpuscout.validate.llm_speed_published`` refits them and a test holds these constants to
that fit); docs/predict-published.md reports the error on the held-out rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gpuscout.catalog import GpuSpec
from gpuscout.fit.engines import default_kv_dtype, parse_engine
from gpuscout.fit.estimate import weight_split
from gpuscout.fit.quant import KV_DTYPES, parse_format
from gpuscout.fit.request import FitRequest
from gpuscout.fit.spec import ModelSpec, block_linears, kv_elements

DEVICE_CLASSES: Final = ("gddr", "hbm", "apple", "cpu")
# System RAM a llama.cpp partial offload reads its host layers from, when not given:
# dual-channel DDR5-5200, 2 channels x 8 bytes x 5.2e9 transfers/s = 83.2 GB/s.
HOST_BANDWIDTH_GBS: Final = 83.2
# The host CPU's FP32 rate when not given: 8 cores x 2 FMA units x 8 fp32 lanes (AVX2)
# x 2 FLOPs x 4 GHz = 1.02 TFLOPS.
HOST_TFLOPS: Final = 1.02


@dataclass(frozen=True)
class Efficiency:
    """One engine on one device class: the share of the bandwidth decode reaches, a fixed
    cost per layer per token (kernel launches, synchronisation), and the share of the
    matrix rate prefill reaches."""

    decode: float
    layer_s: float
    prefill: float
    source: str


_FIT: Final = "fitted on the calibration rows of tests/predict/fixtures/llm_speed_published.toml"
# llama.cpp (CUDA, Metal, CPU), llama-bench at every layer on the device.
LLAMACPP_GDDR: Final = Efficiency(
    0.876, 38.7e-6, 0.236, f"llama.cpp CUDA, {_FIT} (RTX 3060, RTX PRO 6000)"
)
LLAMACPP_HBM: Final = Efficiency(0.766, 70.6e-6, 0.156, f"llama.cpp CUDA, {_FIT} (V100, H100 SXM)")
LLAMACPP_APPLE: Final = Efficiency(
    0.859, 172.8e-6, 0.673, f"llama.cpp Metal, {_FIT} (M1 7-core, M3 Ultra 80-core)"
)
# CPU prefill: no source gives a CPU's FLOPS beside its prompt speed; half the FP32 rate is
# an assumption, not validated.
CPU_PREFILL_ASSUMED: Final = 0.5
LLAMACPP_CPU: Final = Efficiency(
    0.675, 0.0, CPU_PREFILL_ASSUMED, f"llama.cpp CPU, {_FIT} (i9-13900K)"
)
EFFICIENCY: Final[dict[tuple[str, str], Efficiency]] = {
    ("llama.cpp", "gddr"): LLAMACPP_GDDR,
    ("llama.cpp", "hbm"): LLAMACPP_HBM,
    ("llama.cpp", "apple"): LLAMACPP_APPLE,
    ("llama.cpp", "cpu"): LLAMACPP_CPU,
}
# vLLM and transformers: no published single-stream figure was found to fit them on, so
# llama.cpp's constants for the device class stand in (said in every answer's notes).
_UNVALIDATED_ENGINES: Final = ("vllm", "transformers")


@dataclass(frozen=True)
class Device:
    """What the speed depends on: memory bandwidth and the matrix rates (TFLOPS / TOPS,
    dense). ``kind``: one of DEVICE_CLASSES."""

    name: str
    kind: str
    bandwidth_gbs: float
    tflops_16: float  # dense 16-bit matrix rate; Apple and CPUs: the FP32 vector rate
    tops_8: float | None = None  # dense int8 tensor rate
    tflops_fp8: float | None = None


def gpu_device(gpu: GpuSpec) -> Device:
    """A catalog GPU: Apple silicon, an HBM GPU or a GDDR one."""
    if gpu.vendor == "Apple":
        kind = "apple"
    else:
        kind = "hbm" if "HBM" in gpu.memory_type.upper() else "gddr"
    rate = gpu.fp16_tensor_tflops or gpu.bf16_tensor_tflops or gpu.fp32_tflops
    return Device(
        gpu.name, kind, gpu.memory_bandwidth_gbs, rate, gpu.int8_tensor_tops, gpu.fp8_tensor_tflops
    )


def cpu_device(bandwidth_gbs: float = HOST_BANDWIDTH_GBS, tflops: float = HOST_TFLOPS) -> Device:
    """The CPU with its memory bandwidth (GB/s) and FP32 rate (TFLOPS)."""
    return Device("CPU", "cpu", bandwidth_gbs, tflops)


@dataclass(frozen=True)
class TokenCost:
    """What one token reads (decode) and computes (prefill) at a context."""

    layer_bytes: tuple[float, ...]  # each block: the weights it touches and its KV cache
    rest_bytes: float  # the output layer and the final norm
    kv_bytes: float  # the KV cache read at the context (inside layer_bytes)
    flops: float  # one prompt token: 2 x active weights + attention

    @property
    def total_bytes(self) -> float:
        return sum(self.layer_bytes) + self.rest_bytes


@dataclass(frozen=True)
class LlmSpeed:
    decode_tokens_per_s: float
    prefill_tokens_per_s: float
    decode_bytes_per_token: float  # on every device together
    prefill_flops_per_token: float
    device_class: str
    efficiency: Efficiency
    gpu_layers: int  # layers on the device (the rest in system RAM)
    total_layers: int
    notes: tuple[str, ...]


def _linear_params(spec: ModelSpec, layer: int) -> tuple[int, int]:
    """(linear weights of block ``layer``, of them in routed experts)."""
    lins = block_linears(spec, layer)
    total = sum(x.fan_in * x.fan_out * x.copies for x in lins)
    return total, sum(x.fan_in * x.fan_out * x.copies for x in lins if x.copies > 1)


def _untouched_bytes(spec: ModelSpec, layer: int, linear_bits: float) -> float:
    """Bytes of block ``layer`` a token does not read: the routed experts it is not sent
    to (at the format's bits per linear weight)."""
    if not spec.experts:
        return 0.0
    routed = _linear_params(spec, layer)[1]
    skipped = 1.0 - (spec.experts_per_token or spec.experts) / spec.experts
    return routed * skipped * linear_bits / 8


def _active_share(spec: ModelSpec, layer: int) -> float:
    """The share of block ``layer``'s linear weights a token multiplies by."""
    total, routed = _linear_params(spec, layer)
    if not spec.experts or not total:
        return 1.0
    return 1.0 - routed / total * (1.0 - (spec.experts_per_token or spec.experts) / spec.experts)


def token_cost(req: FitRequest, context: int) -> TokenCost:
    """What one token reads and computes with ``context`` tokens in the cache. The token
    embedding is one row per token: not counted."""
    spec = req.model
    split = weight_split(req)
    n = len(split.layers)
    kv_bytes = kv_elements(spec, context) * KV_DTYPES[req.effective_kv_dtype]
    bits = parse_format(req.dtype).linear_bits
    layer_bytes = tuple(
        b - _untouched_bytes(spec, i, bits) + kv_bytes / max(1, n)
        for i, b in enumerate(split.layers)
    )
    active = sum(_linear_params(spec, i)[0] * _active_share(spec, i) for i in range(n))
    active += (spec.vocab or 0) * (spec.hidden or 0) if spec.head == "lm" else 0
    # attention: q.k and p.v over the context, a multiply-add each, in every layer
    attention = 4.0 * n * spec.q_width * context if spec.heads else 0.0
    return TokenCost(layer_bytes, split.head + split.other, kv_bytes, 2.0 * active + attention)


def prefill_rate(engine: str, dtype: str, device: Device) -> tuple[float, str]:
    """The matrix rate (FLOP/s) prefill runs at, and its name."""
    fmt = parse_format(dtype)
    if engine == "llama.cpp" and fmt.quantized and device.tops_8:
        return device.tops_8 * 1e12, "int8"
    if engine == "vllm" and fmt.name.startswith("fp8") and device.tflops_fp8:
        return device.tflops_fp8 * 1e12, "fp8"
    return device.tflops_16 * 1e12, "16-bit" if device.kind in ("gddr", "hbm") else "fp32"


def efficiency_for(engine: str, kind: str) -> Efficiency:
    key = "llama.cpp" if engine in _UNVALIDATED_ENGINES else engine
    return EFFICIENCY[(key, kind)]


def predict_llm_speed(
    req: FitRequest,
    device: Device,
    *,
    context: int | None = None,
    gpu_layers: int | None = None,
    host: Device | None = None,
) -> LlmSpeed:
    """Decode (batch 1) and prefill tokens/s of ``req`` (its model, weight format, engine
    and KV dtype) on ``device`` at ``context`` tokens (default: the request's). With
    ``gpu_layers`` below the model's layers (llama.cpp), the rest run from ``host``
    (default: ``cpu_device()``)."""
    engine = parse_engine(req.engine)
    ctx = context if context is not None else (req.effective_seq_len or 0)
    cost = token_cost(req, ctx)
    n = len(cost.layer_bytes)
    on_gpu = n if gpu_layers is None else max(0, min(gpu_layers, n))
    host = host or cpu_device()
    eff = efficiency_for(engine, device.kind)
    host_eff = efficiency_for(engine, "cpu")
    # the output layer goes with the last block: on the device only when every block is
    all_on = on_gpu == n
    dev_bytes = sum(cost.layer_bytes[:on_gpu]) + (cost.rest_bytes if all_on else 0.0)
    host_bytes = cost.total_bytes - dev_bytes
    decode_s = dev_bytes / (device.bandwidth_gbs * 1e9 * eff.decode) + on_gpu * eff.layer_s
    if not all_on:
        decode_s += host_bytes / (host.bandwidth_gbs * 1e9 * host_eff.decode)
        decode_s += (n - on_gpu) * host_eff.layer_s
    rate, rate_name = prefill_rate(engine, req.dtype, device)
    share = dev_bytes / cost.total_bytes if cost.total_bytes else 1.0
    prefill_s = share * cost.flops / (rate * eff.prefill)
    if not all_on:
        prefill_s += (1 - share) * cost.flops / (host.tflops_16 * 1e12 * host_eff.prefill)
    notes = [
        f"decode reads {cost.total_bytes / 1e9:.2f} GB per token "
        f"at {eff.decode:.0%} of {device.bandwidth_gbs:g} GB/s; prefill at "
        f"{eff.prefill:.0%} of the {rate_name} rate ({eff.source})",
    ]
    if on_gpu < n:
        notes.append(
            f"{n - on_gpu} of {n} layers in system RAM at {host.bandwidth_gbs:g} GB/s: "
            f"{host_bytes / 1e9:.2f} GB per token read from there"
        )
    if engine in _UNVALIDATED_ENGINES:
        notes.append(f"{engine}: not validated on published figures; llama.cpp's efficiencies used")
    return LlmSpeed(
        decode_tokens_per_s=1.0 / decode_s,
        prefill_tokens_per_s=1.0 / prefill_s,
        decode_bytes_per_token=cost.total_bytes,
        prefill_flops_per_token=cost.flops,
        device_class=device.kind,
        efficiency=eff,
        gpu_layers=on_gpu,
        total_layers=n,
        notes=tuple(notes),
    )


def infer_request(
    model: ModelSpec, dtype: str, engine: str = "llama.cpp", context: int = 4096
) -> FitRequest:
    """The inference request ``predict_llm_speed`` reads: model, format, engine, context."""
    engine = parse_engine(engine)
    return FitRequest(
        model,
        mode="infer",
        dtype=dtype,
        engine=engine,
        seq_len=context,
        kv_dtype=default_kv_dtype(engine, dtype),
    )
