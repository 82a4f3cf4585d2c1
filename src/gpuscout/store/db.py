"""The results store: runs, their results and their findings, in one SQLite file.

Every write is one transaction, so a run interrupted half-way (Ctrl-C, a crash, a
killed process) keeps every result that was written before it and the file stays
consistent. ``Store(":memory:")`` is the seam for tests.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from gpuscout import __version__
from gpuscout._types import Finding, Result, RunRecord
from gpuscout.errors import StoreError, Terminated, UsageError
from gpuscout.store import codec, guard
from gpuscout.store._connect import connect, store_error
from gpuscout.store.exchange import ParsedRun, build_document, parse_document
from gpuscout.store.paths import resolve_db_path
from gpuscout.store.schema import FINISHED_STATUSES


class Store:
    """A gpuscout results database. ``path=None`` is the per-user default file."""

    def __init__(self, path: Path | str | None = None, *, timeout_s: float = 10.0) -> None:
        self.path = resolve_db_path(path)
        self._conn: sqlite3.Connection | None = connect(self.path, timeout_s)
        self._conn.row_factory = sqlite3.Row

    @classmethod
    def open(cls, path: Path | str | None = None) -> Store:
        return cls(path)

    # -- plumbing --------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self.path} is closed")
        return self._conn

    @property
    def label(self) -> str:
        return str(self.path)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN ... COMMIT, rolled back on any exception, KeyboardInterrupt included."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            # A Ctrl-C that lands just after COMMIT returned finds no transaction open.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise UsageError(f"{self.label}: {exc}") from exc
            if isinstance(exc, sqlite3.Error):
                raise store_error(self.label, exc) from exc
            raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return list(self.conn.execute(sql, params))
        except sqlite3.Error as exc:
            raise store_error(self.label, exc) from exc

    def _require_run(self, run_id: int) -> int:
        """``run_id`` checked (in range, present); UsageError naming it otherwise."""
        number = guard.run_id(run_id)
        if not self._read("SELECT 1 FROM runs WHERE id = ?", (number,)):
            raise UsageError(f"no run {number} in {self.label}; see gpuscout history")
        return number

    # -- writing ---------------------------------------------------------------

    def begin_run(self, kind: str, fingerprint: Mapping[str, Any]) -> int:
        """Record a new run as "running" and return its id."""
        if not kind or not isinstance(kind, str):
            raise UsageError("a run needs a kind, e.g. 'doctor' or 'bench-micro'")
        values = codec.run_values(
            kind, codec.utc_now(), None, "running", fingerprint, {}, __version__
        )
        with self.transaction() as conn:
            cursor = conn.execute(codec.INSERT_RUN, values)
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def add_result(self, run_id: int, result: Result) -> None:
        self.add_results(run_id, (result,))

    def add_results(self, run_id: int, results: Iterable[Result]) -> None:
        """Write all of ``results`` or none of them."""
        run_id = self._require_run(run_id)
        now = codec.utc_now()
        rows = [codec.result_values(run_id, r, now) for r in results]
        with self.transaction() as conn:
            conn.executemany(codec.INSERT_RESULT, rows)

    def replace_results(self, run_id: int, results: Iterable[Result]) -> None:
        """The run's results, all of them, replaced by ``results`` in one transaction:
        the final figures of a run written as it went (a figure completed after it was
        first written). Each keeps the time its row was first written, in order."""
        run_id = self._require_run(run_id)
        now = codec.utc_now()
        times = [
            str(r["created_at"])
            for r in self._read(
                "SELECT created_at FROM results WHERE run_id = ? ORDER BY id", (run_id,)
            )
        ]
        rows = [
            codec.result_values(run_id, r, times[i] if i < len(times) else now)
            for i, r in enumerate(results)
        ]
        with self.transaction() as conn:
            conn.execute("DELETE FROM results WHERE run_id = ?", (run_id,))
            conn.executemany(codec.INSERT_RESULT, rows)

    def add_findings(self, run_id: int, findings: Iterable[Finding]) -> None:
        run_id = self._require_run(run_id)
        rows = [codec.finding_values(run_id, f) for f in findings]
        with self.transaction() as conn:
            conn.executemany(codec.INSERT_FINDING, rows)

    def finish_run(
        self, run_id: int, status: str, summary: Mapping[str, Any] | None = None
    ) -> None:
        """Mark a run ok / failed / interrupted; ``summary`` None keeps the stored one."""
        if status not in FINISHED_STATUSES:
            raise UsageError(
                f"a run finishes as one of {', '.join(FINISHED_STATUSES)}, not {status!r}"
            )
        run_id = self._require_run(run_id)
        with self.transaction() as conn:
            if summary is not None:
                conn.execute(
                    "UPDATE runs SET summary = ? WHERE id = ?",
                    (codec.dumps(guard.clean_json(dict(summary))), run_id),
                )
            conn.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                (status, codec.utc_now(), run_id),
            )
            record = codec.row_to_run(
                conn.execute(
                    f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
                ).fetchone()
            )
            conn.execute(
                "UPDATE runs SET identity = ? WHERE id = ?",
                (codec.identity_of_stored(conn, record), run_id),
            )

    def run(self, kind: str, fingerprint: Mapping[str, Any]) -> RunHandle:
        """``with store.run("bench-micro", fp) as run: run.add_result(...)``."""
        return RunHandle(self, kind, fingerprint)

    # -- reading ---------------------------------------------------------------

    def list_runs(self, limit: int = 50, kind: str | None = None) -> list[RunRecord]:
        """The newest ``limit`` runs, newest first, optionally of one kind."""
        if limit < 1:
            raise UsageError(f"--limit must be at least 1, not {limit}")
        sql = f"SELECT {codec.RUN_COLUMNS} FROM runs"
        params: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            params = (kind,)
        rows = self._read(sql + " ORDER BY id DESC LIMIT ?", (*params, int(limit)))
        return [codec.row_to_run(r) for r in rows]

    def get_run(self, run_id: int) -> RunRecord:
        rows = self._read(
            f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE id = ?", (guard.run_id(run_id),)
        )
        if not rows:
            raise UsageError(f"no run {run_id} in {self.label}; see gpuscout history")
        return codec.row_to_run(rows[0])

    def results(self, run_id: int) -> list[Result]:
        return [r for r, _ in self.results_with_times(run_id)]

    def results_with_times(self, run_id: int) -> list[tuple[Result, str]]:
        """Each result with the ISO time it was written (for export)."""
        run_id = self._require_run(run_id)
        rows = self._read(
            f"SELECT {codec.RESULT_COLUMNS}, created_at FROM results WHERE run_id = ? ORDER BY id",
            (run_id,),
        )
        return [(codec.row_to_result(r), r["created_at"]) for r in rows]

    def findings(self, run_id: int) -> list[Finding]:
        run_id = self._require_run(run_id)
        rows = self._read(
            f"SELECT {codec.FINDING_COLUMNS} FROM findings WHERE run_id = ? ORDER BY id",
            (run_id,),
        )
        return [codec.row_to_finding(r) for r in rows]

    def integrity_ok(self) -> bool:
        """SQLite's own integrity check plus the foreign keys: True when both are clean."""
        try:
            check = [r[0] for r in self.conn.execute("PRAGMA integrity_check")]
            dangling = list(self.conn.execute("PRAGMA foreign_key_check"))
        except sqlite3.DatabaseError:
            return False
        return check == ["ok"] and not dangling

    # -- exchange --------------------------------------------------------------

    def export_runs(self, run_ids: Iterable[int] | None = None) -> dict[str, Any]:
        """A JSON-ready document of the given runs (all runs when ``run_ids`` is None)."""
        if run_ids is None:
            ids = [int(r["id"]) for r in self._read("SELECT id FROM runs ORDER BY id")]
        else:
            ids = [int(i) for i in run_ids]
        runs = [(self.get_run(i), self.results_with_times(i), self.findings(i)) for i in ids]
        return build_document(runs, __version__)

    def import_runs(self, doc: Any) -> list[int]:
        """Validate an exported document, then add its runs (all or none); the new ids."""
        return list(self.import_document(doc).new_ids)

    def import_document(self, doc: Any) -> Imported:
        """Validate an exported document, then add the runs this store does not hold yet
        (all or none). A run already here (by its identity: machine, start time, what it
        measured) is not added again, nor a run the document holds twice."""
        parsed = parse_document(doc)
        new_ids: list[int] = []
        already: list[tuple[int, int]] = []
        with self.transaction() as conn:
            for index, run in enumerate(parsed):
                ident = codec.identity(
                    run.record.kind,
                    run.record.started_at,
                    run.record.fingerprint,
                    [r for r, _ in run.results],
                    run.findings,
                )
                held = conn.execute("SELECT id FROM runs WHERE identity = ?", (ident,)).fetchone()
                if held is not None:
                    already.append((index, int(held[0])))
                    continue
                new_ids.append(_insert_parsed(conn, run, ident))
        return Imported(tuple(new_ids), tuple(already))

    def delete_runs(self, run_ids: Iterable[int]) -> list[int]:
        """Delete these runs with their results and findings (all or none: an id that is
        not here is a UsageError and nothing is deleted); the ids deleted."""
        ids = list(dict.fromkeys(self._require_run(i) for i in run_ids))
        with self.transaction() as conn:
            conn.executemany("DELETE FROM runs WHERE id = ?", [(i,) for i in ids])
        return ids


@dataclass(frozen=True)
class Imported:
    """What an import added (``new_ids``) and what it found already stored:
    (index of the run in the document, the id it has here)."""

    new_ids: tuple[int, ...]
    already: tuple[tuple[int, int], ...]


def _insert_parsed(conn: sqlite3.Connection, run: ParsedRun, identity: str) -> int:
    cursor = conn.execute(
        codec.INSERT_RUN,
        codec.run_values(
            run.record.kind,
            run.record.started_at,
            run.record.finished_at,
            run.record.status,
            run.record.fingerprint,
            run.record.summary,
            "",
            identity,
        ),
    )
    assert cursor.lastrowid is not None
    run_id = int(cursor.lastrowid)
    conn.executemany(
        codec.INSERT_RESULT, [codec.result_values(run_id, r, t) for r, t in run.results]
    )
    conn.executemany(codec.INSERT_FINDING, [codec.finding_values(run_id, f) for f in run.findings])
    return run_id


class RunHandle:
    """One run in progress; finishes it on exit from the ``with`` block.

    Normal exit -> ``status`` (default "ok"; set ``handle.status = "failed"`` to record a
    run that completed but failed), an exception -> "failed" (its text goes into
    ``summary["error"]``), KeyboardInterrupt or SIGTERM (``Terminated``) ->
    "interrupted". Exceptions propagate.
    """

    def __init__(self, store: Store, kind: str, fingerprint: Mapping[str, Any]) -> None:
        self.store = store
        self.kind = kind
        self.fingerprint = fingerprint
        self.summary: dict[str, Any] = {}
        self.status = "ok"
        self._id: int | None = None

    @property
    def id(self) -> int:
        if self._id is None:
            raise StoreError("the run has not begun: use it in a `with` block")
        return self._id

    def add_result(self, result: Result) -> None:
        self.store.add_result(self.id, result)

    def add_results(self, results: Iterable[Result]) -> None:
        self.store.add_results(self.id, results)

    def add_findings(self, findings: Iterable[Finding]) -> None:
        self.store.add_findings(self.id, findings)

    def __enter__(self) -> RunHandle:
        self._id = self.store.begin_run(self.kind, self.fingerprint)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            status = self.status
        elif isinstance(exc, (KeyboardInterrupt, Terminated)):
            status = "interrupted"
        else:
            status = "failed"
            self.summary.setdefault("error", f"{type(exc).__name__}: {exc}")
        self.store.finish_run(self.id, status, self.summary)
