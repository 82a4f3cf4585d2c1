"""Opening a database file safely: look first, then migrate.

A file that is not ours must never be touched. An existing file is first classified
from its raw 100-byte header, without SQLite (even a read-only SQLite connection can
leave ``-wal``/``-shm`` files beside a database); one that looks like ours is then
opened with ``mode=ro`` and its tables checked; only after both is it opened for
writing. The same classification runs again inside each migration transaction, which
closes most of the window between looking and writing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gpuscout.errors import StoreError
from gpuscout.store.paths import MEMORY
from gpuscout.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

PICK_ANOTHER = "use --db to pick another file"


def connect(target: Path | str, timeout_s: float = 10.0) -> sqlite3.Connection:
    """A writable, migrated connection to ``target`` (a Path or ``":memory:"``)."""
    if target == MEMORY:
        conn = _raw_connect(MEMORY, timeout_s)
        migrate(conn, MEMORY)
        return conn
    path = Path(target)
    if path.exists():
        if not path.is_file():
            raise StoreError(f"{path} is not a file; {PICK_ANOTHER}")
        inspect_readonly(path, timeout_s)
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder {path.parent} ({exc.strerror}); {PICK_ANOTHER}"
            ) from exc
    conn = _raw_connect(str(path), timeout_s)
    try:
        migrate(conn, str(path))
        # WAL lets `gpuscout history` read while a benchmark writes, and a killed
        # writer leaves the last committed transaction intact. Set after the
        # migration so nothing is written before the file is known to be ours.
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(str(path), exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _raw_connect(database: str, timeout_s: float) -> sqlite3.Connection:
    try:
        # isolation_level=None: the module never opens transactions behind our back;
        # every write below says BEGIN and COMMIT itself.
        conn = sqlite3.connect(database, timeout=timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        raise store_error(database, exc) from exc
    conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


_MAGIC = b"SQLite format 3\x00"


def inspect_header(path: Path) -> str | None:
    """Classify a file from its 100-byte SQLite header, without SQLite.

    Even a read-only SQLite connection leaves ``-wal``/``-shm`` files beside a database
    in WAL mode, so a file that is not ours is recognised from its raw bytes and
    SQLite never opens it. Offsets are from the SQLite file format documentation.
    """
    try:
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        return f"cannot be read ({exc.strerror}); {PICK_ANOTHER}"
    untouched = f"it was left untouched; {PICK_ANOTHER}"
    if not header:
        return None  # an empty file is an empty database
    if len(header) < 100 or not header.startswith(_MAGIC):
        return f"is not a SQLite database; {untouched}"
    schema_cookie = int.from_bytes(header[40:44], "big")
    version = int.from_bytes(header[60:64], "big")
    app_id = int.from_bytes(header[68:72], "big", signed=True)
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            return (
                f"was written by a newer gpuscout (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade gpuscout or {PICK_ANOTHER}"
            )
        return None
    # Not marked as ours: acceptable only if nothing was ever stored in it (no schema
    # change ever made, no user_version set), i.e. a blank SQLite file.
    if app_id != 0 or version != 0 or schema_cookie != 0:
        return f"is a SQLite database that gpuscout did not write; {untouched}"
    return None


def inspect_readonly(path: Path, timeout_s: float) -> None:
    """Raise StoreError unless ``path`` is empty or a gpuscout database we can migrate."""
    problem = inspect_header(path)
    if problem:
        raise StoreError(f"{path} {problem}")
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        raise store_error(str(path), exc) from exc
    try:
        problem = classify(conn)
    except sqlite3.Error as exc:
        raise store_error(str(path), exc) from exc
    finally:
        conn.close()
    if problem:
        raise StoreError(f"{path} {problem}")


def classify(conn: sqlite3.Connection) -> str | None:
    """Why this database is not ours to use, or None when it is (or is empty).

    Raises sqlite3.DatabaseError ("file is not a database") for a file that is not SQLite.
    """
    names = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
    }
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    untouched = f"it was left untouched; {PICK_ANOTHER}"
    if app_id == 0 and version == 0 and not names:
        return None  # a new or empty file: ours to initialise
    if app_id != APPLICATION_ID:
        return f"is a SQLite database that gpuscout did not write; {untouched}"
    if version > SCHEMA_VERSION:
        return (
            f"was written by a newer gpuscout (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); upgrade gpuscout or {PICK_ANOTHER}"
        )
    if (version == 0 and names) or (version > 0 and "runs" not in names):
        return f"is a damaged gpuscout database (schema {version}); {untouched}"
    return None


def migrate(conn: sqlite3.Connection, label: str) -> None:
    """Apply the pending migrations, each in its own transaction."""
    while int(conn.execute("PRAGMA user_version").fetchone()[0]) < SCHEMA_VERSION:
        # IMMEDIATE takes the write lock now, so two processes opening a new file at
        # once serialise here and the second one sees the first one's work.
        conn.execute("BEGIN IMMEDIATE")
        try:
            problem = classify(conn)
            if problem:
                raise StoreError(f"{label} {problem}")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version < SCHEMA_VERSION:
                for step in MIGRATIONS[version]:
                    # SQL, or a function for what SQL cannot say (mending old rows)
                    conn.execute(step) if isinstance(step, str) else step(conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        problem = classify(conn)
        raise StoreError(f"{label} {problem}")


def store_error(label: str, exc: sqlite3.Error) -> StoreError:
    """One line for the user from a sqlite3 error, naming the file and the way out."""
    text = str(exc)
    low = text.lower()
    if "not a database" in low:
        return StoreError(
            f"{label} is not a SQLite database; it was left untouched; {PICK_ANOTHER}"
        )
    if "malformed" in low or "corrupt" in low:
        return StoreError(f"{label} is damaged (SQLite: {text}); move it aside and {PICK_ANOTHER}")
    if "locked" in low or "busy" in low:
        return StoreError(f"{label} is locked by another program; try again when it is done")
    if "unable to open" in low:
        return StoreError(f"cannot open {label} (check permissions); {PICK_ANOTHER}")
    if "readonly" in low or "read-only" in low:
        return StoreError(f"{label} is read-only; {PICK_ANOTHER}")
    return StoreError(f"{label}: {text}; {PICK_ANOTHER}")
