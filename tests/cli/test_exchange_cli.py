"""`gpuscout export`, `import` and `report` on the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gpuscout.cli.report import register
from gpuscout.store import Store, exchange
from helpers.report_sample import fill_store

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "here.db"
    with Store.open(path) as store:
        fill_store(store, host="lab")
        fill_store(store, gpu=False, host="laptop")
    return path


def test_export_then_import_on_another_machine_round_trips(
    app: typer.Typer, db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "runs.json"
    r = runner.invoke(app, ["export", "1", "-o", str(out), "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "exported 1 run (1)" in r.output
    other = tmp_path / "there.db"
    with Store.open(other) as store:
        fill_store(store, gpu=False, host="elsewhere")  # so the imported run gets a new id
    r = runner.invoke(app, ["import", str(out), "--db", str(other)])
    assert r.exit_code == 0, r.output
    assert "imported 1 run as 2" in r.output
    with Store.open(db) as a, Store.open(other) as b:
        assert b.results(2) == a.results(1)
        assert b.findings(2) == a.findings(1)
        assert b.get_run(2).fingerprint == a.get_run(1).fingerprint
    r = runner.invoke(app, ["compare", "1", "2", "--db", str(other)])
    assert r.exit_code == 0 and "lab" in r.output  # the imported run compares like any other


def test_export_to_stdout_and_import_json(app: typer.Typer, db: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["export", "--db", str(db)])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert [run["id"] for run in doc["runs"]] == [1, 2]
    path = tmp_path / "all.json"
    path.write_text(r.output)
    r = runner.invoke(app, ["import", str(path), "--json", "--db", str(tmp_path / "new.db")])
    assert r.exit_code == 0
    assert json.loads(r.output) == {"run_ids": [1, 2], "already": []}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "gpuscout-runs",', "is not valid JSON (line 1"),
        ("[1, 2]", "not a valid gpuscout export: document: expected an object"),
        (
            '{"format": "pickle", "schema_version": 1, "runs": []}',
            "format: expected 'gpuscout-runs'",
        ),
        (
            '{"format": "gpuscout-runs", "schema_version": 1, "runs": [{"kind": "run"}]}',
            "runs[0]: missing started_at",
        ),
    ],
)
def test_a_malformed_file_is_one_line_and_exit_2(
    app: typer.Typer, tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    target = tmp_path / "t.db"
    r = runner.invoke(app, ["import", str(bad), "--db", str(target)])
    assert r.exit_code == 2
    assert message in r.output
    assert r.output.startswith("error:") and "Traceback" not in r.output
    with Store.open(target) as store:
        assert store.list_runs() == []  # nothing half-imported


def test_import_of_a_missing_or_binary_file_is_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    r = runner.invoke(app, ["import", str(tmp_path / "nope.json"), "--db", str(tmp_path / "t.db")])
    assert r.exit_code == 2 and "no such file" in r.output
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x80\x04\x95pickle\xff")
    r = runner.invoke(app, ["import", str(binary), "--db", str(tmp_path / "t.db")])
    assert r.exit_code == 2 and "not a text file" in r.output


def test_export_of_an_empty_store_is_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    Store.open(tmp_path / "empty.db").close()
    r = runner.invoke(app, ["export", "--db", str(tmp_path / "empty.db")])
    assert r.exit_code == 2 and "no runs to export" in r.output


def test_report_command_writes_each_format(app: typer.Typer, db: Path, tmp_path: Path) -> None:
    for fmt in ("html", "md", "json"):
        out = tmp_path / f"r.{fmt}"
        r = runner.invoke(app, ["report", "1", "-o", str(out), "--format", fmt, "--db", str(db)])
        assert r.exit_code == 0, r.output
        assert f"wrote {out} (runs 1)" in r.output
        assert out.stat().st_size > 500
    assert json.loads((tmp_path / "r.json").read_text())["runs"][0]["id"] == 1


def test_report_json_lists_the_file_and_unavailable_sections(
    app: typer.Typer, db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.html"
    r = runner.invoke(app, ["report", "-o", str(out), "--json", "--db", str(db)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["path"] == str(out) and doc["run_ids"] == [2] and doc["format"] == "html"
    assert isinstance(doc["unavailable"], dict)


def test_report_to_stdout(app: typer.Typer, db: Path) -> None:
    r = runner.invoke(app, ["report", "2", "-o", "-", "-f", "md", "--db", str(db)])
    assert r.exit_code == 0 and r.output.startswith("# gpuscout report")


def test_report_bad_input_is_exit_2_and_creates_nothing(
    app: typer.Typer, db: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.db"
    r = runner.invoke(app, ["report", "--db", str(missing)])
    assert r.exit_code == 2 and "no results database" in r.output
    assert not missing.exists()
    r = runner.invoke(app, ["report", "--format", "pdf", "--db", str(db)])
    assert r.exit_code == 2 and "unknown format 'pdf'" in r.output
    r = runner.invoke(app, ["report", "42", "--db", str(db)])
    assert r.exit_code == 2 and "no run 42" in r.output


def test_report_path_with_brackets_is_printed_as_it_is(
    app: typer.Typer, db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r[/]a[x].md"
    r = runner.invoke(
        app, ["report", "1", "-o", str(out), "-f", "md", "--db", str(db)], env={"COLUMNS": "300"}
    )
    assert r.exit_code == 0, r.output
    assert f"wrote {out} (runs 1)" in r.output and out.is_file()


def _export(app: typer.Typer, db: Path, path: Path, *ids: str) -> Path:
    r = runner.invoke(app, ["export", *ids, "-o", str(path), "--db", str(db)])
    assert r.exit_code == 0, r.output
    return path


def test_a_second_import_says_where_the_runs_already_are(
    app: typer.Typer, db: Path, tmp_path: Path
) -> None:
    both = _export(app, db, tmp_path / "both.json")
    target = str(tmp_path / "t.db")
    r = runner.invoke(app, ["import", str(both), "--db", target])
    assert r.exit_code == 0, r.output
    assert r.output == "imported 2 runs as 1-2 (gpuscout show 1)\n"
    r = runner.invoke(app, ["import", str(both), "--db", target])
    assert r.exit_code == 0, r.output
    assert r.output == "nothing new: 2 runs already imported as runs 1-2\n"
    r = runner.invoke(app, ["import", str(both), "--db", target, "--json"])
    assert json.loads(r.output) == {
        "run_ids": [],
        "already": [{"index": 0, "run_id": 1}, {"index": 1, "run_id": 2}],
    }
    with Store.open(target) as store:
        assert [run.id for run in store.list_runs()] == [2, 1]


def test_one_run_three_times_in_a_file_is_imported_once(
    app: typer.Typer, db: Path, tmp_path: Path
) -> None:
    doc = json.loads(_export(app, db, tmp_path / "one.json", "2").read_text())
    doc["runs"] = doc["runs"] * 3
    thrice = tmp_path / "thrice.json"
    thrice.write_text(json.dumps(doc))
    target = tmp_path / "t.db"
    with Store.open(target) as store:
        for _ in range(4):  # so the new run is number 5 and the ranges have to skip
            fill_store(store, host="earlier")
    r = runner.invoke(app, ["import", str(thrice), "--db", str(target)])
    assert r.exit_code == 0, r.output
    assert r.output == "imported 1 run as 5; 2 already imported as run 5 (gpuscout show 5)\n"


def test_many_new_ids_are_summed_up_in_ranges(app: typer.Typer, tmp_path: Path) -> None:
    source = tmp_path / "many.db"
    with Store.open(source) as store:
        for host in ("a", "b", "c", "d", "e"):
            fill_store(store, host=host)
        store.delete_runs([3])
    many = _export(app, source, tmp_path / "many.json")
    target = tmp_path / "t.db"
    r = runner.invoke(app, ["import", str(many), "--db", str(target)])
    assert r.output == "imported 4 runs as 1-4 (gpuscout show 1)\n"
    with Store.open(target) as store:
        store.delete_runs([2])
        fill_store(store, host="f")  # id 5
    r = runner.invoke(app, ["import", str(many), "--db", str(target)])
    assert r.output == "imported 1 run as 6; 3 already imported as runs 1, 3-4 (gpuscout show 6)\n"


def test_a_file_over_the_size_cap_is_one_line(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exchange, "MAX_IMPORT_BYTES", 2**20)
    big = tmp_path / "big.json"
    big.write_text(" " * (2**20 + 1))
    r = runner.invoke(app, ["import", str(big), "--db", str(tmp_path / "t.db")])
    assert r.exit_code == 2
    assert r.output == (
        f"error: {big} is larger than the 1 MiB an import reads; export fewer runs at a time "
        "(gpuscout export RUN_ID ... -o part.json)\n"
    )
    assert not (tmp_path / "t.db").exists()


def test_a_report_onto_a_device_writes_through_it_and_leaves_it_be(
    app: typer.Typer, db: Path, tmp_path: Path
) -> None:
    # A link to the device, not the device itself: if the file were replaced, the link
    # would be (a test run as root must never replace /dev/null).
    null = tmp_path / "null"
    null.symlink_to(os.devnull)
    r = runner.invoke(app, ["report", "1", "-o", str(null), "-f", "md", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert null.is_symlink() and null.is_char_device()


@pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="no /dev/full here")
def test_a_report_onto_a_full_device_is_one_line(
    app: typer.Typer, db: Path, tmp_path: Path
) -> None:
    full = tmp_path / "full"
    full.symlink_to("/dev/full")
    r = runner.invoke(
        app, ["report", "1", "-o", str(full), "-f", "md", "--db", str(db)], env={"COLUMNS": "300"}
    )
    assert r.exit_code == 2
    assert r.output == f"error: cannot write the report to {full}: No space left on device\n"
    assert full.is_symlink()


@pytest.mark.parametrize("folder", [".", "..", "{tmp}", "{tmp}/"])
def test_a_report_onto_a_folder_is_one_line(
    app: typer.Typer, db: Path, tmp_path: Path, folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    output = folder.format(tmp=tmp_path)
    r = runner.invoke(
        app, ["report", "1", "-o", output, "-f", "md", "--db", str(db)], env={"COLUMNS": "300"}
    )
    assert r.exit_code == 2
    lines = r.output.splitlines()
    assert lines[0] == f"error: {output} is a folder, not a file for the report"
    assert lines[1].startswith("  name the file, e.g. -o ") and lines[1].endswith("report.md")
    assert len(lines) == 2
