"""`gpuscout advise --model` and `gpuscout fit` ask fit one question: the same options
(format, LoRA, checkpointing, sequence, engine) build the same FitRequest, and advise's
"fits" column says what fit_on says for that GPU."""

from __future__ import annotations

import dataclasses

import pytest

from gpuscout import jobs
from gpuscout.catalog import find_gpu
from gpuscout.errors import UsageError
from gpuscout.fit import fit_on
from gpuscout.jobs.memory_fit import request_for
from gpuscout.predict import fitcheck
from gpuscout.predict.derived import model_basis

GIB = 2**30
QLORA = jobs.FitOptions("llama-3-8b", lora_rank=16, dtype="nf4")


def test_advise_and_fit_build_one_request() -> None:
    req = request_for(QLORA)
    assert req.lora_rank == 16 and req.dtype == "nf4"
    assert req.checkpointing  # LoRA's default, as PEFT's recipes
    basis, _ = model_basis(req)
    assert basis.fit_request == req
    # the projection asks in its own precision; a quantized base stays quantized
    assert fitcheck.request(basis, "bf16") == req
    full = request_for(jobs.FitOptions("llama-3-8b", dtype="bf16"))
    assert fitcheck.request(model_basis(full)[0], "fp16").dtype == "fp16"


def test_the_students_question_gets_fits_answer() -> None:
    advice = jobs.advise(
        None, jobs.AdviseOptions(model="llama-3-8b", mode="train", budget_usd=500, regime=QLORA)
    )
    row = next(r for r in advice.rows if r.option == "consumer")
    assert row.gpu_id is not None and row.fits is True
    answer = fit_on(request_for(QLORA), find_gpu(row.gpu_id))
    assert answer.fits
    usable = round(answer.usable_bytes / GIB)
    assert f"needs {answer.need_bytes / GIB:.1f} of {usable} GiB usable" in row.note


def test_without_a_regime_the_model_keeps_its_defaults() -> None:
    advice = jobs.advise(None, jobs.AdviseOptions(model="llama-3-8b", mode="train"))
    assert "8 x params FLOPs per token" in " ".join(advice.assumptions)
    with pytest.raises(UsageError):
        request_for(dataclasses.replace(QLORA, dtype="q4_k_z"))
