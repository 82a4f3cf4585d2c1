"""A real Ctrl-C (and a kill -9) in the middle of writing a run.

A child process begins a run and writes results as fast as it can, one transaction
each; once a few are committed it prints "ready" and the test signals it while it is
still writing. The file must pass SQLite's integrity check afterwards, every
committed result must be there and whole, and after SIGINT the run says interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuscout import Result
from gpuscout.errors import Terminated
from gpuscout.store import Store, codec
from helpers import REPO

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals to a child process")

SRC = REPO / "src"

CHILD = textwrap.dedent(
    """
    import signal
    import sys
    # A child inherits ignored signals: under a runner that ignores SIGINT (nohup, some
    # CI shells) Ctrl-C would never reach it and it would write forever.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from gpuscout import Result
    from gpuscout.store import Store

    store = Store.open(sys.argv[1])
    i = 0
    with store.run("interrupt-test", {"host": "child"}) as run:
        while True:
            run.add_result(Result(f"r{i}", "cpu", float(i + 1), "s", extra={"i": i}))
            i += 1
            if i == 20:
                print("ready", flush=True)
    """
)


def _start(db: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        _, err = child.communicate(timeout=30)
        pytest.fail(f"child did not get ready: {line!r} {err}")
    time.sleep(0.3)  # let it get well into writing more
    return child


def _check_file(db: Path) -> tuple[str, list[int]]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        (status,) = conn.execute("SELECT status FROM runs").fetchone()
        rows = conn.execute("SELECT name, figure, extra FROM results ORDER BY id").fetchall()
    finally:
        conn.close()
    figures = [int(figure) - 1 for _, figure, _ in rows]  # r{i} measured i + 1
    # Committed results are whole and in order: no gaps, no half-written rows.
    assert [name for name, _, _ in rows] == [f"r{i}" for i in figures]
    assert [extra for _, _, extra in rows] == [f'{{"i":{i}}}' for i in figures]
    return status, figures


@contextlib.contextmanager
def running(db: Path) -> Iterator[subprocess.Popen[str]]:
    """The writing child, killed in any case: a failed assertion must not leave it
    writing forever."""
    child = _start(db)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=60)


def test_sigint_mid_run_keeps_committed_results_and_marks_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with running(db) as child:
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    assert "KeyboardInterrupt" in err
    assert child.returncode != 0
    status, figures = _check_file(db)
    assert status == "interrupted"
    assert len(figures) >= 20
    assert figures == list(range(len(figures)))
    with Store.open(db) as store:
        assert store.integrity_ok()
        (run,) = store.list_runs()
        assert run.finished_at is not None
        assert len(store.results(run.id)) == len(figures)


def test_kill_mid_run_leaves_a_consistent_file(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with running(db) as child:
        child.kill()  # no chance to clean up: the run stays "running"
        child.communicate(timeout=60)
    status, figures = _check_file(db)
    assert status == "running"
    assert len(figures) >= 20
    assert figures == list(range(len(figures)))
    with Store.open(db) as store:  # reopening after a crash works
        assert store.integrity_ok()
        assert store.get_run(1).status == "running"


def test_sigterm_inside_a_run_marks_it_interrupted(tmp_path: Path) -> None:
    """``Terminated`` (SIGTERM, raised by ``isolate.sigterm_unwinds``) ends a run as Ctrl-C
    does: interrupted, with what was written."""
    with Store.open(tmp_path / "g.db") as store:
        with pytest.raises(Terminated), store.run("t", {"host": "h"}) as run:
            run.add_result(Result("a", "cpu", 1.0, "s"))
            raise Terminated("SIGTERM")
        (record,) = store.list_runs()
        assert record.status == "interrupted" and record.finished_at is not None
        assert [r.name for r in store.results(record.id)] == ["a"]


def test_replace_results_swaps_in_the_final_figures_keeping_their_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = iter(["2025-01-01T00:00:01Z", "2025-01-01T00:00:02Z", "2025-01-01T00:00:09Z"])
    monkeypatch.setattr(codec, "utc_now", lambda: next(times))
    with Store.open(tmp_path / "g.db") as store:
        run_id = store.begin_run("t", {"host": "h"})  # the first time
        store.add_result(run_id, Result("a", "cpu", 1.0, "s"))  # the second
        final = [Result("a", "cpu", 1.0, "s", peak_fraction=0.5), Result("b", "cpu", 2.0, "s")]
        store.replace_results(run_id, final)  # the third: b's
        written = store.results_with_times(run_id)
        assert written == [(final[0], "2025-01-01T00:00:02Z"), (final[1], "2025-01-01T00:00:09Z")]
        assert store.integrity_ok()
