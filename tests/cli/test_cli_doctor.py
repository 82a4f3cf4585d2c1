from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpuscout.cli.main import app


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    return CliRunner()


def test_help_explains_exit_codes(runner: CliRunner) -> None:
    r = runner.invoke(app, ["doctor", "--help"])
    assert r.exit_code == 0
    assert "Exit code 0" in r.output and "--json" in r.output


def test_json_parses_and_carries_findings(
    runner: CliRunner, tmp_path: Path, machine_file: Callable[[str], Path]
) -> None:
    db = tmp_path / "r.db"
    r = runner.invoke(
        app, ["doctor", "--machine", str(machine_file("cpu_wheel")), "--json", "--db", str(db)]
    )
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["exit_code"] == 1
    assert any(f["id"] == "torch.build" and f["status"] == "fail" for f in doc["findings"])
    assert doc["system"]["nvidia"]["gpus"][0]["catalog_id"] == "rtx-4090"
    # every doctor run is stored, with its findings
    shown = runner.invoke(app, ["show", str(doc["run_id"]), "--json", "--db", str(db)])
    assert shown.exit_code == 0
    assert "torch.build" in shown.stdout


def test_healthy_machine_exits_zero(runner: CliRunner, machine_file: Callable[[str], Path]) -> None:
    r = runner.invoke(app, ["doctor", "--machine", str(machine_file("h100")), "--no-store"])
    assert r.exit_code == 0
    assert "0 failed" in r.output


def test_this_machine_runs(runner: CliRunner) -> None:
    # CI has no GPU: the doctor must say so and still exit 0 (no check fails).
    r = runner.invoke(app, ["doctor", "--json", "--no-store"])
    assert r.exit_code in (0, 1)
    doc = json.loads(r.stdout)
    assert {f["id"] for f in doc["findings"]} >= {"host.cpu", "nvidia.driver"}


@pytest.mark.parametrize(
    "args",
    [
        ["doctor", "--machine", "/nonexistent.json"],
        ["doctor", "--mem-channels", "0"],
        ["doctor", "--bogus"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(runner: CliRunner, args: list[str]) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_corrupted_database_is_one_line_and_untouched(
    runner: CliRunner, tmp_path: Path, machine_file: Callable[[str], Path]
) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(b"this is not sqlite" * 100)
    before = db.read_bytes()
    r = runner.invoke(app, ["doctor", "--machine", str(machine_file("h100")), "--db", str(db)])
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    assert db.read_bytes() == before


@pytest.mark.parametrize("where", ["folder", "under a file", "missing folder"])
def test_record_to_a_place_that_cannot_be_written_is_one_line(
    runner: CliRunner, tmp_path: Path, where: str
) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    target = {
        "folder": tmp_path,
        "under a file": plain / "machine.json",
        "missing folder": tmp_path / "nope" / "machine.json",
    }[where]
    r = runner.invoke(app, ["doctor", "--record", str(target), "--no-store"])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert lines[0].startswith(f"error: cannot write the recording to {target}: ")
    assert lines[1:] == ["  give --record a file in a folder you can write to"]


def test_record_to_a_read_only_folder_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere; a read-only mount it cannot
            pytest.skip("this user can write to a read-only folder")
        r = runner.invoke(app, ["doctor", "--record", str(locked / "m.json"), "--no-store"])
    finally:
        locked.chmod(0o700)
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: cannot write the recording to {locked / 'm.json'}: ")
