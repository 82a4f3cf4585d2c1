"""fit's arithmetic against cases computed by hand (the issue's and the reference's)."""

from __future__ import annotations

import dataclasses

import pytest

from gpuscout.errors import UnknownNameError, UsageError
from gpuscout.fit import FitRequest, estimate, load_model, lora_params, param_groups
from gpuscout.fit.activations import logits_spike
from gpuscout.fit.estimate import CUBLAS_WORKSPACE_BYTES, CUDA_CONTEXT_BYTES

L8 = load_model("llama-3-8b")
P8 = L8.params


def states(req: FitRequest) -> float:
    """Model-state bytes per parameter: weights + gradients + optimizer."""
    e = estimate(req)
    return (e.weights_bytes + e.gradients_bytes + e.optimizer_bytes) / req.model.params


def test_llama_3_8b_weights_in_bf16_are_16_06_gb() -> None:
    e = estimate(FitRequest(L8, mode="infer"))
    assert e.weights_bytes == 2 * 8_030_261_248 == 16_060_522_496
    assert round(e.weights_bytes / 1e9, 2) == 16.06


def test_kv_cache_of_llama_3_1_8b_in_bf16_is_128_kib_per_token() -> None:
    one = estimate(FitRequest(L8, mode="infer", seq_len=1)).kv_cache_bytes
    assert one == 131_072  # 2 x 32 layers x 8 kv heads x 128 x 2 bytes
    e = estimate(FitRequest(L8, mode="infer", seq_len=8192, batch_size=3))
    assert e.kv_cache_bytes == 3 * 8192 * 131_072


def test_the_kv_cache_uses_kv_heads_and_head_dim_not_query_heads() -> None:
    qwen = load_model("qwen2.5-7b")  # 28 query heads, 4 kv heads of 128
    e = estimate(FitRequest(qwen, mode="infer", seq_len=1))
    assert e.kv_cache_bytes == 2 * 28 * 4 * 128 * 2


@pytest.mark.parametrize(
    ("dtype", "optimizer", "per_param"),
    [
        ("bf16", "adamw", 16),  # ZeRO's 16 bytes: 2 w16 + 2 g16 + 4 master + 8 moments
        ("fp16", "adam", 16),
        ("fp32", "adam", 16),  # 4 + 4 + 8
        ("bf16", "sgd-momentum", 12),  # 2 + 2 + 4 master + 4 momentum
        ("fp32", "sgd", 8),
        ("bf16", "adam8bit", 10),  # 2 + 2 + 4 master + 2 (8-bit moments)
    ],
)
def test_model_states_per_parameter(dtype: str, optimizer: str, per_param: int) -> None:
    assert states(FitRequest(L8, dtype=dtype, optimizer=optimizer)) == pytest.approx(
        per_param, rel=1e-6
    )


@pytest.mark.parametrize(("zero", "formula"), [(1, (4, 12)), (2, (2, 14)), (3, (0, 16))])
@pytest.mark.parametrize("n", [2, 8])
def test_zero_stages_per_gpu(zero: int, formula: tuple[int, int], n: int) -> None:
    e = estimate(FitRequest(L8, gpus=n, zero=zero))
    per_param = (e.weights_bytes + e.gradients_bytes + e.optimizer_bytes) / P8
    replicated, sharded = formula
    expected = replicated + sharded / n
    if zero == 3:  # plus two gathered layers' 16-bit weights (the prefetch)
        gathered = 2 * 2 * param_groups(L8).linear / L8.layers  # type: ignore[operator]
        expected += gathered / P8
    assert per_param == pytest.approx(expected, rel=1e-6)


# NF4 with double quantization (the QLoRA paper, section 2): 4-bit codes, an 8-bit
# absmax per 64 weights and an fp32 scale per 256 absmax: 4.127 bits = 0.516 bytes.
NF4_DQ_BYTES = (4 + 8 / 64 + 32 / (64 * 256)) / 8


def test_qlora_nf4_base_is_about_0_52_bytes_per_parameter() -> None:
    assert pytest.approx(0.52, abs=0.01) == NF4_DQ_BYTES  # 4.13 bits
    e = estimate(FitRequest(L8, dtype="nf4-dq", lora_rank=16))
    g = param_groups(L8)
    adapters = 4 * lora_params(L8, 16)
    base = e.weights_bytes - adapters
    # the linear layers in NF4, embeddings / output layer / norms left in bf16
    assert base == pytest.approx(NF4_DQ_BYTES * g.linear + 2 * (g.total - g.linear))
    assert base / g.linear < 0.52 + 2 * (g.total - g.linear) / g.linear


def test_lora_parameter_count() -> None:
    # r x (in + out) per adapted linear: q, k, v, o of Llama-3-8B at rank 16 = 13,631,488,
    # the figure PEFT prints for this model
    assert lora_params(L8, 16) == 32 * 16 * ((4096 + 4096) * 2 + (4096 + 1024) * 2)
    assert lora_params(L8, 16) == 13_631_488
    every = lora_params(L8, 16, "all")
    assert every - lora_params(L8, 16) == 32 * 16 * 3 * (4096 + 14336)


def test_lora_trains_only_adapters_and_keeps_the_base_frozen() -> None:
    e = estimate(FitRequest(L8, lora_rank=16))
    n = lora_params(L8, 16)
    assert e.gradients_bytes == 4 * n
    assert e.optimizer_bytes == 8 * n
    assert e.weights_bytes == 2 * P8 + 4 * n


# Llama 3 8B's 32 blocks each hold 7 linears whose outputs add up to q 4096 + k 1024 +
# v 1024 + o 4096 + gate 14336 + up 14336 + down 4096 = 43,008 features.
L8_OUT_FEATURES = 32 * 43_008
L8_LINEARS = 32 * 7
# Bytes of a quantized linear weight, from each format's layout: LLM.int8 stores int8
# codes and an fp32 scale per output row; AWQ 4-bit g128 an fp16 scale and a 4-bit zero
# per 128 weights; bitsandbytes NF4 (no double quantization) an fp32 absmax per 64;
# fp8 E4M3 one fp32 scale per tensor.
QUANTIZED_LINEAR = {
    "int8": lambda linear: linear + 4 * L8_OUT_FEATURES,
    "int4": lambda linear: linear * (4 + 20 / 128) / 8,
    "nf4": lambda linear: linear * (4 + 32 / 64) / 8,
    "fp8": lambda linear: linear + 4 * L8_LINEARS,
}


@pytest.mark.parametrize("dtype", ["int8", "int4", "nf4", "fp8"])
def test_quantized_weights_keep_embeddings_and_head_in_16_bit(dtype: str) -> None:
    g = param_groups(L8)
    e = estimate(FitRequest(L8, mode="infer", dtype=dtype))
    expected = QUANTIZED_LINEAR[dtype](g.linear) + 2 * (g.total - g.linear)
    assert e.weights_bytes == pytest.approx(expected, abs=1)
    assert e.weights_bytes < estimate(FitRequest(L8, mode="infer")).weights_bytes


def test_moe_memory_holds_every_expert() -> None:
    mixtral = load_model("mixtral-8x7b")
    e = estimate(FitRequest(mixtral, mode="infer"))
    assert e.weights_bytes == 2 * mixtral.params
    assert mixtral.params > 46e9  # all 8 experts, not the 12.9B active per token


def test_tensor_parallel_splits_the_layers_and_keeps_norms_whole() -> None:
    g = param_groups(L8)
    e = estimate(FitRequest(L8, mode="infer", gpus=2, tp=2))
    assert e.weights_bytes == 2 * ((g.linear + g.embedding + g.head) / 2 + g.other)
    one = estimate(FitRequest(L8, mode="infer", seq_len=4096))
    two = estimate(FitRequest(L8, mode="infer", seq_len=4096, gpus=2, tp=2))
    assert two.kv_cache_bytes == one.kv_cache_bytes // 2


def test_logits_spike_is_12_bytes_per_token_and_vocabulary_entry() -> None:
    assert logits_spike(4096, 128_256) == 12 * 4096 * 128_256
    assert logits_spike(4096, 128_256, tp=4) == 3 * 4096 * 128_256


def test_activations_grow_linearly_with_batch_and_checkpointing_cuts_them() -> None:
    base = FitRequest(L8, lora_rank=16, seq_len=2048)
    one = estimate(base).activations_bytes
    four = estimate(dataclasses.replace(base, batch_size=4)).activations_bytes
    assert four == pytest.approx(4 * one, rel=1e-6)
    ckpt = estimate(dataclasses.replace(base, checkpointing=True)).activations_bytes
    assert ckpt < one / 2


def test_without_flash_attention_the_softmax_is_kept() -> None:
    base = FitRequest(L8, lora_rank=16, seq_len=2048)
    flash = estimate(base).activations_bytes
    eager = estimate(dataclasses.replace(base, flash_attention=False)).activations_bytes
    # fp32 probabilities and their bf16 copy: heads x seq^2 x 6 bytes per layer
    assert eager - flash >= 32 * 32 * 2048 * 2048 * 6


def test_the_llama_block_keeps_what_its_backward_needs() -> None:
    """Hand count for one LoRA (q, k, v, o) Llama-3-8B block, bytes per token: RMSNorm
    keeps its fp32 input (2 x 4h), the attention input once (2h), SDPA keeps q, k, v,
    output (2 x (2h + 2 kv)), the fp32 log-sum-exp (4 x heads), SwiGLU three
    intermediates (3 x 2i), the adapters their rank-wide middle (4 x 2r)."""
    from gpuscout.fit.activations import Regime, layer_train_bytes

    g = Regime(a=2, amp=False, full=False, lora_roles=frozenset("qkvo"), lora_rank=16)
    h, kv, i = 4096, 1024, 14336
    expected = 8 * h + 2 * h + 2 * (2 * h + 2 * kv) + 4 * 32 + 6 * i + 4 * 2 * 16
    assert layer_train_bytes(L8, g, 4096, flash=True) == expected


def test_training_peak_is_below_the_sum_of_the_terms() -> None:
    e = estimate(FitRequest(L8, seq_len=4096))
    parts = (
        e.weights_bytes,
        e.gradients_bytes,
        e.optimizer_bytes,
        e.activations_bytes,
        e.overhead_bytes,
    )
    assert e.total_bytes < sum(parts)
    assert e.low_bytes <= e.total_bytes <= e.high_bytes
    assert any("peak at" in n for n in e.notes)


def test_inference_peak_is_the_sum() -> None:
    e = estimate(FitRequest(L8, mode="infer", seq_len=4096, batch_size=8))
    assert e.total_bytes == pytest.approx(
        e.weights_bytes + e.kv_cache_bytes + e.activations_bytes + e.overhead_bytes, abs=4
    )
    assert e.overhead_bytes == CUDA_CONTEXT_BYTES + CUBLAS_WORKSPACE_BYTES


@pytest.mark.parametrize(
    ("req", "dominant", "lever"),
    [
        (FitRequest(L8, mode="infer", seq_len=1024), "weights", "--dtype int8"),
        (FitRequest(L8, seq_len=512), "optimizer", "adam8bit"),
        (FitRequest(L8, lora_rank=16, seq_len=8192), "activations", "--checkpointing"),
        (FitRequest(L8, mode="infer", seq_len=8192, batch_size=64), "kv_cache", "--seq-len"),
        (FitRequest(load_model("mlp"), dtype="fp32", batch_size=32), "overhead", "fixed"),
    ],
)
def test_dominant_term_and_its_lever(req: FitRequest, dominant: str, lever: str) -> None:
    e = estimate(req)
    assert e.dominant == dominant
    assert lever in e.lever


def test_cnn_activations_count_every_conv_output() -> None:
    r50 = load_model("resnet50")
    e = estimate(FitRequest(r50, batch_size=1, optimizer="sgd-momentum", dtype="fp32"))
    # ResNet-50 at 224: 53 convs; fp32 training keeps a few dozen MB per image
    assert 60e6 < e.activations_bytes < 150e6
    small = estimate(FitRequest(r50, batch_size=1, image_size=112, optimizer="sgd-momentum"))
    assert small.activations_bytes < e.activations_bytes / 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "infer", "lora_rank": 8}, "LoRA is a way to train"),
        ({"dtype": "int4"}, "cannot be trained directly"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"zero": 4}, "--zero must be"),
        ({"gpus": 3, "tp": 2}, "not a multiple of --tp"),
        ({"gpus": 3, "tp": 3}, "does not divide"),
        ({"mode": "infer", "zero": 2, "gpus": 2}, "apply to training"),
        ({"mode": "infer", "checkpointing": True}, "apply to training"),
        ({"lora_rank": 0}, "--lora-rank must be at least 1"),
        ({"seq_len": 0}, "--seq-len must be at least 1"),
    ],
)
def test_impossible_combinations_are_usage_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as exc:
        estimate(dataclasses.replace(FitRequest(L8), **change))  # type: ignore[arg-type]
    assert message in exc.value.message
    assert exc.value.exit_code == 2


def test_model_specific_impossibilities() -> None:
    with pytest.raises(UsageError, match="learned positions"):
        estimate(FitRequest(load_model("gpt2"), seq_len=2048))
    with pytest.raises(UsageError, match="LoRA adapts transformer"):
        estimate(FitRequest(load_model("resnet50"), lora_rank=8))
    with pytest.raises(UsageError, match="applies to transformers"):
        estimate(FitRequest(load_model("resnet50"), seq_len=128))
    with pytest.raises(UnknownNameError) as exc:
        estimate(FitRequest(L8, dtype="int3"))
    assert exc.value.exit_code == 2
    with pytest.raises(UnknownNameError):
        estimate(FitRequest(L8, optimizer="lion"))


def test_zero_over_one_gpu_is_allowed_and_says_it_shards_nothing() -> None:
    e = estimate(FitRequest(L8, zero=2))
    assert any("shards nothing" in n for n in e.notes)
    assert e.total_bytes == estimate(FitRequest(L8)).total_bytes


def test_names_are_normalised() -> None:
    e = estimate(FitRequest(L8, dtype="BFloat16", optimizer="AdamW", mode="Train"))
    assert (e.request.dtype, e.request.optimizer, e.request.mode) == ("bf16", "adamw", "train")


def test_a_dense_block_under_autocast_keeps_each_linears_16_bit_copy() -> None:
    """Hand count for one fully trained Llama-3-8B block under autocast, bytes per token:
    RMSNorm keeps its fp32 input and the fp32 normalised input (2 x 8h), q, k and v each
    a 16-bit copy of the fp32 input (3 x 2h), SDPA q, k, v, output and the log-sum-exp
    (2 x (2h + 2 kv) + 4 x heads), SwiGLU three intermediates and down's input (4 x 2i),
    gate and up each a 16-bit copy of the fp32 input (2 x 2h)."""
    from gpuscout.fit.activations import Regime, layer_train_bytes

    h, kv, i = 4096, 1024, 14336
    expected = 16 * h + 6 * h + 2 * (2 * h + 2 * kv) + 4 * 32 + 8 * i + 4 * h
    assert expected == 241_792
    g = Regime(a=2, amp=True, full=True)
    assert layer_train_bytes(L8, g, 4096, flash=True) == expected


def test_a_mixture_of_experts_block_keeps_each_routed_copy() -> None:
    """Mixtral 8x7B under autocast: as the dense block, but the MLP runs twice per token
    (2 of 8 experts), each routed token's input is gathered and each expert output kept
    (2 x 2 x 2h), the router reads a 16-bit copy (2h) and keeps fp32 probabilities (4 x 8).
    With two tensor-parallel ranks the norms and column-parallel inputs stay whole."""
    from gpuscout.fit.activations import Regime, layer_train_bytes

    mixtral = load_model("mixtral-8x7b")
    h, kv, i = 4096, 1024, 14336
    replicated = 16 * h + 6 * h + 2 * h
    split = 2 * (2 * h + 2 * kv) + 4 * 32 + 2 * 8 * i + 2 * 2 * 2 * h + 4 * 8
    assert (replicated, split) == (98_304, 282_784)
    g = Regime(a=2, amp=True, full=True)
    assert layer_train_bytes(mixtral, g, 4096, flash=True) == replicated + split
    assert layer_train_bytes(mixtral, g, 4096, flash=True, tp=2) == replicated + split / 2


def test_a_vit_keeps_its_image_and_the_16_bit_copy() -> None:
    from gpuscout.fit.activations import Regime, layer_train_bytes, model_extra_train_bytes

    vit = load_model("vit-b-16")  # 12 layers, 197 tokens, no vocabulary: no loss spike
    g = Regime(a=2, amp=True, full=True)
    tokens = 4 * 197
    image = 4 * (4 + 2) * 3 * 224 * 224  # fp32 pixels and their bf16 copy, 4 images
    expected = tokens * (
        12 * layer_train_bytes(vit, g, 197, True) + model_extra_train_bytes(vit, g)
    )
    e = estimate(FitRequest(vit, batch_size=4))
    assert e.activations_bytes == pytest.approx(expected + image, abs=1)


@pytest.mark.parametrize(
    ("req", "notes"),
    [
        (
            FitRequest(L8, gpus=4, zero=3),
            [
                # 2 (bf16 weights) + 2 (gradients) + 4 (fp32 masters) + 8 (Adam's moments)
                "mixed precision: bf16 compute, fp32 master weights: 16 bytes per parameter "
                "with adamw before sharding (weights, gradients, masters, optimizer states)",
                "ZeRO-3/FSDP: two layers' weights gathered at a time (prefetch)",
                "4 GPUs: 4 data-parallel x 1 tensor-parallel; bytes per GPU",
            ],
        ),
        (
            FitRequest(L8, dtype="fp8", optimizer="sgd", gpus=4, tp=2),
            [
                # 2 + 2 + 4 (fp32 masters) + 0 (plain SGD keeps no state)
                "mixed precision: fp8 compute, fp32 master weights: 8 bytes per parameter "
                "with sgd before sharding (weights, gradients, masters, optimizer states)",
                "fp8 training keeps high-precision masters: no saving on model states",
                "4 GPUs: 2 data-parallel x 2 tensor-parallel; bytes per GPU",
            ],
        ),
        (FitRequest(L8, dtype="fp32", zero=1), ["ZeRO over one data-parallel rank shards nothing"]),
        (
            FitRequest(L8, dtype="nf4", lora_rank=16, gpus=2, zero=3),
            [
                # q, k, v, o: 16 x ((4096 + 4096) x 2 + (4096 + 1024) x 2) x 32 layers
                "QLoRA rank 16 on attention linears: 13,631,488 trainable parameters "
                "(fp32 adapters) on a frozen nf4 base",
                "2 GPUs: 2 data-parallel x 1 tensor-parallel; bytes per GPU",
            ],
        ),
        (
            FitRequest(L8, lora_rank=8, lora_targets="all"),
            [
                "LoRA rank 8 on all linears: 20,971,520 trainable parameters "
                "(fp32 adapters) on a frozen bf16 base",
            ],
        ),
        (
            FitRequest(L8, mode="infer", dtype="int8", gpus=2, tp=2),
            [
                "KV cache in bf16, activations in 16-bit (weights only are quantized)",
                "2 GPUs: 1 data-parallel x 2 tensor-parallel; bytes per GPU",
            ],
        ),
        (FitRequest(L8, mode="infer"), []),
    ],
)
def test_the_notes_say_how_the_bytes_were_counted(req: FitRequest, notes: list[str]) -> None:
    got = list(estimate(req).notes)
    if req.mode == "train":  # the last note says where the peak falls
        assert got.pop().startswith("peak at ")
    assert got == notes


def test_lora_under_zero_3_shards_only_the_frozen_base() -> None:
    n = lora_params(L8, 16)
    e = estimate(FitRequest(L8, lora_rank=16, gpus=4, zero=3))
    assert e.weights_bytes == round(2 * P8 / 4 + 4 * n)  # no gathered layers: nothing to train
    assert (e.gradients_bytes, e.optimizer_bytes) == (round(4 * n / 4), round(8 * n / 4))


def test_eager_attention_keeps_the_softmax_per_head_and_position() -> None:
    """Per token: eager attention keeps q, k and v expanded to every head and the output
    (4 x a x q width) and the softmax over seq positions per head, in fp32 plus a 16-bit
    copy (6 bytes; fp32 alone: 4); flash keeps q, k, v, output and the log-sum-exp."""
    from gpuscout.fit.activations import Regime, layer_train_bytes

    heads, q, kv, seq = 32, 4096, 1024, 2048
    for a, softmax in ((2, 6), (4, 4)):
        g = Regime(a=a, amp=False, full=False, lora_roles=frozenset("qkvo"), lora_rank=16)
        eager = a * 4 * q + heads * seq * softmax
        flash = a * (2 * q + 2 * kv) + 4 * heads
        difference = layer_train_bytes(L8, g, seq, False) - layer_train_bytes(L8, g, seq, True)
        assert difference == eager - flash
