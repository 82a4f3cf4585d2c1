"""The browser tests need Debian's chromium and python playwright; without them they skip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = next((c for c in CANDIDATES if Path(c).is_file()), None) or shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found
