"""`gpuscout fit --measure`'s worker (trials.measure_in_worker) run in this process
against a stand-in CUDA allocator and NVML: where the peaks are read, how the context is
measured, and that out-of-memory trials free their memory so the search can go on."""

from __future__ import annotations

import weakref
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from gpuscout.fit import FitRequest, load_model  # noqa: E402
from gpuscout.fit.measure import trials  # noqa: E402

MIB = 2**20
CAPACITY, WEIGHTS, PER_SAMPLE = 1000 * MIB, 100 * MIB, 10 * MIB  # fits up to batch 90
CONTEXT, OTHERS = 500 * MIB, 3000 * MIB  # our CUDA context; other processes' memory
UUID = "GPU-12345678-aaaa-bbbb-cccc-0123456789ab"


class Block:
    """One allocation; its bytes go back when the last reference to it goes."""


class FakeAllocator:
    """torch.cuda's memory statistics over blocks freed when nothing references them."""

    def __init__(self) -> None:
        self.allocated = self.peak = self.reserved = self.reserved_peak = 0
        self.context = False  # created by set_device, as CUDA 12+ does
        self.log: list[str] = []

    def alloc(self, nbytes: int) -> object:
        if self.allocated + nbytes > CAPACITY:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {nbytes} bytes")
        self.allocated += nbytes
        self.reserved = max(self.reserved, self.allocated)  # the cache keeps what it got
        self.peak = max(self.peak, self.allocated)
        self.reserved_peak = max(self.reserved_peak, self.reserved)
        block = Block()
        weakref.finalize(block, self.free, nbytes)
        return block

    def free(self, nbytes: int) -> None:
        self.allocated -= nbytes

    def reset_peak(self, device: Any = None) -> None:
        self.log.append("reset")
        self.peak, self.reserved_peak = self.allocated, self.reserved

    def empty_cache(self) -> None:
        self.log.append("empty_cache")
        self.reserved = self.allocated

    def nvml_used(self) -> dict[str, int]:
        used = OTHERS + (CONTEXT + self.reserved if self.context else 0)
        return {trials._uuid_key(UUID): used}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAllocator:
    a = FakeAllocator()
    cuda = torch.cuda
    props = SimpleNamespace(name="Fake GPU", total_memory=CAPACITY, uuid=UUID[4:])
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 1)
    monkeypatch.setattr(cuda, "set_device", lambda d: setattr(a, "context", True))
    monkeypatch.setattr(cuda, "get_device_properties", lambda d: props)
    monkeypatch.setattr(cuda, "synchronize", lambda d=None: a.log.append("sync"))
    monkeypatch.setattr(cuda, "reset_peak_memory_stats", a.reset_peak)
    monkeypatch.setattr(cuda, "max_memory_allocated", lambda d=None: a.peak)
    monkeypatch.setattr(cuda, "max_memory_reserved", lambda d=None: a.reserved_peak)
    monkeypatch.setattr(cuda, "memory_reserved", lambda d=None: a.reserved)
    monkeypatch.setattr(cuda, "empty_cache", a.empty_cache)
    monkeypatch.setattr(trials, "nvml_used", a.nvml_used)

    class Opt:
        def zero_grad(self, set_to_none: bool = True) -> None:
            a.log.append("zero_grad")

    class Job:
        """Weights held for good; each trial's activations live in its frames only."""

        def __init__(self, req: FitRequest, device: Any) -> None:
            assert device == torch.device("cuda", 0)
            self.weights = a.alloc(WEIGHTS)
            self.opt = Opt()

        def trial(self, n: int) -> None:
            a.log.append(f"trial {n}")
            held = [a.alloc(PER_SAMPLE) for _ in range(n)]  # an OOM keeps these in its frame
            del held

    monkeypatch.setattr(trials, "Job", Job)
    return a


REQ = FitRequest(load_model("llama-tiny"), lora_rank=4, seq_len=32, batch_size=8)


def test_the_peak_is_the_trials_own_and_the_context_is_measured_beside_it(
    fake: FakeAllocator,
) -> None:
    out = trials.measure_in_worker(REQ, "cuda:0", search=False)
    assert out["status"] == "ok" and out["fits"] is True
    assert out["device_name"] == "Fake GPU" and out["memory_total_bytes"] == CAPACITY
    assert out["allocated_peak_bytes"] == WEIGHTS + 8 * PER_SAMPLE
    assert out["reserved_peak_bytes"] == WEIGHTS + 8 * PER_SAMPLE  # the cache was emptied
    # NVML's device total, less what other processes held before this one started CUDA,
    # less what the allocator holds: the context, exactly.
    assert out["context_bytes"] == CONTEXT and out["context_source"] == "nvml"
    first = fake.log.index("trial 8")
    assert fake.log[first - 3 : first] == ["empty_cache", "sync", "reset"]
    assert fake.log[first + 1] == "sync"  # the peak is read after the trial's work ended


def test_the_search_comes_back_from_out_of_memory_with_the_memory_freed(
    fake: FakeAllocator,
) -> None:
    out = trials.measure_in_worker(REQ, "cuda:0", search=True, cap=4096)
    assert out["max_batch"] == 90 and out["max_batch_capped"] is False
    assert out["max_batch_allocated_bytes"] == WEIGHTS + 90 * PER_SAMPLE
    failed = [n for n, fits, _ in out["trials"] if not fits]
    assert 128 in failed and 91 in failed  # doubling overshot, bisection found the edge
    # Batch 90 fitting after a dozen failures means each failure's blocks were released
    # (one leaked batch of 64 would leave room for 26); the worker leaves nothing behind.
    assert fake.allocated == 0
    assert out["allocated_peak_bytes"] == WEIGHTS + 8 * PER_SAMPLE  # the request's batch
    assert fake.log.count("zero_grad") == len(failed)
    assert out["context_bytes"] == CONTEXT


def test_without_nvml_the_context_is_not_guessed(
    fake: FakeAllocator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trials, "nvml_used", lambda: {})
    out = trials.measure_in_worker(REQ, "cuda:0", search=False)
    assert out["context_bytes"] is None and "no NVML" in out["context_source"]
    assert out["allocated_peak_bytes"] == WEIGHTS + 8 * PER_SAMPLE


def test_a_model_too_big_to_build_is_an_oom_outcome(
    fake: FakeAllocator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trials, "Job", lambda req, dev: fake.alloc(2 * CAPACITY))
    out = trials.measure_in_worker(REQ, "cuda:0")
    assert out["status"] == "oom" and "does not fit" in out["error"]


def test_a_cuda_index_past_the_last_gpu_is_named(fake: FakeAllocator) -> None:
    out = trials.measure_in_worker(REQ, "cuda:3")
    assert out["status"] == "no_cuda" and "cuda:3" in out["error"]


def test_a_search_at_its_trial_limit_reports_the_largest_batch_so_far(
    fake: FakeAllocator,
) -> None:
    out = trials.measure_in_worker(REQ, "cuda:0", search=True, cap=4096, max_trials=5)
    assert [n for n, _, _ in out["trials"]] == [1, 2, 4, 8, 16]
    assert out["max_batch"] == 16 and out["max_batch_capped"] is False
    assert out["max_batch_allocated_bytes"] == WEIGHTS + 16 * PER_SAMPLE
    assert out["search_stopped"] == (
        "search stopped at the limit (5 trials): largest batch found so far 16"
    )
    assert fake.allocated == 0
