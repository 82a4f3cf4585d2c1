"""fit's answer carries a language model's tokens/s per GPU where it runs."""

from __future__ import annotations

import dataclasses

from gpuscout.catalog import find_gpu
from gpuscout.fit import FitRequest, fit_on, load_model
from gpuscout.jobs.memory_fit import speed_on
from gpuscout.predict.llm_speed import gpu_device, predict_llm_speed

L8 = load_model("llama-3.1-8b")


def test_speed_only_for_inference_that_runs() -> None:
    gpu = find_gpu("rtx-4090")
    train = FitRequest(L8, seq_len=1024)
    assert speed_on(train, fit_on(train, gpu)) is None
    too_long = FitRequest(L8, mode="infer", seq_len=131_072)  # transformers, bf16: no
    assert speed_on(too_long, fit_on(too_long, gpu)) is None
    ok = FitRequest(L8, mode="infer", seq_len=4096)
    speed = speed_on(ok, fit_on(ok, gpu))
    assert speed is not None
    assert speed == predict_llm_speed(ok, gpu_device(gpu), gpu_layers=None)


def test_partial_offload_is_costed_with_the_layers_that_fit() -> None:
    req = FitRequest(L8, mode="infer", engine="llama.cpp", dtype="q4_k_m", seq_len=65_536)
    fit = fit_on(req, find_gpu("rtx-4060-laptop"))
    assert fit.gpu_layers is not None and 0 < fit.gpu_layers < 32
    speed = speed_on(req, fit)
    assert speed is not None and speed.gpu_layers == fit.gpu_layers
    everything = speed_on(req, dataclasses.replace(fit, gpu_layers=32, fits=True))
    assert everything is not None
    assert speed.decode_tokens_per_s < everything.decode_tokens_per_s


def test_tensor_parallel_adds_the_gpus_bandwidth() -> None:
    one = FitRequest(L8, mode="infer", seq_len=4096)
    two = dataclasses.replace(one, tp=2, gpus=2)
    gpu = find_gpu("rtx-3090")
    s1, s2 = speed_on(one, fit_on(one, gpu)), speed_on(two, fit_on(two, gpu))
    assert s1 is not None and s2 is not None
    assert s1.decode_tokens_per_s < s2.decode_tokens_per_s < 2 * s1.decode_tokens_per_s


def test_the_default_engine_follows_the_format() -> None:
    from gpuscout import jobs
    from gpuscout.jobs.memory_fit import request_for

    def engine(**kw: object) -> str:
        return request_for(jobs.FitOptions("llama-3.1-8b", mode="infer", **kw)).engine  # type: ignore[arg-type]

    assert engine(dtype="q4_k_m") == "llama.cpp"
    assert engine(dtype="iq4_xs") == "llama.cpp"
    assert engine(dtype="qlora") == "transformers"  # nf4-dq: bitsandbytes, not GGUF
    assert engine(dtype="bf16") == "transformers"
    assert engine() == "transformers"
