"""What may enter the store (store/guard.py): one set of rules on every write and every
import, so whatever is stored reads back; imports are idempotent; runs can be deleted;
old rows are mended by a migration."""

from __future__ import annotations

import copy
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gpuscout._types import Finding, Result, Stats, Status
from gpuscout.errors import UsageError
from gpuscout.store import Store, guard
from gpuscout.store.schema import APPLICATION_ID, MIGRATIONS

STATS = Stats(5, 1.0, 1.0, 0.9, 1.1, 0.9, 1.1, 0.05, 0.02, False)
GOOD = Result("matmul/fp32/1024", "cpu", 0.18, "TFLOPS", "ok", STATS, 0.8, None, {"flags": []})
ESC = "\x1b[2J\x1b[31m"  # clear the screen, then red: what a hostile name would do


def with_(result: Result = GOOD, **changes: Any) -> Result:
    from dataclasses import replace

    return replace(result, **changes)


# -- the rules, one row per rule and boundary ---------------------------------------------


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (with_(figure=math.nan), "figure: not a finite number (nan)"),
        (with_(figure=math.inf), "figure: not a finite number (inf)"),
        (with_(figure=1e308), "figure: 1e+308 is outside"),
        (with_(figure=0.0), "figure: 0 is outside"),  # an ok figure is positive
        (with_(figure=-1.0), "figure: -1 is outside"),
        (with_(figure=10**400), "figure: too large"),
        (with_(figure=None), "figure: a result measured ok needs a figure"),
        (with_(name="x" + ESC), "name: holds control characters"),
        (with_(device="cpu\ud800"), "device: holds a lone surrogate"),
        (with_(error="line one\nline two\x07"), "error: holds control characters"),
        (with_(peak_fraction=math.nan), "peak_fraction: not a finite number"),
        (with_(peak_fraction=2e3), "peak_fraction: 2000 is outside"),
        (with_(stats=Stats(5, math.nan, 1, 1, 1, 1, 1, 0, 0, False)), "stats.median_s"),
        (with_(stats=Stats(-1, 1, 1, 1, 1, 1, 1, 0, 0, False)), "stats.n: -1 is outside"),
        (with_(extra={"a": [1.0, math.inf]}), "extra.a[1]: not a finite number (inf)"),
        (with_(extra={"k": "v" + ESC}), "extra.k: holds control characters"),
        (with_(extra={"deep": json.loads("[" * 40 + "]" * 40)}), "nested more than 32 deep"),
    ],
)
def test_each_rule_names_the_field_and_what_is_wrong(result: Result, words: str) -> None:
    problems = guard.result_problems(result, "r")
    assert any(words in p for p in problems), problems


@pytest.mark.parametrize(
    "result",
    [
        GOOD,
        with_(figure=guard.MAX_FIGURE),  # the edge itself is allowed
        with_(status="failed", figure=None, error="Traceback (most recent call last):\n\tx"),
        with_(status="skipped", figure=None, stats=None, peak_fraction=None),
        with_(extra={"text": "tabs\tand\nnewlines are prose", "n": 10**12, "ok": True}),
    ],
)
def test_what_a_measurement_really_holds_passes(result: Result) -> None:
    assert guard.result_problems(result, "r") == []


def test_own_writes_are_mended_and_nothing_measured_is_lost() -> None:
    bad = with_(
        name="n" + ESC,
        figure=math.nan,
        stats=Stats(5, math.inf, 1, 1, 1, 1, 1, 0, 0, False),
        extra={"x": math.nan, "y": [1, math.inf], "s": "ok\x00"},
    )
    mended = guard.clean_result(bad)
    assert guard.result_problems(mended, "r") == []
    assert mended.status == "failed" and mended.figure is None
    assert mended.error == "figure not stored: not a finite number (nan)"
    assert mended.name == "n[2J[31m" and mended.stats is None
    assert mended.extra == {"x": None, "y": [1, None], "s": "ok"}
    assert guard.clean_result(GOOD) == GOOD  # a clean result is stored as it is


@pytest.mark.parametrize(
    ("value", "words"),
    [("0", "run ids go from 1"), (2**63, "run ids go from 1"), ("x", "whole number")],
)
def test_run_ids_out_of_range_are_usage_errors(value: Any, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        guard.run_id(value)
    assert guard.run_id("7") == 7


# -- the store applies them ---------------------------------------------------------------


@pytest.fixture
def store() -> Store:
    return Store(":memory:")


def test_a_hostile_result_written_by_gpuscout_reads_back(store: Store) -> None:
    with store.run("bench-micro", {"host": "h" + ESC}) as run:
        run.add_results([with_(figure=math.inf, extra={"x": math.nan}), GOOD])
        run.add_findings([Finding("a.b" + ESC, Status.WARN, "s\x1b[0m", "d", "f")])
        run.summary["headline"] = "x\ud800"
    (first, second) = store.results(run.id)
    assert first.status == "failed" and first.extra == {"x": None}
    assert second == GOOD
    assert store.findings(run.id)[0].id == "a.b[2J[31m"
    record = store.get_run(run.id)
    assert record.summary["headline"] == "x\ufffd" and record.fingerprint["host"] == "h[2J[31m"


def test_an_id_beyond_sqlite_is_one_line_not_an_overflow(store: Store) -> None:
    with pytest.raises(UsageError, match="run ids go from 1"):
        store.get_run(9223372036854775808)
    with pytest.raises(UsageError, match="run ids go from 1"):
        store.results(9223372036854775808)


def export_of(store: Store) -> dict[str, Any]:
    with store.run("run", {"host": "lab"}) as run:
        run.add_results([GOOD])
        run.add_findings([Finding("host.cpu", Status.PASS, "ok")])
    return store.export_runs([run.id])


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (("results", 0, "figure"), math.nan, "runs[0].results[0].figure: not a finite number"),
        (("results", 0, "figure"), math.inf, "not a finite number (inf)"),
        (("results", 0, "figure"), 1e308, "is outside"),
        (("results", 0, "figure"), 10**400, "too large"),
        (("results", 0, "figure"), 0, "0 is outside"),
        (("results", 0, "name"), "x" + ESC, "results[0].name: holds control characters"),
        (("results", 0, "device"), "cpu\ud800", "holds a lone surrogate"),
        (("results", 0, "extra"), {"a": math.nan}, "results[0].extra.a: not a finite"),
        (("findings", 0, "summary"), "ok" + ESC, "findings[0].summary: holds control"),
        (("fingerprint",), {"host": "h\x1b"}, "runs[0].fingerprint.host"),
        (("kind",), "run\x1b", "runs[0].kind: holds control characters"),
    ],
)
def test_an_import_that_breaks_a_rule_is_refused_whole(
    store: Store, path: tuple[Any, ...], value: Any, words: str
) -> None:
    doc = export_of(Store(":memory:"))
    bad = copy.deepcopy(doc)
    target = bad["runs"][0]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    before = store.list_runs()
    with pytest.raises(UsageError) as info:
        store.import_runs(bad)
    assert words in info.value.message
    assert store.list_runs() == before and store.integrity_ok()


def test_a_second_import_adds_nothing_and_says_where_the_run_is(store: Store) -> None:
    doc = export_of(Store(":memory:"))
    first = store.import_document(doc)
    second = store.import_document(doc)
    assert len(first.new_ids) == 1 and first.already == ()
    assert second.new_ids == () and second.already == ((0, first.new_ids[0]),)
    assert len(store.list_runs()) == 1


def test_one_file_holding_a_run_three_times_adds_it_once(store: Store) -> None:
    doc = export_of(Store(":memory:"))
    doc["runs"] = doc["runs"] * 3
    got = store.import_document(doc)
    assert len(got.new_ids) == 1
    assert got.already == ((1, got.new_ids[0]), (2, got.new_ids[0]))


def test_a_run_exported_and_imported_into_its_own_store_is_recognised(store: Store) -> None:
    doc = export_of(store)
    (run,) = store.list_runs()
    got = store.import_document(doc)
    assert got.new_ids == () and got.already == ((0, run.id),)


def test_runs_are_deleted_with_their_results_all_or_none(store: Store) -> None:
    ids = [store.import_runs(export_of(Store(":memory:")))[0]]
    with store.run("doctor", {"host": "lab"}) as run:
        run.add_findings([Finding("host.cpu", Status.PASS, "ok")])
    ids.append(run.id)
    with pytest.raises(UsageError, match="no run 99"):
        store.delete_runs([ids[0], 99])
    assert len(store.list_runs()) == 2  # nothing deleted
    assert store.delete_runs(ids) == ids
    assert store.list_runs() == []
    assert store.conn.execute("SELECT count(*) FROM results").fetchone()[0] == 0
    assert store.integrity_ok()


# -- rows written before the rules ----------------------------------------------------------


def old_database(path: Path) -> None:
    """A schema-1 database as an earlier gpuscout wrote it, with the rows it let in."""
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        assert isinstance(statement, str)  # schema 1 is plain SQL
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.execute(
        "INSERT INTO runs (kind, started_at, finished_at, status, fingerprint, summary)"
        " VALUES ('run', '2026-11-23T00:00:00+00:00', '2026-11-23T00:01:00+00:00', 'ok',"
        " '{\"host\": \"vm\"}', '{}')"
    )
    stats = '{"n":5,"median_s":NaN,"mean_s":1,"min_s":1,"max_s":1,"p10_s":1,"p90_s":1,'
    stats += '"iqr_s":0,"cv":0,"noisy":false}'
    conn.execute(
        "INSERT INTO results (run_id, name, device, figure, unit, status, stats, extra,"
        " created_at) VALUES (1, ?, 'cpu', 2.0, 'GB/s', 'ok', ?, '{\"x\": NaN}',"
        " '2026-11-23T00:00:30+00:00')",
        ("memory/copy\x1b[2J", stats),
    )
    conn.commit()
    conn.close()


def test_old_rows_are_mended_when_the_store_opens(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old_database(db)
    with Store(db) as store:
        (result,) = store.results(1)
        assert result.name == "memory/copy[2J" and result.stats is None
        assert result.extra == {"x": None} and result.figure == 2.0
        doc = store.export_runs()
        assert store.import_document(doc).already == ((0, 1),)  # it has an identity now
        assert store.integrity_ok()


# -- reading an export file ------------------------------------------------------------


def test_an_export_file_is_read_strictly(tmp_path: Path) -> None:
    from gpuscout.store import exchange

    good = tmp_path / "runs.json"
    good.write_text(json.dumps(export_of(Store(":memory:"))))
    assert exchange.read_export(good)["format"] == "gpuscout-runs"
    nan = tmp_path / "nan.json"
    nan.write_text('{"runs": [NaN]}')
    with pytest.raises(UsageError, match="NaN is not a JSON number"):
        exchange.read_export(nan)
    with pytest.raises(UsageError, match="is a directory"):
        exchange.read_export(tmp_path)
    with pytest.raises(UsageError, match="no such file"):
        exchange.read_export(tmp_path / "missing.json")
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="not a text file"):
        exchange.read_export(binary)


def test_an_export_file_past_the_cap_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from gpuscout.store import exchange

    monkeypatch.setattr(exchange, "MAX_IMPORT_BYTES", 100)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"runs": ["x" * 200]}))
    with pytest.raises(UsageError, match="larger than"):
        exchange.read_export(big)
    with pytest.raises(UsageError, match="larger than"):
        exchange.read_export("-", io.StringIO("[" + "1," * 200 + "1]"))
    assert exchange.read_export("-", io.StringIO("[1]")) == [1]
