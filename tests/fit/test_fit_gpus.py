"""Fit on catalog GPUs: fits or not, the largest batch and the longest context."""

from __future__ import annotations

import dataclasses

import pytest

from gpuscout.catalog import find_gpu, load_gpus
from gpuscout.errors import UsageError
from gpuscout.fit import FitRequest, default_gpus, estimate, fit_across, fit_on, load_model
from gpuscout.fit.on_gpu import USABLE_FRACTION, max_batch_within, need_bytes

L8 = load_model("llama-3-8b")


def need(req: FitRequest) -> int:
    return need_bytes(estimate(req))


def test_llama_8b_inference_fits_an_h100_and_not_a_16_gb_card() -> None:
    req = FitRequest(L8, mode="infer", seq_len=4096)
    h100, small = fit_across(req, [find_gpu("h100-sxm5-80gb"), find_gpu("rtx-4060-ti-16gb")])
    assert h100.fits and not small.fits
    assert small.max_batch_size is None and small.max_seq_len is None
    assert h100.usable_bytes == round(80 * 1024**3 * USABLE_FRACTION)


def test_the_largest_batch_is_the_boundary() -> None:
    req = FitRequest(L8, mode="infer", seq_len=4096)
    f = fit_on(req, find_gpu("rtx-4090"))
    assert f.max_batch_size is not None and f.max_batch_size >= 1
    assert need(dataclasses.replace(req, batch_size=f.max_batch_size)) <= f.usable_bytes
    assert need(dataclasses.replace(req, batch_size=f.max_batch_size + 1)) > f.usable_bytes
    assert max_batch_within(req, f.usable_bytes) == f.max_batch_size


def test_the_longest_context_is_the_boundary_or_the_model_s_limit() -> None:
    req = FitRequest(load_model("llama-3.2-1b"), lora_rank=16, seq_len=1024)
    f = fit_on(req, find_gpu("rtx-4090"))
    assert f.max_seq_len is not None
    assert need(dataclasses.replace(req, seq_len=f.max_seq_len)) <= f.usable_bytes
    assert need(dataclasses.replace(req, seq_len=f.max_seq_len + 1)) > f.usable_bytes
    big = fit_on(FitRequest(L8, mode="infer", seq_len=1024), find_gpu("h200-sxm-141gb"))
    assert big.max_seq_len == L8.max_seq_len  # 8192: the model's own limit


def test_cnns_have_no_context_and_bigger_gpus_take_bigger_batches() -> None:
    req = FitRequest(load_model("resnet50"), batch_size=64, optimizer="sgd-momentum")
    small, large = fit_across(req, [find_gpu("rtx-4090"), find_gpu("h100-sxm5-80gb")])
    assert small.max_seq_len is None and large.max_seq_len is None
    assert small.max_batch_size is not None and large.max_batch_size is not None
    assert large.max_batch_size > 3 * small.max_batch_size


def test_every_catalog_gpu_and_the_default_set() -> None:
    req = FitRequest(load_model("llama-3.2-1b"), mode="infer", seq_len=2048)
    fits = fit_across(req, load_gpus())
    assert len(fits) == len(load_gpus())
    assert all(f.fits == (f.need_bytes <= f.usable_bytes) for f in fits)
    assert len(default_gpus()) >= 6
    with pytest.raises(UsageError):
        fit_across(req, [])
