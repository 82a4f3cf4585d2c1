"""``gpuscout gpus``: list, show, --json and one-line errors, on a throwaway Typer app."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner, Result

from gpuscout.catalog import load_gpus
from gpuscout.cli.gpus import register


def run(*args: str) -> Result:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Root, so that `gpus` stays a sub-command as in the real app."""

    return CliRunner().invoke(app, list(args))


def test_help_text() -> None:
    result = run("gpus", "--help")
    assert result.exit_code == 0
    for text in ("--segment", "--json", "catalog", "cloud prices"):
        assert text in result.stdout
    assert "gpus" in run("--help").stdout


def test_list_shows_every_gpu() -> None:
    result = run("gpus")
    assert result.exit_code == 0, result.stderr
    for gpu in load_gpus():
        assert gpu.id in result.stdout
    assert "n/a" in result.stdout  # unsupported figures are explicit, never blank or 0


def test_list_one_segment() -> None:
    result = run("gpus", "--segment", "datacenter")
    assert result.exit_code == 0
    assert "h100-sxm5-80gb" in result.stdout
    assert "rtx-4090" not in result.stdout


def test_show_one_gpu_with_prices() -> None:
    result = run("gpus", "RTX 4090")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "GeForce RTX 4090" in out and "rtx-4090" in out
    assert "165.2" in out  # BF16 dense
    assert "1,008 GB/s" in out
    assert "RunPod" in out and "2026-03" in out  # a price always comes with its date


def test_show_gpu_without_prices() -> None:
    result = run("gpus", "gtx-1080-ti")
    assert result.exit_code == 0
    assert "No cloud prices" in result.stdout


def test_json_list_is_only_json() -> None:
    result = run("gpus", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert isinstance(data, list) and len(data) >= 40
    ids = [row["id"] for row in data]
    assert len(ids) == len(set(ids))
    h100 = next(row for row in data if row["id"] == "h100-sxm5-80gb")
    assert h100["bf16_tensor_tflops"] == 989.5
    assert h100["aliases"] == ["NVIDIA H100 80GB HBM3"]


def test_json_list_one_segment() -> None:
    data = json.loads(run("gpus", "--segment", "consumer", "--json").stdout)
    assert data and {row["segment"] for row in data} == {"consumer"}


def test_json_show() -> None:
    result = run("gpus", "h100 sxm", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["gpu"]["id"] == "h100-sxm5-80gb"
    assert data["cloud_prices"] and all(p["date_seen"] for p in data["cloud_prices"])
    assert {p["gpu_id"] for p in data["cloud_prices"]} == {"h100-sxm5-80gb"}


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("gpus", "rtx 4909"), "did you mean"),
        (("gpus", "rtx 4909", "--json"), "did you mean"),
        (("gpus", "h100"), "h100-sxm5-80gb"),  # ambiguous: lists the candidates
        (("gpus", "--segment", "gamer"), "unknown segment"),
        (("gpus", "4090", "--segment", "consumer"), "not both"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], expected: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert len(error_lines(result)) == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""  # nothing half-printed, even with --json
