"""The parts of a workload run that need no model: results from worker replies,
ceilings and fractions, the verdict, energy integration."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from gpuscout._types import Ceiling, Result
from gpuscout.report.verdict import agreement, verdict
from gpuscout.workloads.base import WorkloadConfig
from gpuscout.workloads.ceilings import attach, from_results, from_store
from gpuscout.workloads.instruments import Instruments, integrate_power
from gpuscout.workloads.suite import to_results
from helpers import machines


def res(
    wl: str,
    impl: str,
    device: str,
    figure: float | None,
    status: str = "ok",
    variant: str | None = None,
    **extra: Any,
) -> Result:
    name = f"{wl}/{impl}" + (f"/{variant}" if variant else "")
    base = {"workload": wl, "impl": impl, "variant": variant}
    return Result(name, device, figure, "samples/s", status, extra=base | extra)


# -- results from what a worker sends back ------------------------------------------------


def test_to_results_from_a_reply_and_from_failures() -> None:
    c = WorkloadConfig("llm", "cuda:0", "tuned")
    reply = {
        "figures": [
            {
                "variant": "decode-b1",
                "figure": 120.0,
                "unit": "tokens/s",
                "stats": {
                    "n": 3,
                    "median_s": 0.01,
                    "mean_s": 0.01,
                    "min_s": 0.01,
                    "max_s": 0.01,
                    "p10_s": 0.01,
                    "p90_s": 0.01,
                    "iqr_s": 0.0,
                    "cv": 0.0,
                    "noisy": False,
                },
                "extra": {"energy_j": 5.0},
            },
            {"variant": "ttft", "figure": float("nan"), "unit": "s", "extra": {}},
        ],
        "env": {"device_name": "NVIDIA H100"},
    }
    ok, bad = to_results(c, "ok", reply, None)
    assert ok.name == "llm/tuned/decode-b1" and ok.status == "ok" and ok.figure == 120.0
    assert ok.stats is not None and ok.stats.n == 3
    assert ok.extra["device_name"] == "NVIDIA H100" and ok.extra["impl"] == "tuned"
    assert bad.status == "failed" and "non-finite" in (bad.error or "")

    tb = (
        'Traceback (most recent call last):\n  File "x"\ntorch.OutOfMemoryError: CUDA out of memory'
    )
    (oom,) = to_results(c, "oom", None, tb)
    assert oom.status == "oom" and oom.figure is None and oom.unit == "tokens/s"
    assert oom.error == "torch.OutOfMemoryError: CUDA out of memory"
    assert oom.extra["traceback"] == tb
    (late,) = to_results(c, "timeout", None, "no result after 5 s; the worker was stopped")
    assert late.status == "timeout" and "traceback" not in late.extra


# -- ceilings ------------------------------------------------------------------------------


MICRO = [
    Result("matmul/bf16/4096", "cuda:0", 600.0, "TFLOPS"),
    Result("matmul/bf16/8192", "cuda:0", 700.0, "TFLOPS"),
    Result("matmul/fp32/8192", "cuda:0", 50.0, "TFLOPS"),
    Result("memory/copy", "cuda:0", 2800.0, "GB/s"),
    Result("memory/triad", "cuda:0", 3000.0, "GB/s"),
    Result("memory/copy", "cpu", 20.0, "GB/s"),
    Result("matmul/fp8/8192", "cuda:0", None, "TFLOPS", "skipped"),
]


def test_ceiling_from_micro_results_takes_the_best_per_precision() -> None:
    c = from_results(MICRO, "cuda:0", "run 7")
    assert c.tflops == {"bf16": 700.0, "fp32": 50.0}
    assert c.bandwidth_gbs == 3000.0 and "measured" in c.source_of("bandwidth_gbs")


def test_attach_uses_bandwidth_for_decode_and_matmul_peak_otherwise() -> None:
    ceiling = Ceiling(
        tflops={"bf16": 700.0},
        bandwidth_gbs=3000.0,
        source="measured (run 7)",
        sources={"bandwidth_gbs": "catalog datasheet (h100)"},
    )
    decode = attach(
        res(
            "llm",
            "tuned",
            "cuda:0",
            200.0,
            bandwidth_achieved_gbs=2400.0,
            achieved_tflops=1.0,
            dtype="bf16",
        ),
        ceiling,
    )
    assert decode.peak_fraction == pytest.approx(0.8)
    assert decode.extra["ceiling_kind"] == "memory bandwidth"
    assert decode.extra["ceiling_source"] == "catalog datasheet (h100)"
    train = attach(
        res("cnn", "tuned", "cuda:0", 3000.0, achieved_tflops=350.0, dtype="bf16"), ceiling
    )
    assert train.peak_fraction == pytest.approx(0.5)
    assert train.extra["fraction_of_ceiling"] == pytest.approx(0.5)
    unknown = attach(
        res("cnn", "reference", "cuda:0", 1.0, achieved_tflops=1.0, dtype="fp32"), ceiling
    )
    assert unknown.peak_fraction is None and "bench micro" in unknown.extra["ceiling_source"]
    failed = res("cnn", "tuned", "cuda:0", None, status="oom")
    assert attach(failed, ceiling) is failed


def test_measured_ceilings_win_over_the_datasheet() -> None:
    measured = Ceiling(tflops={"bf16": 700.0}, source="measured")
    sheet = Ceiling(tflops={"bf16": 989.0, "fp32": 67.0}, bandwidth_gbs=3350.0, source="catalog")
    merged = measured.merged(sheet)
    assert merged.tflops == {"bf16": 700.0, "fp32": 67.0}
    assert merged.bandwidth_gbs == 3350.0 and merged.source_of("bandwidth_gbs") == "catalog"


def test_ceiling_from_the_store(tmp_path: Path) -> None:
    from gpuscout.store import Store

    db = tmp_path / "r.db"
    assert from_store(db, "cuda:0") == Ceiling()
    assert not db.exists()  # looking never creates a database
    with Store.open(db) as store, store.run("bench-micro", {"host": "box"}) as run:
        run.add_results(MICRO)
    got = from_store(db, "cuda:0", node="box")
    assert got.tflops["bf16"] == 700.0 and "run 1" in got.source_of("tflops")
    assert from_store(db, "cuda:0", node="another-host") == Ceiling()


# -- the verdict ---------------------------------------------------------------------------


def test_verdict_in_plain_words() -> None:
    results = [
        res("mlp", "reference", "cpu", 10_000.0, accuracy=0.85),
        res("mlp", "tuned", "cpu", 20_000.0, accuracy=0.851),
        res("mlp", "reference", "cuda:0", 60_000.0, accuracy=0.85),
        res("mlp", "tuned", "cuda:0", 240_000.0, accuracy=0.86),
        res("llm", "reference", "cuda:0", 20.0, variant="decode-b1"),
        res("llm", "tuned", "cuda:0", 200.0, variant="decode-b1"),
        res("llm", "tuned", "cuda:0", 900.0, variant="decode-b8"),
        res("llm", "tuned", "cpu", 4.0, variant="decode-b1"),
    ]
    text = verdict(results)
    assert "on mlp: your GPU (cuda:0) is 12x faster than your CPU" in text
    assert "leaves 4.0x on the table" in text
    assert "on llm: your GPU (cuda:0) is 50x faster than your CPU" in text
    assert "leaves 10x on the table" in text
    assert "disagree" not in text


def test_verdict_mentions_the_third_party_programs() -> None:
    results = [
        res("mlp", "reference", "cpu", 10_000.0, accuracy=0.85),
        res("mlp", "tuned", "cpu", 30_000.0, accuracy=0.85),
        res("mlp", "keras", "cpu", 5_000.0, accuracy=0.86),
        res("llm", "tuned", "cpu", 30.0, variant="decode-b1"),
        res("llm", "transformers", "cpu", 10.0, variant="decode-b1"),
        Result(
            "llm/transformers",
            "cuda:0",
            None,
            "tokens/s",
            "skipped",
            error="transformers is not installed",
            extra={"workload": "llm", "impl": "transformers"},
        ),
    ]
    text = verdict(results)
    assert (
        "mlp on cpu: the Keras tutorial program runs at 5,000 samples/s; "
        "the tuned version is 6.0x faster" in text
    )
    assert (
        "llm on cpu: Hugging Face generate runs at 10 samples/s; the tuned version is 3.0x" in text
    )
    assert "skipped" not in text


def test_verdict_without_gpu_and_with_failures() -> None:
    results = [
        res("mlp", "reference", "cpu", 10_000.0, accuracy=0.85, synthetic_data=True),
        res("mlp", "tuned", "cpu", 25_000.0, accuracy=0.70, synthetic_data=True),
        res("cnn", "reference", "cpu", None, status="timeout"),
        res("cnn", "tuned", "cpu", 50.0),
        res("llm", "reference", "cpu", 10.0, variant="decode-b1"),
        res("llm", "tuned", "cpu", 10.3, variant="decode-b1"),
    ]
    results[2] = Result(
        "cnn/reference",
        "cpu",
        None,
        "images/s",
        "timeout",
        error="no result after 300 s",
        extra={"workload": "cnn", "impl": "reference"},
    )
    text = verdict(results)
    assert "on mlp: no GPU was measured; a tutorial-style program leaves 2.5x" in text
    assert "mlp on cpu: the two implementations disagree: test accuracy differs by 15.0" in text
    assert "cnn: reference on cpu timeout: no result after 300 s" in text
    assert "synthetic" in text
    assert (
        "on llm: no GPU was measured; the tuned and tutorial-style versions run at the same" in text
    )
    assert verdict([]) == "no workload results."


def test_agreement_tolerances() -> None:
    a = res("cnn", "reference", "cpu", 1.0, loss=2.00, dtype="fp32")
    assert agreement(a, res("cnn", "tuned", "cpu", 1.0, loss=2.05, dtype="fp32")) is None
    assert "the final loss differs by 25.0%" in (
        agreement(a, res("cnn", "tuned", "cpu", 1.0, loss=2.5, dtype="fp32")) or ""
    )
    # Step-timed runs stop at different steps: the loss after 3 steps is what is compared.
    a3 = res("cnn", "reference", "cpu", 1.0, loss=2.0, loss_check=3.0, dtype="fp32")
    b3 = res("cnn", "tuned", "cpu", 1.0, loss=1.0, loss_check=3.01, dtype="fp32")
    assert agreement(a3, b3) is None
    b4 = res("cnn", "tuned", "cpu", 1.0, loss=2.0, loss_check=4.0, dtype="fp32")
    assert "after 3 steps" in (agreement(a3, b4) or "")
    # bf16 gets twice the tolerance: 8% is within it, 15% is not.
    assert agreement(a, res("cnn", "tuned", "cpu", 1.0, loss=2.16, dtype="bf16")) is None
    assert agreement(a, res("cnn", "tuned", "cpu", 1.0, loss=2.3, dtype="bf16")) is not None
    t1 = res("llm", "reference", "cpu", 1.0, generated_digest="abc", dtype="fp32")
    assert "different tokens" in (
        agreement(t1, res("llm", "tuned", "cpu", 1.0, generated_digest="abd", dtype="fp32")) or ""
    )
    assert (
        agreement(t1, res("llm", "tuned", "cpu", 1.0, generated_digest="abd", dtype="bf16")) is None
    )


# -- energy and memory readings ---------------------------------------------------------------


def test_integrate_power() -> None:
    assert integrate_power([(0.0, 100.0), (1.0, 100.0), (2.0, 100.0)], 0.0, 2.0) == pytest.approx(
        200.0
    )
    # A ramp 0 -> 200 W over 2 s is 200 J; the window [0.5, 1.5] holds 100 J.
    ramp = [(t / 10, 100.0 * t / 10) for t in range(21)]
    assert integrate_power(ramp, 0.0, 2.0) == pytest.approx(200.0)
    assert integrate_power(ramp, 0.5, 1.5) == pytest.approx(100.0)
    # A window between two samples holds the nearest reading: power x time.
    assert integrate_power([(0.0, 50.0), (10.0, 50.0)], 2.0, 4.0) == pytest.approx(100.0)
    assert integrate_power([], 0.0, 1.0) is None


class FakeReader:
    def __init__(self, counter: bool) -> None:
        self.counter = counter
        self.mj = 1_000_000
        self.mem = [1 << 30, 3 << 30, 2 << 30]

    def power_w(self) -> float | None:
        return 300.0

    def memory_used_bytes(self) -> int | None:
        return self.mem.pop(0) if self.mem else 1 << 30

    def energy_mj(self) -> int | None:
        if not self.counter:
            return None
        self.mj += 12_345
        return self.mj


class Dev:
    type = "cpu"


def test_instruments_prefer_the_energy_counter() -> None:
    with (
        Instruments(Dev(), FakeReader(counter=True), interval_s=10.0) as inst,
        inst.section() as sec,
    ):
        inst.sample_now()
    assert sec.energy_j == pytest.approx(12.345) and sec.energy_source == "nvml energy counter"
    assert sec.nvml_peak_mem_bytes == 3 << 30
    assert sec.peak_mem_bytes is None  # no torch allocator on this device


class FakeTime:
    """A clock the test sets by hand; it notes what the sampler thread read from it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sampler_reads: list[float] = []
        self._read = threading.Condition()

    def __call__(self) -> float:
        now = self.now
        if threading.current_thread() is not threading.main_thread():
            with self._read:
                self._sampler_reads.append(now)
                self._read.notify_all()
        return now

    def sampler_stored_at(self, t: float) -> bool:
        """Wait until the sampler thread has stored a reading stamped ``t`` or later: it
        reads the clock for its next reading only after storing the one before."""
        with self._read:
            return self._read.wait_for(
                lambda: sum(r >= t for r in self._sampler_reads) >= 2, timeout=30.0
            )


def test_instruments_integrate_power_without_a_counter() -> None:
    clock = FakeTime()
    with Instruments(Dev(), FakeReader(counter=False), interval_s=0.01, clock=clock) as inst:
        clock.now = 1.0
        with inst.section() as sec:
            clock.now = 1.2
            # a background reading inside the section, beside the two at its edges
            assert clock.sampler_stored_at(1.2)
    assert sec.energy_source == "nvml power samples"
    assert sec.time_s == pytest.approx(0.2)
    assert sec.energy_j == pytest.approx(300.0 * sec.time_s, rel=1e-6)
    assert sec.energy_j == pytest.approx(60.0)  # 300 W for 0.2 s
    assert sec.power_samples >= 3


def test_instruments_without_a_gpu_report_time_only() -> None:
    with Instruments(Dev()) as inst, inst.section() as sec:
        pass
    assert sec.time_s >= 0 and sec.energy_j is None and sec.nvml_peak_mem_bytes is None


def test_nvml_reader_finds_the_gpu_by_uuid() -> None:

    from gpuscout.probe.fake_nvml import FakeNvml
    from gpuscout.workloads.instruments import nvml_reader

    fake = FakeNvml(machines.nvml("h100"))
    # torch spells the UUID without NVML's "GPU-" prefix.
    with nvml_reader("9f3c2a71-5be4-2d8e-8c1a-6e0b7d43f915", fake) as reader:
        assert reader is not None
        assert reader.power_w() == pytest.approx(71.6)
        assert reader.memory_used_bytes() == 4194304
        assert reader.energy_mj() is None  # not recorded: power samples are integrated
    with nvml_reader("00000000-0000-0000-0000-000000000000", fake) as missing:
        assert missing is None


def test_a_disturbed_run_says_so_before_any_verdict() -> None:
    calm = res("mlp", "reference", "cpu", 10_000.0, accuracy=0.85)
    busy = res(
        "mlp", "tuned", "cpu", 3_000.0, accuracy=0.85, flags=["host-busy"], host_busy_pct=61.0
    )
    text = verdict([calm, busy])
    first, *rest = text.splitlines()
    assert first.startswith("measurements disturbed: 1 of 2 ran beside busy processes")
    assert "Rerun on a quiet machine" in first
    assert any(line.startswith("on mlp:") for line in rest)
    # A caller that has said it already (gpuscout run's headline) can leave it out.
    assert not verdict([calm, busy], say_disturbed=False).startswith("measurements disturbed")
    assert not verdict([calm]).startswith("measurements disturbed")
