"""`gpuscout bench micro` on a throwaway app: help, JSON, storing one run, usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gpuscout.cli import bench as bench_cli
from helpers import machines


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """root"""

    bench_cli.register(app)
    return app


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny arrays and short timing, and a recorded machine instead of a live probe."""
    pytest.importorskip("torch")
    from gpuscout.bench import context, memory, record
    from gpuscout.bench.context import TimingPolicy

    monkeypatch.setattr(
        context, "QUICK_TIMING", TimingPolicy(warmup=0, min_iters=3, min_time_s=0.0)
    )
    monkeypatch.setattr(memory, "cpu_array_bytes", lambda *a: 2 * 2**20)
    monkeypatch.setattr(record, "probe_for_fingerprint", lambda: machines.system("no_gpu"))


def test_help_texts() -> None:
    runner = CliRunner()
    out = runner.invoke(_app(), ["bench", "--help"])
    assert out.exit_code == 0
    assert "micro" in out.output
    out = runner.invoke(_app(), ["bench", "micro", "--help"])
    assert out.exit_code == 0
    for opt in ("--device", "--only", "--quick", "--json", "--db"):
        assert opt in out.output
    assert bench_cli.micro.__doc__


def test_register_is_reusable() -> None:
    _app()
    _app()  # a second root app gets the same sub-app without a duplicate command
    assert [c.name for c in bench_cli.bench_app.registered_commands].count("micro") == 1


@pytest.mark.usefixtures("fast")
def test_micro_cpu_quick_json_stores_one_run(tmp_path: Path) -> None:
    from gpuscout.store import Store

    db = tmp_path / "r.db"
    out = CliRunner().invoke(
        _app(), ["bench", "micro", "--device", "cpu", "--quick", "--json", "--db", str(db)]
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    names = [r["name"] for r in doc["results"]]
    assert "matmul/fp32/256" in names and "memory/triad" in names
    assert "launch/dispatch" in names
    assert all(r["device"] == "cpu" for r in doc["results"])
    ok = [r for r in doc["results"] if r["status"] == "ok"]
    assert ok and all(r["figure"] > 0 and r["stats"]["n"] >= 3 for r in ok)
    store = Store.open(db)
    try:
        runs = store.list_runs()
        assert len(runs) == 1
        assert runs[0].id == doc["run_id"]
        assert runs[0].kind == "bench-micro"
        assert runs[0].fingerprint["gpus"] == []
        assert len(store.results(runs[0].id)) == len(doc["results"])
    finally:
        store.close()


@pytest.mark.usefixtures("fast")
def test_micro_table_output(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        _app(),
        ["bench", "micro", "-d", "cpu", "--only", "launch", "--quick", "--db", str(tmp_path / "d")],
    )
    assert out.exit_code == 0, out.output
    assert "launch/dispatch" in out.stdout
    assert "µs" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "gpu7"], "unknown device 'gpu7'"),
        (["--only", "matmull"], "unknown benchmark 'matmull'"),
    ],
)
def test_bad_names_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = CliRunner().invoke(_app(), ["bench", "micro", *args, "--db", str(tmp_path / "x.db")])
    assert out.exit_code == 2
    assert message in out.output
    assert "Traceback" not in out.output
    assert not (tmp_path / "x.db").exists()  # nothing ran, nothing stored


def test_wrong_result_gives_exit_1_and_a_readable_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gpuscout._types import Result
    from gpuscout.bench import record, runner

    bad = Result("matmul/fp16/256", "cpu", None, "TFLOPS", "failed", error="x [enforce] y")
    fine = Result("launch/dispatch", "cpu", 2.5, "us", extra={"flags": ["noisy"]})
    monkeypatch.setattr(runner, "resolve_devices", lambda d: ["cpu"])
    monkeypatch.setattr(runner, "run_micro", lambda *a, **k: [bad, fine])
    monkeypatch.setattr(record, "probe_for_fingerprint", lambda: None)
    out = CliRunner().invoke(_app(), ["bench", "micro", "--no-store"])
    assert out.exit_code == 1
    assert "x [enforce] y" in out.stdout  # brackets shown, not eaten as markup
    assert "2.50 µs" in out.stdout
    assert "noisy" in out.stdout
