"""``gpuscout prices``: list, one GPU, --price, --json and import, on a throwaway Typer
app with its own GPUSCOUT_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from gpuscout.cli.prices import register


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "home"


def run(*args: str) -> Result:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Root, so that `prices` stays a sub-command as in the real app."""

    return CliRunner().invoke(app, list(args))


def test_list_all_shows_sections_and_free_tiers() -> None:
    result = run("prices")
    assert result.exit_code == 0, result.output
    for text in ("Street prices", "Cloud offers", "Free tiers", "Kaggle", "Google Colab"):
        assert text in result.stdout


def test_one_gpu_with_an_override_and_stale_marker() -> None:
    result = run("prices", "rtx", "3090", "--price", "rtx-3090:used=650")
    assert result.exit_code == 0, result.output
    assert "$650" in result.stdout and "override" in result.stdout
    assert "(stale)" in result.stdout  # the RunPod offers are from March 2026


def test_json_listing() -> None:
    result = run("prices", "4090", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["gpu"]["id"] == "rtx-4090"
    usd = [row["price"]["usd"] for row in doc["cloud"]]
    assert usd == sorted(usd)
    assert {"stale", "age_days"} <= set(doc["cloud"][0])


def test_import_then_list(tmp_path: Path, _home: Path) -> None:
    src = tmp_path / "p.csv"
    src.write_text(
        "gpu_id,kind,usd,date_seen,source\nrtx-3090,used,620,2026-11-30,https://example.com/sold\n"
    )
    result = run("prices", "import", str(src))
    assert result.exit_code == 0, result.output
    assert "1 added, 0 replaced" in result.stdout
    assert (_home / "prices.toml").is_file()
    doc = json.loads(run("prices", "3090", "--json").stdout)
    used = [r["price"] for r in doc["street"] if r["price"]["kind"] == "used"]
    assert [(u["usd"], u["origin"]) for u in used] == [(620, "user")]
    again = json.loads(run("prices", "import", str(src), "--json").stdout)
    assert (len(again["added"]), len(again["replaced"])) == (0, 1)


def test_bad_import_is_one_line_and_writes_nothing(tmp_path: Path, _home: Path) -> None:
    src = tmp_path / "p.csv"
    src.write_text(
        "gpu_id,kind,usd,date_seen,source\nrtx-3090,used,lots,2026-11-30,https://e.com\n"
    )
    result = run("prices", "import", str(src))
    assert result.exit_code == 2
    assert "row 1 (rtx-3090, used): usd must be a number" in result.stderr
    assert not (_home / "prices.toml").exists()


def test_usage_errors() -> None:
    assert run("prices", "import").exit_code == 2
    assert run("prices", "--price", "rtx-3090=cheap").exit_code == 2
    assert run("prices", "no-such-gpu-xyz").exit_code == 2
