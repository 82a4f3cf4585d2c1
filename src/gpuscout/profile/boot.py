"""The user's program under observation:

    python -m gpuscout.profile.boot OUT WARMUP STEPS -- script.py ARGS
    python -m gpuscout.profile.boot OUT WARMUP STEPS -- -m package.module ARGS

Runs the script as ``python script.py ARGS`` would (``__main__``, ``sys.argv``, its own
output, exit status and traceback), with ``profile/hooks.py`` watching once the script
imports torch. STEPS 0 watches the whole run; otherwise the program is stopped cleanly
after that many observed steps. Whatever ends it (a normal end, an exception, Ctrl-C,
SIGTERM, the step limit), the observations are written to OUT as JSON before it exits.
Only the standard library is imported here before the user's code runs.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import runpy
import signal
import sys
import traceback
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from gpuscout.profile.hooks import Observer, StopProfiling

# Frames that are gpuscout's or runpy's, not the user's ("<frozen runpy>" when the
# interpreter froze it, as 3.11 does).
_OURS = (str(Path(__file__).parent), str(Path(runpy.__file__)), "<frozen runpy>")


class _WhenTorchLoads(importlib.abc.MetaPathFinder):
    """Installs the observer as soon as the script imports torch, not before: a script
    that never imports torch runs as it would, and nothing of torch loads early."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        loader, observer = spec.loader, self.observer

        class Loader(importlib.abc.Loader):
            def create_module(self, spec: Any) -> ModuleType | None:
                return loader.create_module(spec)

            def exec_module(self, module: ModuleType) -> None:
                loader.exec_module(module)
                observer.install(module)

        spec.loader = Loader()
        return spec


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the user's first frame on: ours and runpy's are left out."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_OURS):
        tb = tb.tb_next
    return tb


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # what Python prints for sys.exit("message")
    return 1


def _sigterm_as_interrupt() -> None:
    """SIGTERM (gpuscout stopping the program) unwinds like Ctrl-C, so the observations
    are written; only where the program has not chosen its own handler."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:

        def handler(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, handler)


def _run(target: list[str]) -> None:
    """As ``python SCRIPT ARGS`` or ``python -m MODULE ARGS`` would: its sys.argv, and its
    folder (a script's) or the working directory (a module's) first on sys.path."""
    if target[0] == "-m":
        sys.argv = [target[1], *target[2:]]
        sys.path.insert(0, str(Path.cwd()))
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(target)
        sys.path.insert(0, str(Path(target[0]).resolve().parent))
        runpy.run_path(target[0], run_name="__main__")


def main(argv: list[str]) -> int:
    out, warmup, steps, sep, *target = argv
    if sep != "--" or not target:
        raise SystemExit("usage: python -m gpuscout.profile.boot OUT WARMUP STEPS -- SCRIPT ...")
    observer = Observer(Path(out), warmup=int(warmup), steps=int(steps) or None)
    sys.meta_path.insert(0, _WhenTorchLoads(observer))
    _sigterm_as_interrupt()
    obs = observer.obs
    try:
        _run(target)
        obs.exit_code = 0
    except SystemExit as exc:
        obs.exit_code = _exit_code(exc)
    except StopProfiling:
        obs.exit_code = 0
    except KeyboardInterrupt as exc:
        traceback.print_exception(type(exc), exc, _user_frames(exc.__traceback__))
        obs.interrupted, obs.exit_code = True, 130  # 128 + SIGINT, as a shell reports it
    except BaseException as exc:  # the user's own error: shown as Python would show it
        traceback.print_exception(type(exc), exc, _user_frames(exc.__traceback__))
        obs.exit_code, obs.error = 1, f"{type(exc).__name__}: {exc}"
    finally:
        observer.close()
    return int(obs.exit_code or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
