"""The worker's side of ``run_isolated``: ``python -m gpuscout.isolate._entry RESULT PPID``.

Reads a pickled request (target "module:qualname", keyword arguments) from stdin, calls
the target, and writes ``(status, value-or-traceback)`` to RESULT, atomically (a file
that exists is complete). Any exception, KeyboardInterrupt included, goes back as text.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any


def _call(request: dict[str, Any]) -> tuple[str, Any]:
    from gpuscout.isolate.process import FAILED, OK, OOM, is_oom

    try:
        module, qualname = request["target"].split(":")
        fn: Any = importlib.import_module(module)
        for part in qualname.split("."):
            fn = getattr(fn, part)
        value = fn(**request["kwargs"])
        if not isinstance(value, dict):
            raise TypeError(f"a worker must return a dict, not {type(value).__name__}")
        pickle.dumps(value)  # fail here, with a traceback, rather than when writing
        return OK, value
    except BaseException as exc:
        return (OOM if is_oom(exc) else FAILED), traceback.format_exc()


def main(result_path: str, parent_pid: str | None = None) -> None:
    if parent_pid is not None:
        from gpuscout.isolate.process import die_with_parent

        die_with_parent(int(parent_pid))
    request = pickle.loads(sys.stdin.buffer.read())
    status, payload = _call(request)
    out = Path(result_path)
    tmp = out.with_suffix(".part")
    tmp.write_bytes(pickle.dumps((status, payload)))
    os.replace(tmp, out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
