"""The parent's side of `gpuscout profile`: the user's command run under
``profile/boot.py`` in a child process, its output passed through, and what it observed
read back as typed records.

``python train.py ARGS``, ``python3 -m pkg.train ARGS`` and a bare ``train.py ARGS``
are accepted: the interpreter the user named runs it (the one gpuscout runs under for a
bare script), with gpuscout's own folder on its path so it can load the observer. The
child shares the terminal: Ctrl-C reaches it as it would without gpuscout; gpuscout
waits for it to write what it observed. SIGTERM to gpuscout is passed on the same way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import gpuscout
from gpuscout.errors import Terminated, UsageError
from gpuscout.isolate import sigterm_unwinds
from gpuscout.profile.hooks import FORMAT, Observations, StepTiming, Work

_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?(\.exe)?$")
_WAIT_FOR_CHILD_S = 30.0  # after Ctrl-C or SIGTERM, for the child to write and exit


@dataclass(frozen=True)
class Profiled:
    """One run of the user's program under observation."""

    command: tuple[str, ...]  # as the user gave it
    exit_code: int  # the program's own (130: interrupted; 143: gpuscout was terminated)
    wall_s: float
    observations: Observations


def split_command(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """(the interpreter the user named, or None; the script or ``-m module`` and its
    arguments)."""
    words = list(argv)
    if words and _PYTHON.match(Path(words[0]).name):
        return words[0], words[1:]
    return None, words


def script_name(argv: Sequence[str]) -> str:
    """The script's file name, or the module run with ``-m``, as a run is named."""
    _, words = split_command(argv)
    if words[:1] == ["-m"] and len(words) > 1:
        return words[1]
    return Path(words[0]).name if words else "script"


def child_command(argv: Sequence[str], out: Path, *, warmup: int, steps: int | None) -> list[str]:
    """The child's argv: the user's interpreter (or ours) running boot, then the script."""
    if not argv:
        raise UsageError("nothing to profile", "give a script: gpuscout profile train.py ARGS")
    named, words = split_command(argv)
    python = named or sys.executable
    if not words or (words[0] == "-m" and len(words) < 2):
        raise UsageError("no script after the interpreter", "e.g. -- python train.py ARGS")
    if words[0] != "-m" and not Path(words[0]).is_file():
        raise UsageError(f"no such script: {words[0]}")
    boot = [python, "-m", "gpuscout.profile.boot", str(out), str(warmup), str(steps or 0)]
    return [*boot, "--", *words]


def _environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The user's environment (with ``extra`` set), gpuscout's folder added for
    ``profile.boot``."""
    env = {**os.environ, **(extra or {})}
    ours = str(Path(gpuscout.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ours, env.get("PYTHONPATH", "")) if p)
    return env


def run_profiled(
    argv: Sequence[str],
    *,
    warmup: int = 3,
    steps: int | None = None,
    stdout_to_stderr: bool = False,
    env: Mapping[str, str] | None = None,
) -> Profiled:
    """Run ``argv`` (a script and its arguments, or an interpreter, script and arguments)
    observed; the program's output goes to the terminal (to stderr when
    ``stdout_to_stderr``, so a ``--json`` answer keeps stdout to itself); ``env`` is
    set in the program's environment (CUDA_VISIBLE_DEVICES, for one)."""
    with tempfile.TemporaryDirectory(prefix="gpuscout-profile-") as tmp:
        out = Path(tmp) / "observations.json"
        cmd = child_command(argv, out, warmup=warmup, steps=steps)
        t0 = time.perf_counter()
        code = _wait(cmd, stdout_to_stderr, env)
        wall = time.perf_counter() - t0
        obs = read_observations(out)
    if obs.exit_code is None:  # the child died before writing its end (a kill, a crash)
        obs.exit_code = code
    return Profiled(tuple(argv), code, wall, obs)


def _wait(cmd: list[str], stdout_to_stderr: bool, env: Mapping[str, str] | None) -> int:
    stdout = sys.stderr if stdout_to_stderr else None
    proc = subprocess.Popen(cmd, env=_environment(env), stdout=stdout)
    try:
        with sigterm_unwinds():
            return proc.wait()
    except KeyboardInterrupt:
        # The terminal sent Ctrl-C to the child too: it is writing what it saw.
        return _settle(proc, signal_child=False, code=130)
    except Terminated:
        return _settle(proc, signal_child=True, code=143)


def _settle(proc: subprocess.Popen[bytes], *, signal_child: bool, code: int) -> int:
    if signal_child and proc.poll() is None:
        proc.terminate()  # boot turns SIGTERM into an interrupt: it writes, then exits
    try:
        proc.wait(_WAIT_FOR_CHILD_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return code


def read_observations(path: Path) -> Observations:
    """What the child wrote; an empty record when it wrote nothing (it never imported
    torch, or it was killed first)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return Observations()
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return Observations()
    return observations_from(doc)


def observations_from(doc: dict[str, Any]) -> Observations:
    known = {f.name for f in fields(Observations)}
    values = {k: v for k, v in doc.items() if k in known}
    values["window"] = [StepTiming(**s) for s in doc.get("window") or []]
    work = doc.get("work")
    values["work"] = Work(**work) if isinstance(work, dict) else None
    return Observations(**values)
