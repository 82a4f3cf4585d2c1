"""Where the results database lives when the user does not say (``--db``).

The store sits below the CLI, so it cannot ask Typer or Click for the application
directory; the rules are simple enough to write out, and writing them out keeps them
testable with an injected environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from gpuscout.errors import UsageError

APP_NAME = "gpuscout"
DB_FILENAME = "gpuscout.db"
MEMORY = ":memory:"


def default_data_dir(
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
) -> Path:
    """The per-user data directory for gpuscout.

    ``GPUSCOUT_HOME`` wins everywhere (tests, CI, shared machines). Otherwise the
    platform's convention: ``%LOCALAPPDATA%\\gpuscout`` on Windows,
    ``~/Library/Application Support/gpuscout`` on macOS and ``$XDG_DATA_HOME/gpuscout``
    (default ``~/.local/share/gpuscout``) elsewhere.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home

    override = env.get("GPUSCOUT_HOME", "").strip()
    if override:
        return _folder_or_refuse(Path(override).expanduser())
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA", "").strip()
        return (Path(local) if local else home / "AppData" / "Local") / APP_NAME
    if platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    xdg = env.get("XDG_DATA_HOME", "").strip()
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / APP_NAME


def _folder_or_refuse(home: Path) -> Path:
    """``home`` when it is, or can become, a folder; UsageError where it or a parent is a
    file (reading commands would otherwise find "no runs" there and exit 0)."""
    for place in (home, *home.parents):
        # os.path's tests say False where a parent cannot be read, instead of raising.
        if os.path.exists(place):
            if not os.path.isdir(place):
                raise UsageError(
                    f"GPUSCOUT_HOME is {home}, but {place} is a file",
                    "point GPUSCOUT_HOME at a folder, or unset it",
                )
            break
    return home


def default_db_path() -> Path:
    return default_data_dir() / DB_FILENAME


def resolve_db_path(path: Path | str | None) -> Path | str:
    """``None`` -> the default file; ``":memory:"`` stays a string; else an expanded Path."""
    if path is None:
        return default_db_path()
    if str(path) == MEMORY:
        return MEMORY
    return Path(path).expanduser()
