"""`gpuscout run` ends by writing the report; the measuring stages are replaced by
recordings here (tests/jobs/test_main_run_real.py runs them for real)."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gpuscout._types import Finding, Result, SystemInfo
from gpuscout.cli import run as run_cli
from gpuscout.jobs import RunOptions, main_run
from helpers import report_sample as sample

runner = CliRunner()


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, recorded: Callable[..., SystemInfo]) -> typer.Typer:
    system = recorded("h100")

    def doctor() -> tuple[SystemInfo, list[Finding]]:
        return system, sample.findings()

    def micro(system: SystemInfo, opts: RunOptions, progress: Any) -> list[Result]:
        return sample.micro_results()

    def workloads(
        micro: list[Result], db: Any, opts: RunOptions, progress: Any
    ) -> tuple[list[Result], str]:
        return sample.workload_results(), "on mlp: your GPU is 5.9x faster than your CPU."

    monkeypatch.setattr(main_run, "examine", doctor)
    monkeypatch.setattr(main_run, "ceilings", micro)
    monkeypatch.setattr(main_run, "workloads", workloads)
    app = typer.Typer()
    run_cli.register(app)

    @app.callback()
    def _root() -> None:  # keeps `run` a sub-command, as in the real app
        """gpuscout"""

    return app


def test_run_writes_the_report_next_to_the_database(app: typer.Typer, tmp_path: Path) -> None:
    db = tmp_path / "data" / "gpuscout.db"
    r = runner.invoke(app, ["run", "--db", str(db)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    report = tmp_path / "data" / "reports" / "run-1.html"
    assert f"report: {report}" in r.output
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and "H100" in page and "<svg" in page
    # The verdict ends with the report's own advice: which GPU, and what a run costs.
    assert "per run" in r.output and "gpuscout advise" in r.output


def test_run_report_option_and_json(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "mine.html"
    r = runner.invoke(app, ["run", "--json", "--report", str(out), "--db", str(tmp_path / "g.db")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["report"] == str(out) and doc["report_error"] is None
    assert out.is_file()
    assert isinstance(doc["advice"], str) and html.escape(doc["advice"]) in out.read_text()


def test_a_report_that_cannot_be_written_is_a_warning(app: typer.Typer, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    db = tmp_path / "g.db"
    r = runner.invoke(app, ["run", "--report", str(blocker / "r.html"), "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "warning: the report was not written" in r.output
    r = runner.invoke(app, ["run", "--json", "--report", str(blocker / "r.html"), "--db", str(db)])
    doc = json.loads(r.stdout)
    assert doc["report"] is None and "cannot write the report" in doc["report_error"]
    assert doc["run_id"] == 2  # the measurements were stored all the same


def test_a_crash_while_building_the_report_is_a_warning(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gpuscout.report as report_pkg

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("fingerprint")

    monkeypatch.setattr(report_pkg, "build_report", broken)
    r = runner.invoke(app, ["run", "--db", str(tmp_path / "g.db")])
    assert r.exit_code == 0
    assert "warning: the report was not written: KeyError" in r.output


def test_an_in_memory_store_still_gets_its_report(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "mem.html"
    r = runner.invoke(app, ["run", "--json", "--report", str(out), "--db", ":memory:"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["report_error"] is None and doc["report"] == str(out)
    assert "H100" in out.read_text()


def test_a_report_path_with_brackets_is_printed_as_it_is(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "run[/]x[bold].html"
    db = tmp_path / "g.db"
    r = runner.invoke(app, ["run", "--report", str(out), "--db", str(db)], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert f"report: {out}" in r.output


def test_run_beside_busy_processes_says_so_first_and_not_ready(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    def busy_micro(system: SystemInfo, opts: RunOptions, progress: Any) -> list[Result]:
        return [
            replace(r, extra={**r.extra, "flags": ["host-busy"], "host_busy_pct": 55.0})
            for r in sample.micro_results()
        ]

    monkeypatch.setattr(main_run, "ceilings", busy_micro)
    r = runner.invoke(app, ["run", "--db", str(tmp_path / "g.db")], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    verdict = r.output.split("Verdict", 1)[1].splitlines()[1:]
    assert verdict[0].startswith("measurements disturbed: ")
    assert "ran beside busy processes" in verdict[0]
    assert verdict[1].startswith("readiness checks passed; ")
    assert not any(line.startswith("ready;") for line in verdict)
    assert any(line.startswith("From disturbed measurements") for line in verdict)
