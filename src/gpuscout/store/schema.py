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

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)

SCHEMA_VERSION = len(MIGRATIONS)
