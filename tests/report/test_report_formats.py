"""The report as Markdown and as JSON: same data, no charts, escaped for their readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuscout.errors import UsageError
from gpuscout.report import build_report, render, write_report
from gpuscout.report.markdown import cell, table
from gpuscout.store import Store
from helpers.report_sample import fill_store


@pytest.fixture(scope="module")
def store() -> Store:
    s = Store(":memory:")
    fill_store(s, gpu_name="NVIDIA H100 | <b>x</b>")
    return s


def test_markdown_tables_are_github_tables(store: Store) -> None:
    md = render(build_report(store, forecast=False), "md")
    assert md.startswith("# gpuscout report\n")
    assert "<svg" not in md
    lines = md.splitlines()
    seps = [i for i, line in enumerate(lines) if line.startswith("| ---")]
    assert seps, "no table"
    for i in seps:  # every table: header, separator, rows with as many cells
        width = lines[i].count(" | ")
        row = i + 1
        while row < len(lines) and lines[row].startswith("|"):
            assert lines[row].replace("\\|", "").count(" | ") == width, lines[row]
            row += 1
    assert "---:" in md  # numbers are right-aligned
    assert "2,480,000 samples/s" in md


def test_markdown_escapes_pipes_and_html(store: Store) -> None:
    md = render(build_report(store, forecast=False), "md")
    assert "<b>" not in md
    assert "H100 \\| &lt;b&gt;x&lt;/b&gt;" in md


def test_cell_keeps_one_line_and_escapes_markdown() -> None:
    assert cell("a\nb|c") == "a b\\|c"
    assert cell("*bold* [link](x)") == "\\*bold\\* \\[link\\](x)"
    assert table(("a", "b"), [(1, 2)], numeric=(1,)).splitlines()[1] == "| --- | ---: |"


def test_json_holds_the_same_data(store: Store) -> None:
    report = build_report(store, forecast=False)
    doc = json.loads(render(report, "json"))
    assert set(doc) >= {
        "runs",
        "summary",
        "machine",
        "findings",
        "ceilings",
        "workloads",
        "roofline",
    }
    figures = {(w["workload"], w["device"], w["impl"]): w["figure"] for w in doc["workloads"]}
    assert figures[("mlp", "cuda:0", "tuned")] == 2_480_000.0
    assert doc["prediction"] == {"reason": "not computed (forecast disabled)"}
    assert doc["runs"][0]["kind"] == "run"


def test_unknown_format_is_a_usage_error(store: Store) -> None:
    with pytest.raises(UsageError, match="unknown report format"):
        render(build_report(store, forecast=False), "pdf")


def test_write_report_creates_folders_and_reports_unwritable_paths(
    store: Store, tmp_path: Path
) -> None:
    report = build_report(store, forecast=False)
    out = write_report(report, tmp_path / "a" / "b" / "r.md", "md")
    assert out.read_text().startswith("# gpuscout report")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot write the report"):
        write_report(report, blocker / "r.html")


def test_a_failed_write_leaves_no_temporary_file(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "r.html"
    folder.mkdir()  # the target is a folder: writing the temporary works, the rename fails
    with pytest.raises(UsageError, match="cannot write the report"):
        write_report(build_report(store, forecast=False), folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
