"""The browser tests need Debian's chromium and python playwright; without them they skip."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

# The recorded example run (report_sample.py) lives with the unit tests; pytest puts only
# this folder on sys.path for the tests here, so the unit folder is added beside it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = next((c for c in CANDIDATES if Path(c).is_file()), None) or shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found
