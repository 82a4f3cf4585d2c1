"""The README's "Using gpuscout from Python" runs as written and prints what it shows."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers import REPO

SECTION = "## Using gpuscout from Python"


def blocks(lang: str) -> list[str]:
    """The section's fenced blocks of one language, in order."""
    text = (REPO / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def test_the_section_sits_right_after_the_commands() -> None:
    headings = re.findall(r"^## (.+)$", (REPO / "README.md").read_text(), flags=re.M)
    at = headings.index(SECTION.removeprefix("## "))
    assert headings[at - 1] == "What the commands do"


def test_the_python_example_prints_what_the_readme_shows() -> None:
    (code,) = blocks("python")
    (shown,) = blocks("text")
    assert 3 <= len([line for line in code.splitlines() if line.strip()]) <= 7
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown
