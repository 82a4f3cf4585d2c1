"""gpuscout.validate.report_screenshot: the page is the report of the store's newest
runs, an empty store is one line of error, and (where chromium is installed) the
picture is written at the asked size."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from gpuscout.store import Store
from gpuscout.validate import report_screenshot as shot
from helpers.report_sample import H100, fill_store

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    with Store.open(path) as store:
        fill_store(store)
    return path


def test_the_page_is_the_report_of_the_store(db: Path, tmp_path: Path) -> None:
    page = shot.build_page(tmp_path / "r.html", db)
    html = page.read_text()
    assert page == tmp_path / "r.html"
    assert html.lstrip().lower().startswith("<!doctype html") and H100 in html


def test_an_empty_store_is_one_line_of_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "r.png"
    assert shot.main(["--db", str(tmp_path / "empty.db"), "-o", str(png)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no runs in ") and err.count("\n") == 1
    assert not png.exists()


def test_the_picture_has_the_asked_size(db: Path, tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api")
    browser = next((c for c in CHROMIUM if Path(c).is_file()), None) or shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    png, html = tmp_path / "shots" / "r.png", tmp_path / "r.html"
    args = ["--db", str(db), "-o", str(png), "--html", str(html), "--width", "800"]
    assert shot.main([*args, "--height", "600", "--browser", browser]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (800, 600)  # IHDR: width, height
    assert H100 in html.read_text()
