"""gpuscout.jobs from Python: an open Store in, typed records out, the store left open;
reading jobs create no database; the run's stages heard in order; the injected seams."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gpuscout import jobs
from gpuscout._types import Finding, Result, SystemInfo
from gpuscout.errors import UsageError
from gpuscout.jobs import main_run
from gpuscout.store import Store
from helpers import report_sample as sample


def test_a_job_writes_into_the_callers_store_and_leaves_it_open(
    memory: Store, machine_file: Callable[[str], Path]
) -> None:
    done = jobs.doctor(memory, jobs.DoctorOptions(machine=machine_file("cpu_wheel")))
    assert dataclasses.is_dataclass(done)
    with pytest.raises(dataclasses.FrozenInstanceError):
        done.exit_code = 0  # type: ignore[misc]
    assert done.exit_code == 1 and done.run_id == 1
    assert done.headline.startswith("1 failed")
    assert any(f.id == "torch.build" and f.status == "fail" for f in done.findings)
    shown = jobs.show(memory, 1)  # the same, still open, store
    assert shown.run.kind == "doctor" and shown.run.summary["headline"] == done.headline
    assert shown.findings == done.findings
    assert [r.id for r in jobs.history(memory).runs] == [1]


def test_nothing_stored_opens_no_database(
    tmp_path: Path, machine_file: Callable[[str], Path]
) -> None:
    db = tmp_path / "never.db"
    opts = jobs.DoctorOptions(machine=machine_file("h100"), store=False)
    done = jobs.doctor(db, opts)
    assert done.run_id is None and done.exit_code == 0 and done.headline == "all checks passed"
    assert not db.exists()


def test_reading_jobs_create_no_database(tmp_path: Path) -> None:
    db = tmp_path / "absent.db"
    assert jobs.history(db).runs == () and jobs.history(db).database == db
    for read in (
        lambda: jobs.show(db, 1),
        lambda: jobs.compare(db, 1, 2),
        lambda: jobs.export(db),
        lambda: jobs.report(db),
        lambda: jobs.advise(db),
    ):
        with pytest.raises(UsageError):
            read()
    assert not db.exists()


def test_runs_move_between_two_open_stores(memory: Store, tmp_path: Path) -> None:
    sample.fill_store(memory, host="lab")
    out = jobs.export(memory, [1], tmp_path / "runs.json")
    assert out.path == tmp_path / "runs.json" and out.run_ids == (1,)
    with Store.open(":memory:") as other:
        assert jobs.import_runs(other, out.path) == (1,)
        compared = jobs.compare(other, 1, 1)
        assert compared.run_a.fingerprint["host"] == "lab" and not compared.differences
    text = jobs.export(memory, [1], "-")
    assert text.path is None and text.text is not None
    # the same document on stdout as in the file, but for when each was made (the two
    # exports may straddle a second)
    on_stdout = json.loads(text.text)
    in_file = json.loads((tmp_path / "runs.json").read_text())
    on_stdout.pop("exported_at"), in_file.pop("exported_at")
    assert on_stdout == in_file


def test_the_report_as_text_is_written_nowhere(memory: Store, tmp_path: Path) -> None:
    sample.fill_store(memory)
    out = jobs.report(memory, jobs.ReportOptions(output="-", fmt="md"))
    assert out.path is None and out.text is not None and out.text.startswith("#")
    assert out.run_ids == [r.id for r in out.report.runs] and out.run_ids
    with pytest.raises(UsageError, match="unknown format 'pdf'"):
        jobs.report(memory, jobs.ReportOptions(fmt="pdf"))


def test_advice_on_a_model_needs_no_database(tmp_path: Path) -> None:
    opts = jobs.AdviseOptions(model="llama-3-8b", mode="infer")
    advice = jobs.advise(tmp_path / "none.db", opts)
    assert advice.verdict and advice.rows
    with pytest.raises(UsageError, match="go with --model"):
        jobs.advise(tmp_path / "none.db", jobs.AdviseOptions(mode="infer"))


def test_the_catalog_gives_one_gpu_with_its_prices_or_a_list() -> None:
    one = jobs.catalog("h100-sxm5-80gb")
    assert [g.id for g in one.gpus] == ["h100-sxm5-80gb"]
    assert all(p.gpu_id == "h100-sxm5-80gb" for p in one.cloud_prices)
    assert len(jobs.catalog().gpus) > len(jobs.catalog(segment="datacenter").gpus) > 0
    with pytest.raises(UsageError, match="not both"):
        jobs.catalog("h100", segment="consumer")


def fake_worker(req: Any, device: str, search: bool, cap: int, **limits: Any) -> dict[str, Any]:
    """Stands in for the measuring worker: the request's batch fits, 40 is the largest."""
    return {
        "status": "ok",
        "device_name": "Fake GPU 80GB",
        "memory_total_bytes": 80 * 2**30,
        "fits": True,
        "allocated_peak_bytes": 2 * 2**30,
        "context_bytes": 2**29,
        "context_source": "nvml",
        "max_batch": 40,
        "trials": [(1, True, 2 * 2**30), (40, True, 70 * 2**30), (64, False, None)],
    }


def test_fit_measures_through_its_seams_and_stores_both(memory: Store) -> None:
    heard: list[str] = []
    opts = jobs.FitOptions("mlp", measure=True, gpu=("h100-sxm5-80gb",))
    out = jobs.fit(
        memory,
        opts,
        lambda label, done, total: heard.append(label),
        gpus_here=lambda: [],
        env=lambda: {"host": "test"},
        measure_target=fake_worker,
    )
    assert heard == ["measuring on cuda:0"]
    assert [g.gpu_id for g in out.gpus] == ["h100-sxm5-80gb"] and out.gpus[0].fits
    assert out.measured is not None and out.measured.peak_bytes == 2 * 2**30 + 2**29
    assert out.exit_code == 0 and out.run_id == 1
    run = jobs.show(memory, 1)
    assert run.run.kind == "fit" and run.run.fingerprint == {"host": "test"}
    assert {r.name.rsplit("/", 1)[1] for r in run.results} == {"predicted", "measured"}
    with pytest.raises(UsageError, match="not both"):
        jobs.fit(memory, dataclasses.replace(opts, all_gpus=True))
    no_gpu = dataclasses.replace(opts, gpu=())
    with pytest.raises(UsageError, match="NVML finds none"):
        jobs.fit(memory, no_gpu, gpus_here=lambda: [], env=lambda: {})


class Heard(jobs.RunListener):
    def __init__(self) -> None:
        self.events: list[str] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.events.append(f"{name} begins")
        yield None
        self.events.append(f"{name} ends")

    def doctor_done(self, system: SystemInfo, findings: Sequence[Finding]) -> None:
        self.events.append(f"doctor: {len(findings)} findings")

    def micro_done(self, results: Sequence[Result]) -> None:
        self.events.append(f"micro: {len(results)} results")

    def workloads_done(self, results: Sequence[Result]) -> None:
        self.events.append(f"workloads: {len(results)} results")


def test_a_run_is_heard_stage_by_stage_and_stored_once(
    memory: Store,
    monkeypatch: pytest.MonkeyPatch,
    recorded: Callable[..., SystemInfo],
    tmp_path: Path,
) -> None:
    system = recorded("h100")
    micro, work = sample.micro_results(), sample.workload_results()
    monkeypatch.setattr(main_run, "examine", lambda: (system, sample.findings()))
    monkeypatch.setattr(main_run, "ceilings", lambda *a: micro)
    monkeypatch.setattr(main_run, "workloads", lambda *a: (work, "on mlp: faster."))
    heard = Heard()
    out = jobs.run(memory, jobs.RunOptions(), heard)
    n = len(sample.findings())
    assert heard.events == [
        "doctor begins",
        "doctor ends",
        f"doctor: {n} findings",
        "micro begins",
        "micro ends",
        f"micro: {len(micro)} results",
        "workloads begins",
        "workloads ends",
        f"workloads: {len(work)} results",
    ]
    assert out.results == (*micro, *work) and out.verdict == "on mlp: faster."
    # An in-memory store's report goes to the data directory; the advice is the report's.
    assert out.report_error is None
    assert out.report_path == tmp_path / "home" / "reports" / f"run-{out.run_id}.html"
    assert out.report_path.is_file()
    assert out.advice and "per run" in out.advice
    (stored,) = jobs.history(memory).runs
    assert stored.id == out.run_id and stored.kind == "run"
    assert len(jobs.show(memory, out.run_id).results) == len(micro) + len(work)


def test_skip_bench_runs_the_doctor_alone(
    memory: Store, monkeypatch: pytest.MonkeyPatch, recorded: Callable[..., SystemInfo]
) -> None:
    monkeypatch.setattr(main_run, "examine", lambda: (recorded("h100"), sample.findings()))
    heard = Heard()
    out = jobs.run(memory, jobs.RunOptions(skip_bench=True), heard)
    assert heard.events == ["doctor begins", "doctor ends", f"doctor: {len(out.findings)} findings"]
    assert out.results == () and out.verdict == "" and out.headline.endswith("0 measurements")


def test_the_cli_loads_no_job_until_one_runs_and_every_name_resolves() -> None:
    code = (
        "import sys, gpuscout.cli.main\n"
        "print(sorted(m for m in sys.modules if m.startswith('gpuscout.jobs.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['gpuscout.jobs.listening']"]
    assert all(getattr(jobs, name) is not None for name in jobs.__all__)
    assert set(dir(jobs)) == set(jobs.__all__)
    with pytest.raises(AttributeError):
        jobs.no_such_job  # noqa: B018
