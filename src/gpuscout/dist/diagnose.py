"""After a multi-process job failed: which rank was it, and what happened to it?

The evidence is what each rank left in the job directory (progress, result, error
files: see ``dist.rank``) and torchrun's own failure summary (exit codes per rank).
When one rank fails, the others fail too, one step later: they lose their peer inside a
collective ("Connection reset by peer") or time out waiting for it. The rules below
look past those secondary failures to the first cause:

1. a rank that raised an error of its own (not a lost-peer or timeout error): the
   earliest such rank;
2. a hang (the launcher's timeout fired, or a collective timed out): the rank(s) whose
   progress is behind the others, which waited for them one phase further on. On
   NCCL the waiting ranks leave no error file: the watchdog aborts them (SIGABRT)
   after the process-group timeout, and only its line in the log tells a hang from a
   crash;
3. a rank that died without a word (``os._exit``, a signal, the OOM killer): named by
   its exit code from torchrun's summary;
4. only lost-peer errors: the earliest one (the cause is on another node);
5. nothing at all: torchrun's own exit (a rendezvous that never completed ...).
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gpuscout.isolate.process import describe_exit

_SECONDARY_TYPES = ("DistBackendError", "DistNetworkError", "DistStoreError", "DistError")
_SECONDARY_TEXT = (
    "connection reset",
    "connection closed",
    "connection refused",
    "broken pipe",
    "timed out",
    "timeout",
    "communicator was aborted",
    "watchdog",
    "remote worker",
    "socket",
)
_TIMEOUT_TEXT = ("timed out", "timeout", "watchdog")
_WATCHDOG_TEXT = "Watchdog caught collective operation timeout"  # ProcessGroupNCCL's log
_RANK = re.compile(r"rank-(\d+)(?:\.progress|\.error)?\.json$")
_FAILURE = re.compile(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*\d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)")


@dataclass(frozen=True)
class RankState:
    """What one rank left behind. ``step`` -1: it never started."""

    rank: int
    step: int = -1
    phase: str | None = None
    host: str | None = None
    pid: int | None = None
    finished: bool = False
    error_type: str | None = None
    error_message: str | None = None
    error_time: float | None = None
    exitcode: int | None = None  # from torchrun's summary, when it lists the rank

    @property
    def errored(self) -> bool:
        return self.error_type is not None

    @property
    def secondary(self) -> bool:
        """An error that reports a failure elsewhere: a lost peer, a timeout."""
        if self.error_type in _SECONDARY_TYPES:
            return True
        text = (self.error_message or "").lower()
        return any(t in text for t in _SECONDARY_TEXT)

    @property
    def timed_out(self) -> bool:
        text = (self.error_message or "").lower()
        return any(t in text for t in _TIMEOUT_TEXT)


@dataclass(frozen=True)
class Diagnosis:
    culprits: tuple[int, ...]
    message: str  # one line, naming the rank(s)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_states(out_dir: Path, ranks: Sequence[int] = ()) -> dict[int, RankState]:
    """Every rank with a file in ``out_dir``, plus ``ranks`` (expected, maybe silent)."""
    found = {int(m.group(1)) for p in out_dir.glob("rank-*.json") if (m := _RANK.match(p.name))}
    states = {}
    for r in sorted(found | set(ranks)):
        prog = _load(out_dir / f"rank-{r}.progress.json") or {}
        err = _load(out_dir / f"rank-{r}.error.json")
        states[r] = RankState(
            rank=r,
            step=int(prog.get("step", -1)),
            # The error file knows the phase the rank failed in; progress, the last mark.
            phase=(err or {}).get("phase") or prog.get("phase"),
            host=prog.get("host"),
            pid=prog.get("pid"),
            finished=(out_dir / f"rank-{r}.json").is_file(),
            error_type=None if err is None else str(err.get("type")),
            error_message=None if err is None else str(err.get("message", "")),
            error_time=None if err is None else float(err.get("time", 0.0)),
        )
    return states


def parse_torchrun_log(text: str) -> tuple[dict[int, int], int | None]:
    """torchrun's failure summary: exit code per rank, and its "first observed" rank."""
    codes = {int(r): int(c) for r, c in _FAILURE.findall(text)}
    root = None
    _, sep, tail = text.partition("Root Cause (first observed failure):")
    if sep and (m := _FAILURE.search(tail)):
        root = int(m.group(1))
    return codes, root


def collective_timed_out(text: str) -> bool:
    """Did NCCL's watchdog time out a collective (and abort that rank)?"""
    return _WATCHDOG_TEXT in text


def ranks_text(ranks: Sequence[int]) -> str:
    ranks = sorted(ranks)
    return f"rank {ranks[0]}" if len(ranks) == 1 else "ranks " + ", ".join(map(str, ranks))


def _at(s: RankState, word: str = "during") -> str:
    """Where the rank was: "during" the phase its error file names, "after" the last
    phase its progress file names (a silent rank may be anywhere past that mark)."""
    where = f" {word} {s.phase!r}" if s.phase else " before it started"
    return where + (f" on {s.host}" if s.host else "")


def diagnose(
    states: Mapping[int, RankState],
    *,
    timed_out: bool = False,
    timeout_s: float | None = None,
    exitcodes: Mapping[int, int] | None = None,
    root_rank: int | None = None,
    returncode: int | None = None,
    collective_timeout: bool = False,
) -> Diagnosis:
    """The one-line verdict on a failed job (see the module docstring for the rules).
    ``collective_timeout``: NCCL's watchdog aborted a rank (``collective_timed_out``)."""
    codes = dict(exitcodes or {})
    unfinished = [_with_code(s, codes.get(r)) for r, s in states.items() if not s.finished]
    # The rules in order: the first that names a rank gives the verdict.
    return (
        _own_error(unfinished)
        or _hang(unfinished, timed_out, timeout_s, collective_timeout)
        or _silent_death(unfinished, root_rank)
        or _lost_peers(unfinished)
        or _nothing_started(unfinished, timed_out, timeout_s, returncode)
    )


def _earliest_error(states: Sequence[RankState]) -> RankState | None:
    errors = sorted(states, key=lambda s: (s.error_time or 0.0, s.rank))
    return errors[0] if errors else None


def _own_error(unfinished: Sequence[RankState]) -> Diagnosis | None:
    """Rule 1: the earliest rank that raised an error of its own."""
    s = _earliest_error([s for s in unfinished if s.errored and not s.secondary])
    if s is None:
        return None
    return Diagnosis((s.rank,), f"rank {s.rank} failed{_at(s)}: {s.error_type}: {s.error_message}")


def _hang(
    unfinished: Sequence[RankState],
    timed_out: bool,
    timeout_s: float | None,
    collective_timeout: bool,
) -> Diagnosis | None:
    """Rule 2: after a timeout (the launcher's or a collective's), the ranks whose progress
    is behind the others; or all of them, when they stopped together on a timeout."""
    if not unfinished or not _hung(unfinished, timed_out, collective_timeout):
        return None
    low = min(s.step for s in unfinished)
    laggards = [s for s in unfinished if s.step == low]
    stopped = _stopped(timed_out, timeout_s)
    if len(laggards) < len(unfinished):
        return _fell_behind(laggards, max(unfinished, key=lambda s: s.step), stopped)
    if (timed_out or collective_timeout) and low >= 0:
        why = stopped if timed_out else "a collective timed out (NCCL's watchdog)"
        return _stuck_together(unfinished, why)
    return None


def _hung(unfinished: Sequence[RankState], timed_out: bool, collective_timeout: bool) -> bool:
    """A timeout fired: the launcher's, NCCL's watchdog, or one a rank raised."""
    return timed_out or collective_timeout or any(s.errored and s.timed_out for s in unfinished)


def _stopped(timed_out: bool, timeout_s: float | None) -> str:
    """How the waiting ranks ended."""
    if timed_out and timeout_s is not None:
        return f"the job was stopped after the {timeout_s:g} s timeout"
    return "the other ranks timed out waiting for it"


def _fell_behind(laggards: Sequence[RankState], ahead: RankState, stopped: str) -> Diagnosis:
    lag = laggards[0]
    what = "never started" if lag.step < 0 else f"stopped making progress{_at(lag, 'after')}"
    return Diagnosis(
        tuple(s.rank for s in laggards),
        f"{ranks_text([s.rank for s in laggards])} hung: {what} while "
        f"rank {ahead.rank} waited at {ahead.phase!r}; {stopped}",
    )


def _stuck_together(unfinished: Sequence[RankState], why: str) -> Diagnosis:
    phases = sorted({str(s.phase) for s in unfinished})
    return Diagnosis(
        tuple(s.rank for s in unfinished),
        f"{ranks_text([s.rank for s in unfinished])} made no progress past "
        f"{' / '.join(repr(p) for p in phases)}; {why}",
    )


def _silent_death(unfinished: Sequence[RankState], root_rank: int | None) -> Diagnosis | None:
    """Rule 3: ranks that started and died without an error file, by their exit code."""
    silent = [s for s in unfinished if not s.errored and s.step >= 0]
    if not silent:
        return None
    # torchrun stops the survivors with SIGTERM: those are not the cause.
    own = [s for s in silent if s.exitcode is not None and s.exitcode != -signal.SIGTERM]
    pick = own or [s for s in silent if s.rank == root_rank] or silent
    s = pick[0]
    return Diagnosis(
        tuple(x.rank for x in pick),
        f"{ranks_text([x.rank for x in pick])} {describe_exit(s.exitcode)}{_at(s, 'after')}",
    )


def _lost_peers(unfinished: Sequence[RankState]) -> Diagnosis | None:
    """Rule 4: only lost-peer errors: the earliest (the cause is elsewhere)."""
    s = _earliest_error([s for s in unfinished if s.errored])
    if s is None:
        return None
    return Diagnosis(
        (s.rank,),
        f"rank {s.rank} lost its peers{_at(s)}: {s.error_type}: {s.error_message} "
        "(the cause is on another rank; see that node's output)",
    )


def _nothing_started(
    unfinished: Sequence[RankState],
    timed_out: bool,
    timeout_s: float | None,
    returncode: int | None,
) -> Diagnosis:
    """Rule 5: no rank left a word: torchrun's own exit, or a rendezvous that timed out."""
    never = [s.rank for s in unfinished if s.step < 0]
    if timed_out:
        return Diagnosis(
            tuple(never),
            f"no rank started within the {timeout_s:g} s timeout "
            "(a rendezvous that never completed: are all nodes running the same command?)",
        )
    return Diagnosis(
        tuple(never),
        f"the launcher exited with code {returncode} before "
        + (f"{ranks_text(never)} started" if never else "any rank reported"),
    )


def _with_code(s: RankState, code: int | None) -> RankState:
    """The rank with torchrun's exit code for it, unless it has its own already."""
    if s.exitcode is not None or code is None:
        return s
    return replace(s, exitcode=code)
