"""The largest-batch search against a fake allocator: a capacity, a static cost and a
cost per sample. It must find the exact boundary, survive out-of-memory errors (raised or
returned), and release memory after every failed trial."""

from __future__ import annotations

import pytest

from gpuscout.fit.search import Outcome, find_max_batch, find_max_value


class FakeOOM(RuntimeError):
    """Stands in for torch.cuda.OutOfMemoryError."""


class FakeAllocator:
    def __init__(self, capacity: int, static: int, per_sample: int, raise_oom: bool = False):
        self.capacity, self.static, self.per_sample = capacity, static, per_sample
        self.raise_oom = raise_oom
        self.held = 0  # bytes a failed trial leaves behind until cleanup
        self.calls: list[int] = []
        self.cleanups = 0

    def try_batch(self, n: int) -> Outcome:
        self.calls.append(n)
        assert self.held == 0, "a trial started while a failed one still held memory"
        need = self.static + n * self.per_sample
        if need > self.capacity:
            self.held = self.capacity  # what was allocated before the failure
            if self.raise_oom:
                raise FakeOOM("CUDA out of memory. Tried to allocate ...")
            return Outcome(False, None, "out of memory")
        return Outcome(True, need)

    def cleanup(self) -> None:
        self.cleanups += 1
        self.held = 0


def is_fake_oom(exc: BaseException) -> bool:
    return isinstance(exc, FakeOOM)


@pytest.mark.parametrize("capacity", [100, 101, 137, 1000, 1023, 1024, 1025, 65_537])
@pytest.mark.parametrize("raise_oom", [False, True])
def test_it_finds_the_exact_boundary(capacity: int, raise_oom: bool) -> None:
    fake = FakeAllocator(capacity, static=36, per_sample=1, raise_oom=raise_oom)
    result = find_max_batch(fake.try_batch, cleanup=fake.cleanup, is_oom=is_fake_oom)
    assert result.max_batch == capacity - 36
    assert result.peak_bytes == capacity
    assert not result.capped
    # doubling then bisecting: about 2 log2(answer) trials, none repeated
    assert len(fake.calls) == len(set(fake.calls)) <= 2 * (capacity.bit_length() + 1)


def test_one_that_does_not_fit_gives_none() -> None:
    fake = FakeAllocator(capacity=100, static=90, per_sample=20)
    result = find_max_batch(fake.try_batch, cleanup=fake.cleanup)
    assert result.max_batch is None and result.peak_bytes is None
    assert fake.calls == [1]


def test_the_cap_is_reported_when_it_fits() -> None:
    fake = FakeAllocator(capacity=10**9, static=0, per_sample=1)
    result = find_max_batch(fake.try_batch, cap=300, cleanup=fake.cleanup)
    assert result.max_batch == 300 and result.capped
    assert max(fake.calls) == 300


def test_cleanup_runs_after_every_out_of_memory() -> None:
    fake = FakeAllocator(capacity=1000, static=0, per_sample=7, raise_oom=True)
    result = find_max_batch(fake.try_batch, cleanup=fake.cleanup, is_oom=is_fake_oom)
    assert result.max_batch == 142  # 142 x 7 = 994 <= 1000 < 143 x 7
    failures = [o for _, o in result.trials if not o.fits]
    assert failures and all("out of memory" in (o.error or "") for o in failures)
    assert fake.cleanups == len(fake.calls)  # after every trial, failed ones included
    assert fake.held == 0


def test_an_error_that_is_not_out_of_memory_propagates_after_cleanup() -> None:
    fake = FakeAllocator(capacity=1000, static=0, per_sample=7, raise_oom=True)
    with pytest.raises(FakeOOM):  # no is_oom given: not recognised, so not swallowed
        find_max_batch(fake.try_batch, cleanup=fake.cleanup)
    assert fake.cleanups == len(fake.calls)

    def broken(n: int) -> Outcome:
        raise ValueError("a bug, not a lack of memory")

    with pytest.raises(ValueError):
        find_max_batch(broken, is_oom=is_fake_oom)


def test_start_and_cap_are_checked() -> None:
    with pytest.raises(ValueError):
        find_max_batch(lambda n: Outcome(True), start=0)
    with pytest.raises(ValueError):
        find_max_batch(lambda n: Outcome(True), start=10, cap=5)


def test_find_max_value_over_a_predicate() -> None:
    assert find_max_value(lambda v: v * v <= 1000, 1, 10_000) == 31
    assert find_max_value(lambda v: False, 1, 100) is None
    assert find_max_value(lambda v: True, 1, 100) == 100
