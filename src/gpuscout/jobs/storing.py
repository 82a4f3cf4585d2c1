"""Where a job keeps its run: an open ``Store`` the caller holds, or a database path.

A path is opened only when there is something to store (a typo in an option costs no
database file) and closed again; an open ``Store`` is used as it is and left open, so a
caller can read what a job wrote (an in-memory store included). Reading jobs never
create a database that is not there.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from gpuscout import __version__
from gpuscout._types import Finding, Result
from gpuscout.probe import probe_system
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
            yield None
            return
    with opened(where) as store:
        yield store


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
