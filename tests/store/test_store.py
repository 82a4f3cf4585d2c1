"""Opening, migrating and refusing files: the store's file-level promises."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gpuscout import Result
from gpuscout.errors import StoreError
from gpuscout.store import SCHEMA_VERSION, Store, _connect, default_data_dir, resolve_db_path
from gpuscout.store.schema import APPLICATION_ID, MIGRATIONS


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in the folder with its bytes: "unchanged" means no new side files too."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def test_new_file_is_migrated_to_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "gpuscout.db"  # parents do not exist yet
    with Store.open(path) as store:
        assert store.list_runs() == []
        assert store.integrity_ok()
        conn = store.conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert {"runs", "results", "findings"} <= _tables(path)


def test_memory_store_needs_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store(":memory:") as store:
        run_id = store.begin_run("doctor", {})
        assert store.get_run(run_id).status == "running"
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert list(tmp_path.iterdir()) == []


def test_reopen_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Store.open(path) as store, store.run("bench-micro", {"host": "a"}) as run:
        run.add_result(Result("matmul", "cpu", 1.0, "TFLOPS"))
    for _ in range(2):
        with Store.open(path) as store:
            assert [r.kind for r in store.list_runs()] == ["bench-micro"]
            assert store.results(1) == [Result("matmul", "cpu", 1.0, "TFLOPS")]
            assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_empty_file_is_initialised(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with Store.open(path) as store:
        assert store.integrity_ok()
    assert "runs" in _tables(path)


@pytest.mark.parametrize(
    "content",
    [
        random.Random(0).randbytes(8192),
        b"name,figure\nmatmul,1.0\n",
        b"SQLite format 3\x00" + b"\xff" * 200,  # right magic, nonsense header
    ],
    ids=["random-bytes", "csv-text", "bad-header"],
)
def test_not_a_database_is_refused_and_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "results.db"
    path.write_bytes(content)
    before = _snapshot(tmp_path)
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert str(path) in info.value.message
    assert "--db" in info.value.message
    assert "\n" not in info.value.message
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "ddl",
    [
        ["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"],
        # Our table names but not our file: the application id tells them apart.
        ["CREATE TABLE runs (id INTEGER PRIMARY KEY)", "PRAGMA user_version = 1"],
        ["PRAGMA application_id = 1234"],
        ["PRAGMA user_version = 7"],
    ],
    ids=["other-tables", "runs-table-no-app-id", "other-app-id", "user-version-only"],
)
def test_foreign_sqlite_file_is_refused_and_untouched(tmp_path: Path, ddl: list[str]) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    for statement in ddl:
        conn.execute(statement)
    conn.commit()
    conn.close()
    before = _snapshot(tmp_path)
    with pytest.raises(StoreError, match="did not write") as info:
        Store.open(path)
    assert str(path) in info.value.message
    assert _snapshot(tmp_path) == before


def test_our_file_without_runs_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE findings")
    conn.execute("DROP TABLE results")
    conn.execute("DROP TABLE runs")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="damaged"):
        Store.open(path)
    # Our own file in WAL mode: SQLite may add its -wal/-shm side files, but the
    # database itself must not change.
    assert path.read_bytes() == before


def test_newer_schema_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    before = _snapshot(tmp_path)
    with pytest.raises(StoreError, match="newer gpuscout") as info:
        Store.open(path)
    assert str(path) in info.value.message
    assert _snapshot(tmp_path) == before


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a file"):
        Store.open(tmp_path)


def test_uncreatable_parent_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder"):
        Store.open(blocker / "sub" / "g.db")


def test_damaged_page_fails_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Store.open(path) as store, store.run("bench", {}) as run:
        run.add_results([Result(f"r{i}", "cpu", float(i), "s") for i in range(300)])
    conn = sqlite3.connect(path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='results'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    data[start : start + 16] = b"\xab" * 16  # wreck the b-tree page header
    path.write_bytes(bytes(data))
    with Store.open(path) as store:
        assert store.integrity_ok() is False
        with pytest.raises(StoreError, match="damaged"):
            store.results(1)


def _with_extra_step(monkeypatch: pytest.MonkeyPatch, step: tuple[str, ...]) -> None:
    migrations = (*MIGRATIONS, step)
    monkeypatch.setattr(_connect, "MIGRATIONS", migrations)
    monkeypatch.setattr(_connect, "SCHEMA_VERSION", len(migrations))


def test_pending_migration_is_applied_to_an_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.db"
    Store.open(path).close()
    _with_extra_step(monkeypatch, ("ALTER TABLE runs ADD COLUMN note TEXT",))
    with Store.open(path) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        columns = {r[1] for r in store.conn.execute("PRAGMA table_info(runs)")}
        assert "note" in columns


def test_failed_migration_rolls_back_whole_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.db"
    Store.open(path).close()
    _with_extra_step(
        monkeypatch,
        ("ALTER TABLE runs ADD COLUMN note TEXT", "THIS IS NOT SQL"),
    )
    with pytest.raises(StoreError):
        Store.open(path)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert "note" not in {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    finally:
        conn.close()


def test_default_data_dir_rules(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert default_data_dir({"GPUSCOUT_HOME": "/x/y"}, "linux", home) == Path("/x/y")
    assert default_data_dir({}, "linux", home) == home / ".local/share/gpuscout"
    assert default_data_dir({"XDG_DATA_HOME": "/d"}, "linux", home) == Path("/d/gpuscout")
    # A relative XDG_DATA_HOME is invalid by the spec and ignored.
    assert default_data_dir({"XDG_DATA_HOME": "rel"}, "linux", home) == (
        home / ".local/share/gpuscout"
    )
    assert default_data_dir({}, "darwin", home) == (
        home / "Library" / "Application Support" / "gpuscout"
    )
    assert default_data_dir({"LOCALAPPDATA": "C:/L"}, "win32", home) == Path("C:/L/gpuscout")
    assert default_data_dir({}, "win32", home) == home / "AppData" / "Local" / "gpuscout"


def test_resolve_db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path))
    assert resolve_db_path(None) == tmp_path / "gpuscout.db"
    assert resolve_db_path(":memory:") == ":memory:"
    assert resolve_db_path(str(tmp_path / "a.db")) == tmp_path / "a.db"


def test_importing_the_store_is_light() -> None:
    # The store is a lower layer: no CLI framework, no deep-learning framework.
    code = (
        "import sys, gpuscout.store; "
        "bad = {'torch', 'typer', 'rich', 'pynvml'} & set(sys.modules); "
        "print(sorted(bad)); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
