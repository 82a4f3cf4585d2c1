"""`gpuscout fit --measure` on a real CUDA GPU: the measured peak is near the prediction,
and the largest-batch search runs into out-of-memory errors and comes back from them."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

from gpuscout.fit import FitRequest, estimate, load_model  # noqa: E402
from gpuscout.fit.estimate import CUDA_CONTEXT_BYTES  # noqa: E402
from gpuscout.fit.measure.driver import measure  # noqa: E402
from gpuscout.fit.on_gpu import max_batch_within  # noqa: E402


@pytest.mark.parametrize(
    "req",
    [
        FitRequest(load_model("llama-125m"), lora_rank=8, seq_len=1024, batch_size=4),
        FitRequest(load_model("llama-125m"), mode="infer", seq_len=4096, batch_size=8),
        FitRequest(load_model("encoder"), seq_len=128, batch_size=32),
    ],
    ids=["lora", "infer", "encoder"],
)
def test_the_allocator_peak_is_within_10_percent_of_the_prediction(req: FitRequest) -> None:
    m = measure(req, "cuda:0", search=False, timeout_s=600)
    assert m.status == "ok", m.error
    assert m.fits and m.allocated_peak_bytes
    # What the allocator reserved covers what it handed out (rounding, fragmentation).
    assert m.reserved_peak_bytes is not None
    assert m.reserved_peak_bytes >= m.allocated_peak_bytes
    est = estimate(req)
    predicted_allocated = est.total_bytes - CUDA_CONTEXT_BYTES  # everything but the context
    assert predicted_allocated == pytest.approx(m.allocated_peak_bytes, rel=0.10)
    if m.context_bytes is not None:  # NVML saw the process's memory outside the allocator
        assert 50 * 2**20 < m.context_bytes < 4 * 2**30


def test_the_search_survives_out_of_memory_and_lands_near_the_prediction() -> None:
    req = FitRequest(load_model("llama-125m"), seq_len=2048, batch_size=1)
    m = measure(req, "cuda:0", search=True, cap=4096, timeout_s=600)
    assert m.status == "ok", m.error
    assert m.search_error is None, m.search_error
    assert m.max_batch is not None and not m.max_batch_capped
    assert any(not fits for _, fits, _ in m.trials)  # it hit OOM and went on
    assert m.memory_total_bytes is not None
    predicted = max_batch_within(req, m.memory_total_bytes)
    assert predicted is not None
    assert m.max_batch == pytest.approx(predicted, rel=0.25)
