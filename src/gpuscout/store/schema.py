"""The schema, as numbered migrations.

``MIGRATIONS[i]`` takes a database from schema version ``i`` to ``i + 1``; the version
is SQLite's ``PRAGMA user_version`` and each step runs in one transaction, so a crash
between steps leaves a database at a clean, known version. Never edit a shipped step:
append a new one. Each step is a tuple of single statements rather than one script
because ``sqlite3.executescript`` commits any open transaction before it runs, which
would break the one-transaction-per-step promise.

``APPLICATION_ID`` (``PRAGMA application_id``, a field of the file header) marks the
file as gpuscout's, so a SQLite file written by another program is recognised and left
alone even when it happens to have a table called ``runs``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

APPLICATION_ID = 0x47505553  # "GPUS" in ASCII

RUN_STATUSES = ("running", "ok", "failed", "interrupted")
FINISHED_STATUSES = ("ok", "failed", "interrupted")

_V1: tuple[str, ...] = (
    f"PRAGMA application_id = {APPLICATION_ID}",
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('running', 'ok', 'failed', 'interrupted')),
        fingerprint TEXT NOT NULL DEFAULT '{}',
        summary TEXT NOT NULL DEFAULT '{}',
        gpuscout_version TEXT NOT NULL DEFAULT '',
        host TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX runs_kind ON runs (kind, id)",
    """
    CREATE TABLE results (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        device TEXT NOT NULL,
        figure REAL,
        unit TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'ok',
        stats TEXT,
        peak_fraction REAL,
        error TEXT,
        extra TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX results_run ON results (run_id, id)",
    """
    CREATE TABLE findings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        check_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pass', 'skip', 'warn', 'fail')),
        summary TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        fix TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX findings_run ON findings (run_id, id)",
)


def _mend_rows(conn: sqlite3.Connection) -> None:
    """Rows written before the store's rules (store/guard.py) made to obey them, and
    every finished run given its identity (what makes a second import recognisable)."""
    from gpuscout.store import codec  # codec imports this module: here, not at the top

    conn.row_factory = sqlite3.Row
    try:
        for row in list(conn.execute(f"SELECT id, {codec.RESULT_COLUMNS} FROM results")):
            stored = codec.row_to_result(row)
            mended = codec.result_values(0, stored, "")
            conn.execute(
                "UPDATE results SET name = ?, device = ?, figure = ?, unit = ?, status = ?,"
                " stats = ?, peak_fraction = ?, error = ?, extra = ? WHERE id = ?",
                (*mended[1:10], row["id"]),
            )
        for run in list(conn.execute(f"SELECT {codec.RUN_COLUMNS} FROM runs")):
            if run["status"] != "running":
                conn.execute(
                    "UPDATE runs SET identity = ? WHERE id = ?",
                    (codec.identity_of_stored(conn, codec.row_to_run(run)), run["id"]),
                )
    finally:
        conn.row_factory = None


Step = str | Callable[[sqlite3.Connection], None]

_V2: tuple[Step, ...] = (
    "ALTER TABLE runs ADD COLUMN identity TEXT",
    "CREATE INDEX runs_identity ON runs (identity)",
    _mend_rows,
)

MIGRATIONS: tuple[tuple[Step, ...], ...] = (_V1, _V2)

SCHEMA_VERSION = len(MIGRATIONS)
