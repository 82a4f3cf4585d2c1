"""--measure without a GPU: the worker path with fakes (a result, an OOM, a crash), the
requests it refuses, the steps it runs (on the CPU, tiny models), and fit's arithmetic
against the bytes autograd really keeps (fake tensors, fit/measure/simulate.py)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from gpuscout.errors import UsageError
from gpuscout.fit import FitRequest, estimate, load_model
from gpuscout.fit.measure.driver import check_measurable, cuda_device, fit_results, measure
from gpuscout.fit.models import finish_spec

torch = pytest.importorskip("torch")

from helpers.numerics import U32, llama_path_length  # noqa: E402


def w_ok(req: Any, device: str, search: bool, cap: int, **limits: Any) -> dict[str, Any]:
    return {
        "status": "ok",
        "device_name": "Fake",
        "memory_total_bytes": 16 * 1024**3,
        "fits": True,
        "allocated_peak_bytes": 1000,
        "context_bytes": None,  # no NVML: the constant stands in
        "context_source": "not measured (no NVML)",
        "max_batch": 7,
        "max_batch_capped": False,
        "trials": [(1, True, 1000), (8, False, None), (7, True, 6000)],
    }


def w_oom(req: Any, device: str, search: bool, cap: int, **limits: Any) -> dict[str, Any]:
    raise MemoryError("CUDA out of memory while building the model")


def w_crash(req: Any, device: str, search: bool, cap: int, **limits: Any) -> dict[str, Any]:
    os._exit(3)  # a driver crash takes the process down without a word


SMALL = FitRequest(load_model("llama-tiny"), lora_rank=4, seq_len=32, batch_size=2)


def test_a_worker_result_becomes_a_measurement() -> None:
    from gpuscout.fit.estimate import CUDA_CONTEXT_BYTES

    m = measure(SMALL, target=w_ok, timeout_s=120)
    assert m.status == "ok" and m.device_name == "Fake"
    assert m.peak_bytes == 1000 + CUDA_CONTEXT_BYTES
    assert m.max_batch == 7 and m.trials[1] == (8, False, None)


@pytest.mark.parametrize(("target", "status"), [(w_oom, "oom"), (w_crash, "failed")])
def test_an_oom_or_a_crash_is_a_recorded_outcome(target: Any, status: str) -> None:
    m = measure(SMALL, target=target, timeout_s=120)
    assert m.status == status and m.peak_bytes is None
    assert m.error
    est = estimate(SMALL)
    predicted, measured = fit_results(est, m, 3)
    assert predicted.figure == est.total_bytes and predicted.extra["max_batch"] == 3
    assert measured.status == status and measured.figure is None


def w_search_stopped(
    req: Any, device: str, search: bool, cap: int, **limits: Any
) -> dict[str, Any]:
    out = w_ok(req, device, search, cap) | {"device_name": device}
    del out["max_batch"], out["trials"]
    return out | {"search_error": "RuntimeError: CUDA error: invalid configuration argument"}


def test_measure_runs_on_one_indexed_cuda_device() -> None:
    assert cuda_device("cuda") == "cuda:0" and cuda_device(" CUDA:2 ") == "cuda:2"
    for bad in ("cpu", "cuda:", "all", "cuda:0,cuda:1", "mps", "0"):
        with pytest.raises(UsageError, match="one CUDA GPU"):
            cuda_device(bad)


def test_a_search_stopped_by_an_error_keeps_the_measured_peak() -> None:
    m = measure(SMALL, "cuda", target=w_search_stopped, timeout_s=120)
    assert m.device == "cuda:0" and m.device_name == "cuda:0"  # what the worker was given
    assert m.status == "ok" and m.peak_bytes is not None and m.max_batch is None
    assert m.search_error and m.search_error.startswith("RuntimeError")
    _, measured = fit_results(estimate(SMALL), m, 3)
    assert measured.status == "ok" and measured.extra["search_error"] == m.search_error


def test_nvml_used_memory_is_keyed_as_torch_names_the_gpu() -> None:
    from gpuscout.fit.measure.trials import _uuid_key, nvml_used
    from gpuscout.probe.fake_nvml import FakeNvml

    uuid = "58e5ee2f-5ebe-f3d6-dc35-8a5f3a1b2c3d"  # str(torch's device properties .uuid)
    gpu = {"name": "NVIDIA H100 80GB HBM3", "uuid": f"GPU-{uuid}", "memory_used_bytes": 7}
    assert nvml_used(FakeNvml({"devices": [gpu | {"memory_total_bytes": 80 * 2**30}]})) == {
        _uuid_key(uuid): 7
    }
    assert nvml_used(FakeNvml({"devices": [gpu]}).fail_init("DRIVER_NOT_LOADED")) == {}


def test_an_out_of_memory_error_is_one_line_even_without_text() -> None:
    from gpuscout.fit.measure.trials import oom_message

    assert oom_message(MemoryError()) == "MemoryError"  # what a failed host allocation raises
    text = "CUDA out of memory. Tried to allocate 2.00 GiB.\nOf the allocated memory ..."
    assert (
        oom_message(torch.OutOfMemoryError(text))
        == "CUDA out of memory. Tried to allocate 2.00 GiB."
    )


def test_without_cuda_the_worker_says_so() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from gpuscout.fit.measure.trials import measure_in_worker

    assert measure_in_worker(SMALL)["status"] == "no_cuda"


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (FitRequest(load_model("llama-3-8b"), gpus=2, zero=2), "one GPU"),
        (FitRequest(load_model("llama-3-8b"), dtype="nf4", lora_rank=8), "fp32, bf16 or fp16"),
        (FitRequest(load_model("llama-3-8b"), optimizer="adam8bit"), "bitsandbytes"),
        (FitRequest(load_model("gpt2")), "Llama-shaped"),
        (FitRequest(load_model("vit-b-16")), "no vit"),
        (FitRequest(load_model("mixtral-8x7b"), mode="infer"), "no moe-decoder"),
        (FitRequest(load_model("llama-3-8b"), flash_attention=False), "scaled_dot_product"),
    ],
)
def test_requests_measure_cannot_build(req: FitRequest, message: str) -> None:
    with pytest.raises(UsageError) as exc:
        check_measurable(req)
    assert message in exc.value.message


# -- the steps, for real, on the CPU ---------------------------------------------------


def job(req: FitRequest) -> Any:
    from gpuscout.fit.measure.trials import Job

    return Job(req, torch.device("cpu"))


@pytest.mark.parametrize(
    "req",
    [
        SMALL,
        dataclasses.replace(SMALL, checkpointing=True, lora_targets="all"),
        FitRequest(load_model("llama-tiny"), dtype="fp32", seq_len=16, batch_size=2),
        FitRequest(load_model("encoder-bert-tiny"), seq_len=16, batch_size=2),
        FitRequest(load_model("encoder-bert-tiny"), seq_len=16, batch_size=2, checkpointing=True),
        FitRequest(load_model("resnet-tiny"), image_size=32, batch_size=2, optimizer="sgd"),
        FitRequest(load_model("mlp"), dtype="fp32", batch_size=4, optimizer="adam"),
    ],
    ids=["lora", "lora-all-ckpt", "llama-fp32", "encoder", "encoder-ckpt", "resnet", "mlp"],
)
def test_a_training_trial_changes_exactly_the_trainable_weights(req: FitRequest) -> None:
    j = job(req)
    before = {n: p.detach().clone() for n, p in j.model.named_parameters()}
    j.trial(req.batch_size)
    for name, p in j.model.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        if not p.requires_grad:
            assert not changed, f"frozen {name} changed"
    trained = [n for n, p in j.model.named_parameters() if p.requires_grad]
    assert any(not torch.equal(before[n], dict(j.model.named_parameters())[n]) for n in trained)
    assert all(p.grad is None for p in j.model.parameters())  # zero_grad(set_to_none)


# What the forward passes of an inference trial at batch 3, sequence 40 (images 32 x 32)
# must output, counted by hand from the request and each row's shape in models.toml:
# llama-tiny's vocabulary is 256 and the tiny BERT's 1,000; the ResNet has 1,000 classes,
# the MLP 10. A decoder's trial prefills the prompt (40 - DECODE_STEPS = 38 tokens; the
# 3 x 40 tokens are under PREFILL_TOKENS = 2,048, so one chunk) and reads the logits of its
# last position, then decodes DECODE_STEPS = 2 tokens one at a time: three outputs of
# (3, 1, 256). The others run one forward pass over the whole batch.
INFERENCE_OUTPUTS = {
    "llama-tiny": [(3, 1, 256)] * 3,
    "encoder-bert-tiny": [(3, 40, 1000)],
    "resnet-tiny": [(3, 1000)],
    "mlp": [(3, 10)],
}


@pytest.mark.parametrize("model_id", list(INFERENCE_OUTPUTS))
def test_an_inference_trial_runs(model_id: str) -> None:
    from gpuscout.fit.estimate import PREFILL_TOKENS
    from gpuscout.fit.measure.trials import DECODE_STEPS

    assert (DECODE_STEPS, PREFILL_TOKENS) == (2, 2048)  # the counts above
    spec = load_model(model_id)
    extra: dict[str, Any] = {"seq_len": 40} if spec.is_transformer else {}
    if spec.family == "cnn":
        extra = {"image_size": 32}
    req = FitRequest(spec, mode="infer", batch_size=3, dtype="fp32", **extra)
    j = job(req)
    # A decoder's trial writes its own forward (fit's way); its untied output layer sees
    # every logit it computes. The others are called as a whole.
    head = j.model.output if spec.family == "decoder" else j.model
    shapes: list[tuple[int, ...]] = []
    hook = head.register_forward_hook(lambda m, i, out: shapes.append(tuple(out.shape)))
    before = {n: p.detach().clone() for n, p in j.model.named_parameters()}
    j.trial(3)
    hook.remove()
    assert shapes == INFERENCE_OUTPUTS[model_id]
    # Inference trains nothing: no optimizer, no gradients, the weights as built.
    assert j.opt is None and not j.model.training
    assert all(p.grad is None for p in j.model.parameters())
    assert all(torch.equal(before[n], p) for n, p in j.model.named_parameters())


MHA = finish_spec(  # q, k and v with as many heads: attention without enable_gqa
    {
        "id": "tiny-mha",
        "name": "a tiny decoder with multi-head attention",
        "family": "decoder",
        "layers": 2,
        "hidden": 64,
        "heads": 4,
        "intermediate": 176,
        "vocab": 256,
        "source": "tests",
    }
)


@pytest.mark.parametrize("spec", [load_model("llama-tiny"), MHA], ids=["gqa", "mha"])
def test_prefill_into_the_cache_gives_the_same_states_as_without_it(spec: Any) -> None:
    from gpuscout.fit.measure.build import decoder_hidden

    req = FitRequest(spec, mode="infer", dtype="fp32", seq_len=12)
    model = job(req).model
    tokens = torch.randint(0, 256, (2, 12))
    shape = (2, spec.kv_heads, 12, spec.head_dim)
    cache = [(torch.zeros(shape), torch.zeros(shape)) for _ in range(spec.layers or 0)]
    with torch.no_grad():
        full = decoder_hidden(model, tokens)
        first = decoder_hidden(model, tokens[:, :8], cache=cache)
        rest = [
            decoder_hidden(model, tokens[:, i : i + 1], cache=cache, start=i) for i in range(8, 12)
        ]
    # With and without the cache sum in other orders (other shapes, SDPA kernels): each
    # fp32 run is within S*u*max|h| of the exact states (tests/helpers/numerics.py; S ~ 1.2e3
    # for these shapes, max|h| ~ 3 after RMSNorm), so the two within twice that, ~5e-4;
    # keys written one position off move them by ~0.3.
    length = llama_path_length(
        layers=spec.layers or 0,
        dim=spec.hidden,
        heads=spec.heads,
        head_dim=spec.head_dim,
        ffn=spec.intermediate,
        keys=12,
    )
    atol = 2 * length * U32 * float(full.abs().max())
    torch.testing.assert_close(first, full[:, :8], rtol=0, atol=atol)
    torch.testing.assert_close(torch.cat(rest, 1), full[:, 8:], rtol=0, atol=atol)


# -- arithmetic vs the bytes autograd keeps --------------------------------------------

MINI = finish_spec(
    {
        "id": "mini-llama",
        "name": "a small Llama-shaped decoder",
        "family": "decoder",
        "layers": 4,
        "hidden": 256,
        "heads": 8,
        "kv_heads": 2,
        "intermediate": 704,
        "vocab": 4096,
        "source": "tests",
    }
)


@pytest.mark.parametrize(
    "req",
    [
        FitRequest(MINI, lora_rank=8, seq_len=256, batch_size=2),
        FitRequest(MINI, seq_len=256, batch_size=2),
        FitRequest(MINI, mode="infer", seq_len=512, batch_size=4),
        FitRequest(load_model("encoder-bert-tiny"), seq_len=128, batch_size=8),
        FitRequest(load_model("mlp"), dtype="fp32", batch_size=256, optimizer="adam"),
        FitRequest(load_model("resnet18"), image_size=64, batch_size=4, optimizer="sgd-momentum"),
    ],
    ids=["lora", "full", "infer", "encoder", "mlp", "resnet18"],
)
def test_the_arithmetic_matches_what_autograd_keeps(req: FitRequest) -> None:
    from gpuscout.fit.measure.simulate import simulate_peak

    sim = simulate_peak(req)
    est = estimate(req)
    predicted = est.total_bytes - est.overhead_bytes  # the allocator's part
    assert predicted == pytest.approx(sim["peak_bytes"], rel=0.05), sim


@pytest.mark.parametrize(
    ("model", "change", "words"),
    [
        ("qwen3-8b", {}, "q/k norms"),
        ("qwen2.5-7b", {}, "biases"),
        ("gemma-2-9b", {}, "head width"),
        ("llama-3-8b", {"sandwich_norm": True}, "norms around attention and MLP"),
        ("deepseek-v3", {}, "no moe-decoder model"),
        ("phi-3-mini", {}, None),  # fused projections hold and run as separate ones
    ],
)
def test_measure_refuses_what_its_plain_llama_cannot_be(
    model: str, change: dict[str, Any], words: str | None
) -> None:
    req = FitRequest(dataclasses.replace(load_model(model), **change), seq_len=1024)
    if words is None:
        assert check_measurable(req).model.id == model
        return
    with pytest.raises(UsageError, match=words):
        check_measurable(req)


def test_measure_refuses_a_context_past_the_sliding_window() -> None:
    spec = load_model("mistral-7b")  # v0.1: a 4096-token window on every layer
    assert check_measurable(FitRequest(spec, seq_len=4096)).model.id == "mistral-7b"
    with pytest.raises(UsageError, match="slides a 4096 window"):
        check_measurable(FitRequest(spec, seq_len=8192))
