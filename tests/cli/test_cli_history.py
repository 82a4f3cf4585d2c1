"""`gpuscout history` and `gpuscout show`, on a throwaway Typer app with --db."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gpuscout import Finding, Result, Stats, Status
from gpuscout.cli.history import register
from gpuscout.store import Store

runner = CliRunner()

FP = {
    "host": "box",
    "gpus": [
        {"index": 0, "name": "NVIDIA H100", "uuid": "GPU-a", "memory_total_bytes": 80 * 2**30},
        {"index": 1, "name": "NVIDIA H100", "uuid": "GPU-b", "memory_total_bytes": 80 * 2**30},
    ],
}
STATS = Stats(30, 0.0012, 0.0012, 0.001, 0.002, 0.0011, 0.0013, 0.00005, 0.03, False)


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "g.db"
    with Store.open(path) as store:
        with store.run("doctor", {"host": "laptop", "gpus": []}) as run:
            run.add_findings([Finding("gpu.present", Status.WARN, "no GPU", fix="see docs")])
            run.summary["headline"] = "1 warning"
        with store.run("bench-micro", FP) as run:
            run.add_result(
                Result("matmul", "cuda:0", 712.3, "TFLOPS", stats=STATS, peak_fraction=0.72)
            )
            run.add_result(Result("copy", "cuda:0", None, "GB/s", status="oom", error="OOM"))
            run.summary["headline"] = "712 TFLOPS bf16"
    return path


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("command", ["history", "show"])
def test_help(app: typer.Typer, command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--db" in result.output and "--json" in result.output


def test_history_json(app: typer.Typer, db: Path) -> None:
    result = runner.invoke(app, ["history", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert [(r["id"], r["kind"], r["status"]) for r in runs] == [
        (2, "bench-micro", "ok"),
        (1, "doctor", "ok"),
    ]
    assert runs[0]["fingerprint"] == FP


def test_history_limit_and_kind(app: typer.Typer, db: Path) -> None:
    result = runner.invoke(app, ["history", "--json", "--limit", "1", "--db", str(db)])
    assert [r["id"] for r in json.loads(result.stdout)] == [2]
    result = runner.invoke(app, ["history", "--json", "--kind", "doctor", "--db", str(db)])
    assert [r["id"] for r in json.loads(result.stdout)] == [1]


def test_history_table(app: typer.Typer, db: Path) -> None:
    result = runner.invoke(app, ["history", "--db", str(db)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("bench-micro", "doctor", "2x NVIDIA H100", "712 TFLOPS bf16", "laptop"):
        assert text in result.output


def test_history_without_database_creates_nothing(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "none.db"
    result = runner.invoke(app, ["history", "--db", str(path)])
    assert result.exit_code == 0
    assert "No runs yet" in result.output
    result = runner.invoke(app, ["history", "--json", "--db", str(path)])
    assert json.loads(result.stdout) == []
    assert not path.parent.exists()


def test_history_bad_limit(app: typer.Typer, db: Path) -> None:
    result = runner.invoke(app, ["history", "--limit", "0", "--db", str(db)])
    assert result.exit_code == 2
    assert "--limit" in _one_error_line(result.output)


def test_show_json(app: typer.Typer, db: Path) -> None:
    result = runner.invoke(app, ["show", "2", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run"]["id"] == 2 and doc["run"]["kind"] == "bench-micro"
    assert doc["findings"] == []
    assert [r["name"] for r in doc["results"]] == ["matmul", "copy"]
    assert doc["results"][0]["figure"] == 712.3
    assert doc["results"][0]["stats"]["median_s"] == 0.0012
    assert doc["results"][1]["status"] == "oom"


def test_show_table(app: typer.Typer, db: Path) -> None:
    result = runner.invoke(app, ["show", "2", "--db", str(db)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("Run 2", "matmul", "712.3", "TFLOPS", "1.2 ms", "72%", "oom", "GPU-b"):
        assert text in result.output
    result = runner.invoke(app, ["show", "1", "--db", str(db)], env={"COLUMNS": "200"})
    for text in ("gpu.present", "no GPU", "see docs", "No results recorded"):
        assert text in result.output


def test_show_unknown_id_is_one_line_exit_2(app: typer.Typer, db: Path) -> None:
    result = runner.invoke(app, ["show", "99", "--db", str(db)])
    assert result.exit_code == 2
    line = _one_error_line(result.output)
    assert "no run 99" in line and "gpuscout history" in line


def test_show_without_database_is_exit_2_and_creates_nothing(
    app: typer.Typer, tmp_path: Path
) -> None:
    path = tmp_path / "none.db"
    result = runner.invoke(app, ["show", "1", "--db", str(path)])
    assert result.exit_code == 2
    assert "no run 1" in _one_error_line(result.output)
    assert not path.exists()


def test_show_non_integer_id_is_usage_error(app: typer.Typer, db: Path) -> None:
    result = runner.invoke(app, ["show", "latest", "--db", str(db)])
    assert result.exit_code == 2


@pytest.mark.parametrize("command", [["history"], ["show", "1"]])
def test_not_a_database_is_one_line_exit_2_and_untouched(
    app: typer.Typer, tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 10)
    before = path.read_bytes()
    result = runner.invoke(app, [*command, "--db", str(path)])
    assert result.exit_code == 2
    line = _one_error_line(result.output)
    assert str(path.name) in line and "not a SQLite database" in line
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_delete_removes_runs_with_their_results(app: typer.Typer, db: Path) -> None:
    r = runner.invoke(app, ["delete", "2", "1", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert r.output == "deleted runs 1-2\n"
    with Store.open(db) as store:
        assert store.list_runs() == []
        assert store.conn.execute("SELECT count(*) FROM results").fetchone()[0] == 0
        assert store.conn.execute("SELECT count(*) FROM findings").fetchone()[0] == 0


def test_delete_json(app: typer.Typer, db: Path) -> None:
    r = runner.invoke(app, ["delete", "2", "--json", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"deleted": [2]}
    r = runner.invoke(app, ["delete", "1", "--db", str(db)])
    assert r.output == "deleted run 1\n"


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["1", "99"], "error: no run 99 in {db}; see gpuscout history"),
        (["9223372036854775808"], "error: no run 9223372036854775808: run ids go from 1 to"),
        (["0"], "error: no run 0: run ids go from 1 to"),
    ],
)
def test_delete_of_an_unknown_run_is_one_line_and_deletes_nothing(
    app: typer.Typer, db: Path, ids: list[str], message: str
) -> None:
    r = runner.invoke(app, ["delete", *ids, "--db", str(db)], env={"COLUMNS": "300"})
    assert r.exit_code == 2
    assert r.output.startswith(message.format(db=db)) and "Traceback" not in r.output
    with Store.open(db) as store:
        assert [run.id for run in store.list_runs()] == [2, 1]


def test_delete_without_a_database_creates_none(app: typer.Typer, tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    r = runner.invoke(app, ["delete", "1", "--db", str(missing)])
    assert r.exit_code == 2 and "no results database at" in r.output
    assert not missing.exists()


def test_a_limit_past_any_store_lists_every_run(app: typer.Typer, db: Path) -> None:
    r = runner.invoke(app, ["history", "--limit", "9223372036854775808", "--json", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert [run["id"] for run in json.loads(r.output)] == [2, 1]


def test_control_characters_written_behind_the_stores_back_never_reach_the_terminal(
    app: typer.Typer, db: Path
) -> None:
    # A hand edit (or a writer that predates the store's rules) can put anything in a row.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE results SET name = ? WHERE name = 'matmul'", ("a\x1b]0;x\x07\u202eb",))
        conn.execute("UPDATE runs SET summary = ? WHERE id = 1", ('{"headline": "\\u001b[2J"}',))
    conn.close()
    for argv in (["show", "2"], ["history"]):
        r = runner.invoke(app, [*argv, "--db", str(db)], env={"COLUMNS": "200"})
        assert r.exit_code == 0, r.output
        assert not any(c in r.output for c in "\x1b\x07\u202e"), r.output
    shown = runner.invoke(app, ["show", "2", "--db", str(db)], env={"COLUMNS": "200"})
    assert "a\ufffd]0;x" in shown.output  # what is left of the name, the ESC shown as U+FFFD
