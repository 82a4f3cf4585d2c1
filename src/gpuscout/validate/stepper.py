"""Running gpu_check's steps: caps, the deadline, signals, and packing whatever happened.

Each step runs as ``argv`` in its own process group (``setpgrp``: the group is killed
whole, and it stays in the caller's session so a device tool that ends the call ends it
too), from the checkout, with its standard output and error in files under
``OUT/work``. Time is kept here, in Python: a step waits at most its cap or what is left
of the deadline less ``PACK_S``, whichever is less. ``steps.json`` is rewritten (whole,
by rename) each time a step starts or ends, so a call killed outright still leaves it.
On SIGTERM or SIGINT the running step's group is killed, it is recorded cut off, the
steps after it skipped, and the summary and archive are written as at a normal end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from gpuscout.validate.gpu_check import PACK_S, ROOT, Step
from gpuscout.validate.summary_io import last_line

ARCHIVE = "gpu_check.tar.gz"
STEPS_JSON = "steps.json"
SUMMARY_MD = "summary.md"
MIN_STEP_S = 1.0  # a step is started only with at least this much of the deadline left
GRACE_S = 3.0  # SIGTERM to a step's group, then SIGKILL after this
SKIPPED_HOME = ("datasets",)  # GPUSCOUT_HOME's folders left out of the archive
SRC = Path(__file__).resolve().parents[2]  # the folder that holds the gpuscout package
STATUSES = ("pending", "running", "ok", "failed", "cut off", "skipped")


class Stopped(Exception):
    """SIGTERM or SIGINT arrived: the check winds up (the signal's name is the arg)."""


@dataclass(frozen=True)
class Settings:
    out: Path
    device: str = "cuda:0"
    tiny: bool = False
    extended: bool = False
    deadline_s: int = 540
    keep_work: bool = False
    invocation: str = ""
    home: Path | None = field(
        default_factory=lambda: (
            Path(os.environ["GPUSCOUT_HOME"]) if os.environ.get("GPUSCOUT_HOME") else None
        )
    )


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def step_env(step: Step) -> dict[str, str]:
    """This process's environment, with gpuscout importable (a source checkout too),
    unbuffered output, no downloads unless GPUSCOUT_OFFLINE says otherwise, and the
    step's own variables."""
    env = dict(os.environ)
    paths = [str(SRC), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("GPUSCOUT_OFFLINE", "1")  # a GPU machine may reach nothing: no waiting
    env.update(dict(step.env))
    return env


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the step's whole group, SIGKILL to what is left after GRACE_S."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(GRACE_S)


class Check:
    """One call of the check: ``run()`` runs the steps, then always packs."""

    def __init__(
        self,
        settings: Settings,
        steps: Sequence[Step],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.s = settings
        self.steps = list(steps)
        self.clock = clock
        self.t0 = clock()
        self.started_at = now_iso()
        self.out = settings.out.resolve()
        self.work = self.out / "work"
        self.proc: subprocess.Popen[bytes] | None = None
        self.running: dict[str, Any] | None = None
        self.stopped_by: str | None = None
        self.signalled: str | None = None  # a signal seen, even where its raise was lost
        self.records = [self._record(s) for s in self.steps]

    # -- records ---------------------------------------------------------------------

    def _record(self, step: Step) -> dict[str, Any]:
        return {
            "name": step.name,
            "establishes": step.establishes,
            "cap_s": step.cap_s,
            "gpu_only": step.gpu_only,
            "command": step.display(self.s.device, self.s.tiny),
            "status": "pending",
            "reason": "",
            "exit_code": None,
            "wall_s": None,
            "started_s": None,
            "stdout": step.stdout,
            "result": step.result_file,
            "files": [],
        }

    def doc(self) -> dict[str, Any]:
        return {
            "format": 1,
            "started_at": self.started_at,
            "invocation": self.s.invocation,
            "device": self.s.device,
            "tiny": self.s.tiny,
            "extended": self.s.extended,
            "deadline_s": self.s.deadline_s,
            "pack_s": PACK_S,
            "elapsed_s": round(self.clock() - self.t0, 1),
            "stopped_by": self.stopped_by,
            "steps": self.records,
        }

    def save(self) -> None:
        """steps.json, whole, in the work folder and at the top of OUT (by rename)."""
        text = json.dumps(self.doc(), indent=2) + "\n"
        for folder in (self.work, self.out):
            tmp = folder / f".{STEPS_JSON}.tmp"
            tmp.write_text(text)
            os.replace(tmp, folder / STEPS_JSON)

    def left_s(self) -> float:
        return self.s.deadline_s - PACK_S - (self.clock() - self.t0)

    # -- running ---------------------------------------------------------------------

    def run(self) -> int:
        """Every step, then the summary and the archive whatever happened. Exit code: 0
        when every step was ok, 1 when one was not, 128 + N when stopped by signal N."""
        shutil.rmtree(self.work, ignore_errors=True)  # an earlier call's files are not ours
        self.work.mkdir(parents=True)
        self.save()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for step, rec in zip(self.steps, self.records, strict=True):
                self.run_step(step, rec)
        except Stopped as exc:
            self.stop(str(exc))
        finally:
            for sig in previous:  # a second signal must not stop the packing
                signal.signal(sig, signal.SIG_IGN)
            try:
                self.finish()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        if self.stopped_by:
            return 128 + int(signal.Signals[self.stopped_by])
        return 0 if all(r["status"] == "ok" for r in self.records) else 1

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # The flag first: a raise that lands in an at-fork hook (logging's, while a step
        # is spawned) is printed and dropped, and the loop must still stop.
        self.signalled = signal.Signals(signum).name
        raise Stopped(self.signalled)

    def _check_signalled(self) -> None:
        if self.signalled:
            raise Stopped(self.signalled)

    def run_step(self, step: Step, rec: dict[str, Any]) -> None:
        self._check_signalled()
        left = self.left_s()
        if left < MIN_STEP_S:
            rec |= {"status": "skipped", "reason": "no time left"}
            self.report(rec)
            return
        limit = min(float(step.cap_s), left)
        why_cut = f"its {step.cap_s} s cap"
        if limit < step.cap_s:
            why_cut = f"the {self.s.deadline_s} s deadline ({limit:.0f} s were left)"
        start = self.clock()
        rec |= {"status": "running", "started_s": round(start - self.t0, 1)}
        self.running = rec
        self.save()
        argv = step.argv_for(self.s.device, self.s.tiny, str(self.work), sys.executable)
        out, err = self.work / step.stdout, self.work / step.stderr
        with out.open("wb") as out_file, err.open("wb") as err_file:
            rc = self.spawn_and_wait(argv, step, out_file, err_file, limit)
        self._check_signalled()  # the step ran to its end after a lost raise: cut off
        self.proc, self.running = None, None
        rec["wall_s"] = round(self.clock() - start, 1)
        rec |= self.outcome(step, rc, why_cut)
        self.report(rec)

    def spawn_and_wait(
        self, argv: list[str], step: Step, out: IO[bytes], err: IO[bytes], limit: float
    ) -> int | None:
        """The step's exit code, or None when it ran past ``limit`` (then its group is
        killed; it is killed after a normal exit too: what a step leaves behind must not
        run into the next). A command that cannot start exits 127, as in a shell."""
        try:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                env=step_env(step),
                preexec_fn=os.setpgrp,
            )
        except OSError as exc:
            err.write(f"cannot start {argv[0]}: {exc}\n".encode())
            return 127
        self._check_signalled()  # a signal during the fork: stop() kills the group
        try:
            rc: int | None = self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            rc = None
        kill_group(self.proc)
        return rc

    def outcome(self, step: Step, rc: int | None, why_cut: str) -> dict[str, Any]:
        files = [f for f in step.outputs if (self.work / f).is_file()]
        if rc is None:
            return {"status": "cut off", "reason": why_cut, "exit_code": None, "files": files}
        said = last_line(self.work / step.stderr)[:200]
        if not said and step.stdout.endswith(".txt"):
            said = last_line(self.work / step.stdout)[:200]
        status, reason = "ok", ""
        if step.gpu_only and not self.s.device.startswith("cuda"):
            status = "skipped" if rc in step.ok_codes else "failed"
            reason = f"GPU-only step run on {self.s.device}: exit {rc}"
        elif rc not in step.ok_codes:
            status, reason = "failed", f"exit {rc}"
        if status != "ok" and said:
            reason += f": {said}"
        return {"status": status, "reason": reason, "exit_code": rc, "files": files}

    def stop(self, signame: str) -> None:
        """A signal arrived: kill the running step, skip the rest."""
        self.stopped_by = signame
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None
        for rec in self.records:
            if rec["status"] == "running":
                started = self.t0 + (rec["started_s"] or 0.0)
                rec |= {"status": "cut off", "reason": f"the check was stopped by {signame}"}
                rec["wall_s"] = round(self.clock() - started, 1)
                outputs = (rec["stdout"], f"{rec['name']}.stderr")
                rec["files"] = [f for f in outputs if (self.work / f).is_file()]
                self.report(rec)
            elif rec["status"] == "pending":
                rec |= {"status": "skipped", "reason": f"the check was stopped by {signame}"}
        self.running = None

    def report(self, rec: dict[str, Any]) -> None:
        self.save()
        wall = f"{rec['wall_s']:.1f} s of {rec['cap_s']} s" if rec["wall_s"] is not None else ""
        why = f" ({rec['reason']})" if rec["reason"] else ""
        print(f"gpu_check: {rec['name']}: {rec['status']}{why} {wall}".rstrip(), flush=True)

    # -- packing ---------------------------------------------------------------------

    def finish(self) -> None:
        """steps.json, summary.md and the archive; then the work folder goes."""
        self.save()
        write_summary(self.work, self.out)
        packed = write_archive(self.work, self.s.home, self.out / ARCHIVE)
        if packed and not self.s.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        where = self.out / ARCHIVE if packed else self.work
        print(f"gpu_check: done in {self.clock() - self.t0:.0f} s; results in {where}", flush=True)


def write_summary(work: Path, out: Path) -> None:
    """summary.md in the work folder (so the archive holds it) and at the top of OUT; a
    summary that breaks writes what broke instead, and the packing goes on."""
    try:
        from gpuscout.validate.summary import summarize

        text = summarize([work])
    except Exception as exc:  # the archive matters more than the summary
        text = f"## NVIDIA GPU run\n\nThe summary could not be made: {type(exc).__name__}: {exc}\n"
    for folder in (work, out):
        (folder / SUMMARY_MD).write_text(text)


def _home_filter(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = Path(info.name).parts
    return None if len(parts) > 1 and parts[1] in SKIPPED_HOME else info


def write_archive(work: Path, home: Path | None, dest: Path) -> bool:
    """Every file of the work folder at the archive's top, GPUSCOUT_HOME as home/."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for path in sorted(p for p in work.iterdir() if not p.name.startswith(".")):
                tar.add(path, arcname=path.name)
            if home is not None and home.is_dir():
                tar.add(home, arcname="home", filter=_home_filter)
        os.replace(tmp, dest)
        return True
    except OSError as exc:
        print(f"gpu_check: the archive could not be written: {exc}", file=sys.stderr)
        return False
