"""`gpuscout bench workload`: help, JSON output, storing, and one-line usage errors.

The command is mounted on a throwaway `bench` app here, the way cli/bench.py will."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gpuscout.cli.workload import register_workload


@pytest.fixture(autouse=True)
def _offline_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GPUSCOUT_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "200")


def make_app() -> typer.Typer:
    app = typer.Typer()
    bench = typer.Typer()

    @bench.callback()
    def _bench() -> None:
        """Benchmarks."""

    register_workload(bench)
    app.add_typer(bench, name="bench")
    return app


def invoke(*args: str) -> object:
    return CliRunner().invoke(make_app(), ["bench", "workload", *args])


def test_help_lists_the_options_and_hides_the_test_one() -> None:
    r = invoke("--help")
    assert r.exit_code == 0  # type: ignore[attr-defined]
    out = r.output  # type: ignore[attr-defined]
    for opt in (
        "--device",
        "--impl",
        "--epochs",
        "--batch-size",
        "--model",
        "--data-dir",
        "--json",
        "--db",
        "--compare",
    ):
        assert opt in out
    assert "--limit-samples" not in out
    assert "tutorial-style" in out


def test_json_run_on_a_small_subset(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    db = tmp_path / "r.db"
    r = invoke(
        "mlp",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--limit-samples",
        "300",
        "--json",
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    doc = json.loads(r.stdout)  # type: ignore[attr-defined]
    assert [x["name"] for x in doc["results"]] == ["mlp/reference", "mlp/tuned"]
    for x in doc["results"]:
        assert x["status"] == "ok" and x["unit"] == "samples/s" and x["figure"] > 0
        assert x["extra"]["epochs"] == 1 and x["extra"]["samples"] == 300
        assert x["extra"]["synthetic_data"] is True
    assert doc["synthetic_data"] is True and "on mlp" in doc["verdict"]

    from gpuscout.store import Store

    with Store.open(db) as store:
        (run,) = store.list_runs()
        assert run.kind == "workload" and run.id == doc["run_id"] and run.status == "ok"
        assert [x.name for x in store.results(run.id)] == ["mlp/reference", "mlp/tuned"]


@pytest.mark.parametrize(
    "args, words",
    [
        (("mpl",), "unknown workload 'mpl'"),
        (("mlp", "--impl", "fast"), "unknown implementation"),
        (("mlp", "--device", "gpu"), "unknown device"),
        (("llm", "--model", "llama-9000b"), "unknown llm model"),
        (("mlp", "--epochs", "0"), "Invalid value"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], words: str) -> None:
    r = invoke(*args, "--no-store")
    assert r.exit_code == 2  # type: ignore[attr-defined]
    assert words in r.output  # type: ignore[attr-defined]
    assert "Traceback" not in r.output  # type: ignore[attr-defined]


def test_beside_cpu_bound_processes_the_verdict_says_it_was_disturbed(tmp_path: Path) -> None:
    """A real worker run while one CPU-bound process per CPU runs (a laptop with a build
    going): the figure is flagged and the verdict starts by saying so."""
    pytest.importorskip("torch")
    from helpers.busy_host import busy_neighbours

    args = ("mlp", "--device", "cpu", "--impl", "tuned", "--epochs", "1")
    with busy_neighbours():
        r = invoke(*args, "--limit-samples", "2000", "--json", "--db", str(tmp_path / "b.db"))
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    doc = json.loads(r.stdout)  # type: ignore[attr-defined]
    (res,) = doc["results"]
    assert "host-busy" in res["extra"]["flags"] and res["extra"]["host_busy_pct"] > 20
    assert doc["verdict"].startswith("measurements disturbed: 1 of 1 ran beside busy processes")
