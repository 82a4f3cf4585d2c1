"""The report in a real headless browser: it loads from disk with no console error, asks
for nothing but itself, and its charts are there with their data marks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpuscout.report import build_report, write_report
from gpuscout.report.document import Report, Unavailable
from gpuscout.store import Store
from helpers.report_sample import fill_store


@pytest.fixture(scope="module")
def report_and_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path]:
    folder = tmp_path_factory.mktemp("report")
    with Store.open(folder / "gpuscout.db") as store:
        fill_store(store)  # doctor findings, bench-micro for cpu and cuda:0, workloads
        report = build_report(store)
    return report, write_report(report, folder / "report.html")


@pytest.fixture(scope="module")
def loaded(chromium_path: str, report_and_file: tuple[Report, Path]) -> Iterator[dict[str, Any]]:
    # Imported here, after chromium_path has skipped on a machine without chromium: where
    # chromium is installed, a missing playwright (a [dev] dependency) is an error.
    from playwright.sync_api import sync_playwright

    _, path = report_and_file
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            page = browser.new_page()
            console: list[tuple[str, str]] = []
            requests: list[str] = []
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            yield {"page": page, "console": console, "requests": requests, "url": path.as_uri()}
        finally:
            browser.close()


def test_no_console_errors(loaded: dict[str, Any]) -> None:
    errors = [(t, text) for t, text in loaded["console"] if t in ("error", "pageerror", "warning")]
    assert errors == []


def test_no_request_but_the_file_itself(loaded: dict[str, Any]) -> None:
    assert loaded["requests"] == [loaded["url"]]


def test_every_section_renders(loaded: dict[str, Any]) -> None:
    page = loaded["page"]
    for anchor in ("machine", "ceilings", "workloads", "roofline", "predictions", "fit", "cost"):
        assert page.locator(f"section#{anchor}").is_visible(), anchor
    assert "The answer" in page.locator(".summary").inner_text()


def test_charts_are_drawn_with_their_data_marks(
    loaded: dict[str, Any], report_and_file: tuple[Report, Path]
) -> None:
    page = loaded["page"]
    report, _ = report_and_file
    assert page.locator("#workloads svg").count() == 1
    bars = page.locator('#workloads svg [id*="-mark-bar-"]').count()
    assert isinstance(report.workloads, tuple)
    assert bars == sum(1 for w in report.workloads if w.status == "ok" and w.figure)
    assert page.locator("#roofline svg").count() == 1
    points = page.locator('#roofline svg [id*="-mark-point-"]')
    assert points.count() == len(report.roofline.points) > 0  # type: ignore[union-attr]
    box = page.locator("#roofline svg").bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 200
    for i in range(points.count()):  # each point is drawn inside the chart
        mark = points.nth(i).bounding_box()
        assert mark is not None
        assert box["x"] <= mark["x"] <= box["x"] + box["width"]
        assert box["y"] <= mark["y"] <= box["y"] + box["height"]


def test_prediction_chart_has_a_dot_and_a_range_per_gpu(
    loaded: dict[str, Any], report_and_file: tuple[Report, Path]
) -> None:
    from gpuscout.report.charts import chosen_projections, speed_range

    page = loaded["page"]
    report, _ = report_and_file
    assert not isinstance(report.prediction, Unavailable), report.prediction
    groups = chosen_projections(report.prediction)
    drawn = [p for ps in groups.values() for p in ps if p.fits is not False and speed_range(p)]
    assert len(drawn) > 10  # three workloads on a dozen GPUs
    assert page.locator("#predictions svg").count() == 1
    dots = page.locator('#predictions svg [id*="-mark-point-"] use')
    assert dots.count() == len(drawn)
    ranges = page.locator('#predictions svg [id*="-mark-range-"] path')
    assert ranges.count() == len(drawn)  # one whisker per dot
    box = page.locator("#predictions svg").bounding_box()
    assert box is not None
    for i in range(dots.count()):
        mark = dots.nth(i).bounding_box()
        assert mark is not None and box["x"] <= mark["x"] <= box["x"] + box["width"]
