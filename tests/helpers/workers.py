"""Functions the isolation tests run in a worker process (they must be importable)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def sleep_with_a_child(pid_file: str, seconds: float) -> dict[str, Any]:
    """Write this worker's pid and its own child's pid to ``pid_file``, then sleep."""
    child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    Path(pid_file).write_text(f"{os.getpid()} {child.pid}\n")
    time.sleep(seconds)
    return {"slept": seconds}
