"""Regenerate docs/report.png: the report of measured runs, in headless chromium.

    python scripts/report_screenshot.py                     # docs/report.png, top 3 screens
    python scripts/report_screenshot.py --dark --height 0   # the whole page, dark scheme
    python scripts/report_screenshot.py --html /tmp/r.html  # keep the HTML too
    python scripts/report_screenshot.py --db runs/h100.db   # another store than the default

The page is built exactly as `gpuscout report` builds it, from the newest runs in the
store (--db, or gpuscout's default one), so every figure in the picture was measured:
docs/report.png comes from a real `gpuscout run` (see docs/benchmarks.md). Needs chromium
(apt-get install chromium) and playwright (pip install -e ".[dev]").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]  # the checkout: docs/report.png is there


def build_page(html_path: Path, db: Path | None) -> Path:
    """The report of the newest runs in ``db`` (None: gpuscout's default store)."""
    from gpuscout.report import build_report, write_report
    from gpuscout.store import Store

    with Store.open(db) as store:
        return write_report(build_report(store), html_path)


def screenshot(
    page_path: Path, out: Path, *, width: int, height: int, dark: bool, browser: str
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser, headless=True)
        try:
            page = chromium.new_page(
                viewport={"width": width, "height": 900},
                color_scheme="dark" if dark else "light",
                device_scale_factor=1,
            )
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            full = page.evaluate("document.documentElement.scrollHeight")
            clip: Any = {
                "x": 0,
                "y": 0,
                "width": width,
                "height": min(full, height) if height else full,
            }
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True, clip=clip)
        finally:
            chromium.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "report.png")
    ap.add_argument("--html", type=Path, help="also keep the HTML page here")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=2700, help="pixels from the top; 0: all")
    ap.add_argument("--dark", action="store_true", help="prefers-color-scheme: dark")
    ap.add_argument("--browser", default="/usr/bin/chromium")
    ap.add_argument("--db", type=Path, help="the store to report (default: gpuscout's own)")
    args = ap.parse_args(argv)
    from gpuscout.errors import GpuscoutError

    with tempfile.TemporaryDirectory() as tmp:
        try:
            html = build_page(args.html or Path(tmp) / "report.html", args.db)
        except GpuscoutError as exc:  # e.g. an empty store: one line, not a traceback
            print(f"error: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
            return 2
        screenshot(
            html,
            args.out,
            width=args.width,
            height=args.height,
            dark=args.dark,
            browser=args.browser,
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
