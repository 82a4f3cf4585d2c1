"""gpuscout.validate.triad_against_stream: the C triad (scripts/stream_triad.c) compiled
and run for real at a small size, and the side-by-side report built from it and from
gpuscout's triad result (here a stand-in for the CLI that prints a result of the shape
`gpuscout bench micro --json` prints, so the test does not spend seconds on 768 MiB
arrays)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from gpuscout.validate import triad_against_stream as stream

ELEMS = 1 << 16  # 512 KiB per array: a test, not a bandwidth measurement

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None and shutil.which("cc") is None, reason="no C compiler"
)


def cli_result(status: str = "ok") -> dict[str, Any]:
    """A memory/triad result as the CLI prints it (fields of a real CPU run's)."""
    return {
        "name": "memory/triad",
        "device": "cpu",
        "figure": 10.0,
        "unit": "GB/s",
        "status": status,
        "error": None if status == "ok" else "out of memory",
        "stats": {"n": 5, "median_s": 0.0002, "min_s": 0.0001},
        "extra": {"elems": ELEMS, "threads": 1, "bytes_per_iter": 24 * ELEMS},
    }


def fake_python(tmp_path: Path, result: dict[str, Any]) -> str:
    """An executable that answers `-m gpuscout bench micro ... --json` with ``result``."""
    doc = {"run_id": None, "quick": False, "results": [result]}
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\ncat <<'JSON'\n{json.dumps(doc)}\nJSON\n")
    path.chmod(0o755)
    return str(path)


def test_the_c_triad_reports_bandwidth_as_stream_counts_it(tmp_path: Path) -> None:
    exe = stream.compile_stream(tmp_path)
    got = stream.c_triad(exe, ELEMS, threads=1, reps=3)
    assert got["threads"] == 1 and got["elems"] == ELEMS and got["array_bytes"] == 8 * ELEMS
    for kernel in ("copy", "triad"):  # best is the fastest repetition: never below the median
        assert got[f"{kernel}_best_gbs"] >= got[f"{kernel}_median_gbs"] > 0


def test_one_round_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    python = fake_python(tmp_path, cli_result())
    assert stream.main(["--rounds", "1", "--reps", "3", "--python", python]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    # gpuscout's best: 24 bytes x 65,536 elements in its fastest 0.1 ms
    assert lines[0].startswith(
        f"round 1: {ELEMS} doubles/array (0 MiB), 1 threads | gpuscout triad 10.0 GB/s "
        "median of 5, 15.7 best | C triad "
    )
    median = re.fullmatch(
        r"median: gpuscout triad 10\.0 GB/s \| C STREAM triad (\S+) GB/s \| ratio (\S+)",
        lines[1],
    )
    assert median is not None
    assert float(median[2]) == pytest.approx(10.0 / float(median[1]), abs=2e-3, rel=2e-3)
    assert lines[2].startswith("  best: gpuscout triad 15.7 GB/s | C STREAM triad ")


def test_a_failed_gpuscout_triad_stops_the_comparison(tmp_path: Path) -> None:
    python = fake_python(tmp_path, cli_result("failed"))
    with pytest.raises(SystemExit, match="gpuscout triad failed: out of memory"):
        stream.gpuscout_triad(python)
