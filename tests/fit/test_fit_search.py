"""The largest-batch search against a fake allocator: a capacity, a static cost and a
cost per sample. It must find the exact boundary, survive out-of-memory errors (raised or
returned), and release memory after every failed trial."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


# -- --measure's search within a number of trials and a time budget ----------------------


class FakeClock:
    """Seconds that pass only when a trial runs: each costs ``per_trial``."""

    def __init__(self, per_trial: float) -> None:
        self.now, self.per_trial = 0.0, per_trial

    def __call__(self) -> float:
        return self.now

    def run(self, fake: FakeAllocator) -> Callable[[int], Outcome]:
        def trial(n: int) -> Outcome:
            self.now += self.per_trial
            return fake.try_batch(n)

        return trial


def _bounded(fake: FakeAllocator, clock: FakeClock, **limits: Any) -> Any:
    from gpuscout.fit.measure.trials import bounded_search

    return bounded_search(
        clock.run(fake),
        cap=1 << 20,
        cleanup=fake.cleanup,
        is_oom=is_fake_oom,
        clock=clock,
        **limits,
    )


def test_the_search_stops_after_its_trials_with_the_largest_batch_so_far() -> None:
    fake = FakeAllocator(capacity=1000, static=0, per_sample=1)  # the answer: 1000
    result, note = _bounded(fake, FakeClock(1.0), max_trials=5, budget_s=1e9)
    assert fake.calls == [1, 2, 4, 8, 16]  # no sixth trial started
    assert result.max_batch == 16 and result.peak_bytes == 16 and not result.capped
    assert note == "search stopped at the limit (5 trials): largest batch found so far 16"
    assert [n for n, _ in result.trials] == fake.calls


def test_the_search_stops_at_its_time_budget() -> None:
    fake = FakeAllocator(capacity=1000, static=0, per_sample=1)
    result, note = _bounded(fake, FakeClock(10.0), max_trials=100, budget_s=35.0)
    # Trials start at 0, 10, 20 and 30 s; at 40 s the budget is spent.
    assert fake.calls == [1, 2, 4, 8]
    assert result.max_batch == 8
    assert note == "search stopped at the limit (35 s): largest batch found so far 8"


def test_a_search_stopped_while_bisecting_reports_a_batch_that_ran() -> None:
    fake = FakeAllocator(capacity=1000, static=0, per_sample=7, raise_oom=True)  # 142 fits
    result, note = _bounded(fake, FakeClock(1.0), max_trials=10, budget_s=1e9)
    # 1..128 fit, 256 fails, the first bisection (192) fails; an 11th trial never starts.
    assert fake.calls == [1, 2, 4, 8, 16, 32, 64, 128, 256, 192]
    assert result.max_batch == 128 and note is not None and note.endswith("so far 128")
    assert fake.cleanups >= len(fake.calls) and fake.held == 0  # the OOMs were released


def test_a_search_within_its_limits_is_the_plain_search() -> None:
    fake = FakeAllocator(capacity=1000, static=36, per_sample=1)
    result, note = _bounded(fake, FakeClock(1.0))  # the defaults: 24 trials, 120 s
    assert note is None
    plain = FakeAllocator(capacity=1000, static=36, per_sample=1)
    assert result == find_max_batch(plain.try_batch, cleanup=plain.cleanup)


def test_a_budget_spent_before_any_fit_says_none() -> None:
    fake = FakeAllocator(capacity=10, static=20, per_sample=1)  # nothing fits
    result, note = _bounded(fake, FakeClock(1.0), max_trials=1, budget_s=1e9)
    assert result.max_batch is None and fake.calls == [1]
    assert note is None  # one trial was enough to know: nothing fits

    result, note = _bounded(FakeAllocator(1000, 0, 1), FakeClock(5.0), max_trials=24, budget_s=1e-3)
    assert note is not None and note.endswith("largest batch found so far 1")


def test_the_limits_are_checked() -> None:
    fake = FakeAllocator(capacity=10, static=0, per_sample=1)
    for limits in ({"max_trials": 0}, {"budget_s": 0.0}):
        with pytest.raises(ValueError):
            _bounded(fake, FakeClock(1.0), **limits)


def w_limits(req: Any, device: str, search: bool, cap: int, **limits: Any) -> dict[str, Any]:
    """A worker target that returns the limits it was given, in the error field."""
    return {"status": "ok", "error": repr(sorted(limits.items()))}


def test_measure_gives_the_search_at_most_half_the_worker_timeout() -> None:
    """A worker killed at its timeout brings nothing back: the search must end first."""
    from gpuscout.fit import FitRequest, load_model
    from gpuscout.fit.measure.driver import measure

    req = FitRequest(load_model("mlp"), batch_size=2)
    short = measure(req, target=w_limits, timeout_s=100)
    assert short.error == repr([("max_trials", 24), ("search_budget_s", 50.0)])
    long = measure(req, target=w_limits, timeout_s=900, max_trials=7)
    assert long.error == repr([("max_trials", 7), ("search_budget_s", 120.0)])


def w_stopped(req: Any, device: str, search: bool, cap: int, **limits: Any) -> dict[str, Any]:
    return {
        "status": "ok",
        "device_name": "Fake GPU",
        "memory_total_bytes": 80 * 1024**3,
        "fits": True,
        "allocated_peak_bytes": 2 * 1024**3,
        "context_bytes": 512 * 1024**2,
        "context_source": "nvml",
        "max_batch": 16,
        "max_batch_capped": False,
        "trials": [(1, True, 1), (2, True, 2), (4, True, 4), (8, True, 8), (16, True, 16)],
        "search_stopped": "search stopped at the limit (5 trials): largest batch found so far 16",
    }


def test_fit_measure_shows_and_stores_a_search_stopped_at_its_limit(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    import gpuscout.cli.fit as cli_fit
    from gpuscout.store import Store

    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(cli_fit, "local_gpus", lambda: [])
    monkeypatch.setattr(cli_fit, "run_fingerprint", lambda: {"host": "test"})
    monkeypatch.setattr(cli_fit, "MEASURE_TARGET", w_stopped)
    app = typer.Typer()
    app.callback()(lambda: None)
    cli_fit.register(app)
    db = tmp_path / "fit.db"
    r = CliRunner().invoke(app, ["fit", "mlp", "--measure", "--db", str(db)])
    assert r.exit_code == 0, r.output  # a limit is an answer (a lower bound), not a failure
    assert "largest batch that ran: 16" in r.output
    assert "search stopped at the limit (5 trials): largest batch found so far 16" in r.output
    with Store.open(db) as store:
        (measured,) = [x for x in store.results(1) if x.name.endswith("/measured")]
    assert measured.extra["search_stopped"].startswith("search stopped at the limit")
