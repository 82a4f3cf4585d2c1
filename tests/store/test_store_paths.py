"""Where the results database lives: GPUSCOUT_HOME, and a GPUSCOUT_HOME that cannot be one."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuscout.errors import UsageError
from gpuscout.store.paths import default_data_dir


def test_gpuscout_home_wins(tmp_path: Path) -> None:
    home = tmp_path / "not-yet"  # a folder that is not there yet is made when first written
    assert default_data_dir({"GPUSCOUT_HOME": str(home)}, "linux") == home


@pytest.mark.parametrize("below", ["", "sub", "sub/deeper"])
def test_gpuscout_home_at_or_under_a_file_is_one_line(tmp_path: Path, below: str) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_text("not a folder")
    home = plain / below if below else plain
    with pytest.raises(UsageError) as caught:
        default_data_dir({"GPUSCOUT_HOME": str(home)}, "linux")
    assert caught.value.message == f"GPUSCOUT_HOME is {home}, but {plain} is a file"
    assert caught.value.hint == "point GPUSCOUT_HOME at a folder, or unset it"
