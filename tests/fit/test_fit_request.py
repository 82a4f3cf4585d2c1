"""check_request: names read as written by people, impossible requests refused with one
whole line each, and, when a request has several faults, the first in the order below."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gpuscout.errors import UnknownNameError, UsageError
from gpuscout.fit import FitRequest, load_model
from gpuscout.fit.request import check_request

L8 = load_model("llama-3-8b")  # 32 heads, rotary positions
GPT2 = load_model("gpt2")  # 1024 learned positions
R50 = load_model("resnet50")
VIT = load_model("vit-b-16")  # 196 patches + the class token


def test_names_are_normalised() -> None:
    req = FitRequest(L8, mode=" Train ", dtype="bfloat16", optimizer="AdamW", lora_targets="ALL")
    got = check_request(req)
    assert (got.mode, got.dtype, got.optimizer, got.lora_targets) == (
        "train",
        "bf16",
        "adamw",
        "all",
    )
    assert got.model is L8 and got.batch_size == 1
    assert check_request(FitRequest(L8, dtype="half", optimizer="sgdm")).dtype == "fp16"
    assert check_request(FitRequest(L8, dtype="float32", optimizer="sgdm")).optimizer == (
        "sgd-momentum"
    )
    assert check_request(FitRequest(L8, optimizer="Adam-8bit")).optimizer == "adam8bit"


@pytest.mark.parametrize(
    ("change", "message", "hint"),
    [
        ({"mode": "trian"}, "unknown mode 'trian'", "did you mean train?"),
        ({"mode": "xyz"}, "unknown mode 'xyz'", "use one of train, infer"),
        ({"lora_targets": "mlp"}, "unknown LoRA target set 'mlp'", "use one of attention, all"),
    ],
)
def test_unknown_names(change: dict[str, Any], message: str, hint: str) -> None:
    with pytest.raises(UnknownNameError) as exc:
        check_request(dataclasses.replace(FitRequest(L8), **change))
    assert (exc.value.message, exc.value.hint) == (message, hint)


@pytest.mark.parametrize(
    ("model", "change", "message"),
    [
        (L8, {"batch_size": 0}, "--batch-size must be at least 1, not 0"),
        (L8, {"gpus": 0}, "--gpus must be at least 1, not 0"),
        (L8, {"tp": -1}, "--tp must be at least 1, not -1"),
        (L8, {"seq_len": 0}, "--seq-len must be at least 1, not 0"),
        (
            L8,
            {"image_size": 224},
            "--image-size applies to CNN models only, and must be at least 32",
        ),
        (
            R50,
            {"image_size": 16},
            "--image-size applies to CNN models only, and must be at least 32",
        ),
        (L8, {"zero": 4}, "--zero must be 0, 1, 2 or 3, not 4"),
        (L8, {"gpus": 3, "tp": 2}, "--gpus 3 is not a multiple of --tp 2"),
        (
            L8,
            {"mode": "infer", "lora_rank": 8},
            "LoRA is a way to train: drop --lora-rank for --infer",
        ),
        (L8, {"lora_rank": 0}, "--lora-rank must be at least 1, not 0"),
        (R50, {"lora_rank": 8}, "LoRA adapts transformer layers; resnet50 is a cnn"),
        (L8, {"dtype": "nf4"}, "nf4 weights cannot be trained directly"),
        (L8, {"mode": "infer", "zero": 1}, "--zero and --checkpointing apply to training"),
        (
            L8,
            {"mode": "infer", "checkpointing": True},
            "--zero and --checkpointing apply to training",
        ),
        (
            R50,
            {"gpus": 2, "tp": 2},
            "tensor parallelism splits transformer layers; resnet50 is not one",
        ),
        (L8, {"gpus": 6, "tp": 3}, "--tp 3 does not divide the model's 32 heads"),
        (R50, {"seq_len": 128}, "--seq-len applies to transformers; resnet50 is a cnn"),
        (VIT, {"seq_len": 196}, "a ViT's sequence is fixed by its image: 197"),
        (GPT2, {"seq_len": 1025}, "--seq-len 1025 is longer than gpt2's 1024 learned positions"),
        # several faults: the first of the order above is the one named
        (
            L8,
            {"mode": "infer", "lora_rank": 8, "zero": 1},
            "LoRA is a way to train: drop --lora-rank for --infer",
        ),
        (L8, {"zero": 9, "mode": "infer", "lora_rank": 8}, "--zero must be 0, 1, 2 or 3, not 9"),
        (L8, {"batch_size": 0, "gpus": 0}, "--batch-size must be at least 1, not 0"),
        (
            L8,
            {"image_size": 8, "zero": 9},
            "--image-size applies to CNN models only, and must be at least 32",
        ),
        (L8, {"zero": 9, "gpus": 3, "tp": 2}, "--zero must be 0, 1, 2 or 3, not 9"),
        (
            L8,
            {"mode": "infer", "lora_rank": 0},
            "LoRA is a way to train: drop --lora-rank for --infer",
        ),
        (R50, {"lora_rank": 0}, "--lora-rank must be at least 1, not 0"),
        (
            R50,
            {"lora_rank": 8, "dtype": "int8", "gpus": 2, "tp": 2},
            "LoRA adapts transformer layers; resnet50 is a cnn",
        ),
        (
            L8,
            {"mode": "infer", "zero": 1, "gpus": 6, "tp": 3},
            "--zero and --checkpointing apply to training",
        ),
        (
            R50,
            {"gpus": 2, "tp": 2, "seq_len": 64},
            "tensor parallelism splits transformer layers; resnet50 is not one",
        ),
    ],
)
def test_impossible_requests_name_their_first_fault(
    model: Any, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as exc:
        check_request(dataclasses.replace(FitRequest(model), **change))
    assert exc.value.message == message
    assert not isinstance(exc.value, UnknownNameError)


def test_the_usage_errors_that_say_what_to_do_instead() -> None:
    with pytest.raises(UsageError) as exc:
        check_request(FitRequest(L8, dtype="int4"))
    assert exc.value.hint == (
        "add --lora-rank 16 for QLoRA (a frozen awq-4bit-g128 base with trainable adapters)"
    )
    with pytest.raises(UsageError) as exc:
        check_request(FitRequest(L8, mode="infer", zero=3, gpus=2))
    assert exc.value.hint == "for inference over several GPUs use --tp"


@pytest.mark.parametrize(
    ("model", "change"),
    [
        (VIT, {"seq_len": 197}),
        (GPT2, {"seq_len": 1024}),
        (L8, {"seq_len": 131_072, "gpus": 8, "tp": 4, "zero": 3}),
        (R50, {"image_size": 32, "gpus": 4, "zero": 2}),
        (L8, {"dtype": "nf4", "lora_rank": 16, "checkpointing": True}),
        (L8, {"mode": "infer", "dtype": "awq-4bit-g128", "gpus": 2, "tp": 2}),
    ],
)
def test_possible_requests_pass_unchanged(model: Any, change: dict[str, Any]) -> None:
    req = dataclasses.replace(FitRequest(model), **change)
    assert check_request(req) == req
