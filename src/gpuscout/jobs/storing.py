"""Where a job keeps its run: an open ``Store`` the caller holds, or a database path.

A path is opened only when there is something to store (a typo in an option costs no
database file) and closed again; an open ``Store`` is used as it is and left open, so a
caller can read what a job wrote (an in-memory store included). Reading jobs never
create a database that is not there.

A measuring job writes its run as it goes (``keeping``): the run is opened before the
work starts, each result stored as it finishes, so Ctrl-C or SIGTERM loses only the
result in progress.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from gpuscout import __version__
from gpuscout._types import Finding, Result
from gpuscout.errors import Stopped, Terminated, UsageError
from gpuscout.isolate import sigterm_unwinds
from gpuscout.probe import probe_system
from gpuscout.report.fmt import plural
from gpuscout.store import Store, fingerprint, resolve_db_path

# An open store, a database file, ":memory:", or None for the user's default database.
StoreLike: TypeAlias = Store | Path | str | None

# Statuses that make a stored run "failed": the work did not give its answer.
FAILED = ("failed", "oom", "timeout")


def db_location(where: StoreLike) -> Path | str | None:
    """The database path behind ``where`` (what lower layers that open it themselves take)."""
    return where.path if isinstance(where, Store) else where


def db_label(where: StoreLike) -> Path | str:
    """The database's file (or ":memory:"), for messages."""
    return where.path if isinstance(where, Store) else resolve_db_path(where)


@contextmanager
def opened(where: StoreLike) -> Iterator[Store]:
    """The caller's store, left open; or the database at a path, created if need be and
    closed after."""
    if isinstance(where, Store):
        yield where
        return
    store = Store.open(where)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def existing(where: StoreLike, *, file_only: bool = True) -> Iterator[Store | None]:
    """Like ``opened``, but None where the database file is not there: reading never
    creates one. ``file_only`` False takes any existing path (a folder then fails as a
    store, as `history` and `show` always did)."""
    target = db_label(where)
    if not isinstance(where, Store) and isinstance(target, Path):
        there = target.is_file() if file_only else target.exists()
        if not there:
            _no_file_above(target)
            yield None
            return
    with opened(where) as store:
        yield store


def _no_file_above(target: Path) -> None:
    """UsageError where a folder of ``target`` is a file: no database can be there, and
    reading commands would otherwise say "no runs yet" and exit 0."""
    for place in target.parents:
        if os.path.exists(place):  # os.path: False, not an error, where it cannot look
            if not os.path.isdir(place):
                raise UsageError(f"no database can be at {target}: {place} is a file")
            return


def save(
    where: StoreLike,
    kind: str,
    env: Mapping[str, Any],
    results: Sequence[Result] = (),
    findings: Sequence[Finding] = (),
    summary: Mapping[str, Any] | None = None,
    failed: bool = False,
) -> int:
    """One run of ``kind`` with its fingerprint ``env``; its id. ``failed`` marks a run
    that completed without giving every answer (the results are stored either way)."""
    with opened(where) as store, store.run(kind, env) as handle:
        if findings:
            handle.add_findings(findings)
        if results:
            handle.add_results(results)
        handle.summary.update(summary or {})
        if failed:
            handle.status = "failed"
        return handle.id


def run_fingerprint() -> dict[str, Any]:
    """This machine's environment fingerprint for a stored run; a minimal one (host and
    version) when the probe fails, because storing the result matters more."""
    try:
        return fingerprint(probe_system())
    except Exception:
        return {"host": platform.node(), "gpuscout_version": __version__}


class Keeper:
    """One job's run, written as it goes: ``begin`` opens it (and the store, when
    ``where`` is a path) once the job's options are checked, ``keep`` stores each result
    as it finishes, ``finish`` gives the run its final results, summary and status.
    Made by ``keeping``, which ends it as "interrupted" on Ctrl-C or SIGTERM. With
    ``enabled`` False (``--no-store``) nothing is written and every method is a no-op."""

    def __init__(self, where: StoreLike, kind: str, enabled: bool, stack: ExitStack) -> None:
        self._where = where
        self.kind = kind
        self.enabled = enabled
        self._stack = stack
        self._store: Store | None = None
        self.run_id: int | None = None
        self._kept: list[Result] = []
        self._finished = False

    @property
    def store(self) -> Store:
        """The open store the run is written to (after ``begin``)."""
        if self._store is None:
            raise RuntimeError("the run has not begun (or is not stored)")
        return self._store

    def begin(self, env: Mapping[str, Any]) -> None:
        """Open the run, "running", with this machine's fingerprint ``env``."""
        if not self.enabled or self.run_id is not None:
            return
        self._store = self._stack.enter_context(opened(self._where))
        self.run_id = self._store.begin_run(self.kind, env)

    def keep(self, result: Result) -> None:
        """Store ``result`` now, in a transaction of its own."""
        if self._store is not None and self.run_id is not None:
            self._store.add_result(self.run_id, result)
            self._kept.append(result)

    def keep_findings(self, findings: Sequence[Finding]) -> None:
        if self._store is not None and self.run_id is not None and findings:
            self._store.add_findings(self.run_id, findings)

    def finish(
        self,
        results: Sequence[Result],
        summary: Mapping[str, Any] | None = None,
        failed: bool = False,
    ) -> int | None:
        """End the run "ok" (or "failed") with ``results``, the work's final list: those
        not kept yet are added, and where a kept one changed since (a workload's ceiling
        is attached at the end) the final ones replace them. The run's id (None when not
        stored)."""
        if self._store is None or self.run_id is None:
            return None
        final = list(results)
        n = len(self._kept)
        if final[:n] == self._kept:
            self._store.add_results(self.run_id, final[n:])
        else:
            self._store.replace_results(self.run_id, final)
        self._kept = final
        self._store.finish_run(self.run_id, "failed" if failed else "ok", summary or {})
        self._finished = True
        return self.run_id

    def interrupted(self, how: str) -> str:
        """End an unfinished run "interrupted" with what it kept; the line that says so."""
        if self._store is None or self.run_id is None or self._finished:
            return "interrupted: nothing stored"
        kept = plural(len(self._store.results(self.run_id)), "result")  # all that committed
        self._store.finish_run(
            self.run_id, "interrupted", {"headline": f"interrupted ({how}): kept {kept}"}
        )
        return f"interrupted: kept {kept} as run {self.run_id}"

    def failed(self, exc: BaseException) -> None:
        """End an unfinished run "failed" with the error; a run that kept no result is
        removed, as when runs were stored only at the end (the error says what
        happened; the doctor's findings alone are no measurement)."""
        if self._store is None or self.run_id is None or self._finished:
            return
        if not self._kept:
            self._store.delete_runs([self.run_id])
        else:
            error = {"error": f"{type(exc).__name__}: {exc}"}
            self._store.finish_run(self.run_id, "failed", error)


@contextmanager
def keeping(where: StoreLike, kind: str, *, enabled: bool = True) -> Iterator[Keeper]:
    """A ``Keeper`` for one run of ``kind``; inside, SIGTERM unwinds as Ctrl-C does.
    Either one stops the worker at work (``run_isolated`` does), marks the run
    "interrupted" with every result that finished, and ends the job with ``Stopped``
    ("interrupted: kept 3 results as run 7", exit code 130 for Ctrl-C, 143 for SIGTERM).
    Any other error ends the run "failed" and propagates."""
    with sigterm_unwinds(), ExitStack() as stack:
        keeper = Keeper(where, kind, enabled, stack)
        try:
            yield keeper
        except KeyboardInterrupt:
            raise Stopped(keeper.interrupted("Ctrl-C"), 130) from None
        except Terminated as exc:
            raise Stopped(keeper.interrupted("SIGTERM"), exc.exit_code) from None
        except Exception as exc:
            keeper.failed(exc)
            raise
