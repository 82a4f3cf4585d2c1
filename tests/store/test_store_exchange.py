"""Export and import of runs as JSON, and the strict checks on imported documents."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from gpuscout import Finding, Result, Stats, Status
from gpuscout.errors import UsageError
from gpuscout.store import EXPORT_VERSION, Store, db

STATS = Stats(10, 0.5, 0.5, 0.4, 0.7, 0.45, 0.6, 0.05, 0.1, True)
RESULTS = [
    Result("mlp/train", "cpu", 1234.0, "samples/s", stats=STATS, extra={"batch": 64}),
    Result("mlp/train", "cuda:0", None, "samples/s", status="failed", error="boom"),
]
FINDINGS = [Finding("gpu.visible", Status.FAIL, "no GPU", "detail", "nvidia-smi", "GPU 0")]
FP = {"host": "box", "gpus": [{"index": 0, "name": "NVIDIA T4"}], "gpuscout_version": "0.1.0"}


def _filled_store() -> Store:
    store = Store(":memory:")
    with store.run("run", FP) as run:
        run.add_results(RESULTS)
        run.add_findings(FINDINGS)
        run.summary["headline"] = "GPU 4x faster"
    with store.run("doctor", {"host": "other"}) as run:
        run.add_findings([Finding("x", Status.PASS, "ok")])
    return store


def _document() -> dict[str, Any]:
    with _filled_store() as store:
        return store.export_runs()


def test_export_import_round_trip_through_json_text() -> None:
    with _filled_store() as source:
        doc = json.loads(json.dumps(source.export_runs([1, 2])))
        originals = [(source.get_run(i), source.results(i), source.findings(i)) for i in (1, 2)]
    assert doc["format"] == "gpuscout-runs"
    assert doc["schema_version"] == EXPORT_VERSION
    with Store(":memory:") as target:
        target.begin_run("already-here", {})  # the imported runs get new ids
        new_ids = target.import_runs(doc)
        assert new_ids == [2, 3]
        for new_id, (record, results, findings) in zip(new_ids, originals, strict=True):
            copied = target.get_run(new_id)
            assert copied.kind == record.kind
            assert copied.status == record.status
            assert copied.started_at == record.started_at
            assert copied.finished_at == record.finished_at
            assert copied.fingerprint == record.fingerprint
            assert copied.summary == record.summary
            assert target.results(new_id) == results
            assert target.findings(new_id) == findings
        assert target.integrity_ok()


def test_export_all_by_default_and_unknown_id_rejected() -> None:
    with _filled_store() as store:
        assert [r["id"] for r in store.export_runs()["runs"]] == [1, 2]
        with pytest.raises(UsageError, match="no run 7"):
            store.export_runs([1, 7])


def _set(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _drop(path: list[str | int]) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


R0: list[str | int] = ["runs", 0]
RES0: list[str | int] = [*R0, "results", 0]
MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "wrong-format": (_set(["format"], "something-else"), "format"),
    "newer-schema": (_set(["schema_version"], EXPORT_VERSION + 1), "newer"),
    "zero-schema": (_set(["schema_version"], 0), "schema_version"),
    "schema-as-string": (_set(["schema_version"], "1"), "schema_version"),
    "runs-not-list": (_set(["runs"], {"a": 1}), "runs"),
    "unknown-top-field": (_set(["evil"], "x"), "unknown field evil"),
    "missing-kind": (_drop([*R0, "kind"]), "runs[0]: missing kind"),
    "empty-kind": (_set([*R0, "kind"], "  "), "runs[0].kind"),
    "bad-run-status": (_set([*R0, "status"], "exploded"), "runs[0].status"),
    "bad-time": (_set([*R0, "started_at"], "yesterday"), "runs[0].started_at"),
    "fingerprint-list": (_set([*R0, "fingerprint"], [1, 2]), "runs[0].fingerprint"),
    "unknown-run-field": (_set([*R0, "__class__"], "x"), "unknown field __class__"),
    "figure-string": (_set([*RES0, "figure"], "fast"), "runs[0].results[0].figure"),
    "figure-bool": (_set([*RES0, "figure"], True), "runs[0].results[0].figure"),
    "stats-missing-field": (_drop([*RES0, "stats", "median_s"]), "missing median_s"),
    "stats-n-bool": (_set([*RES0, "stats", "n"], True), "stats.n"),
    "stats-n-negative": (_set([*RES0, "stats", "n"], -1), "stats.n"),
    "stats-noisy-int": (_set([*RES0, "stats", "noisy"], 1), "stats.noisy"),
    "extra-not-object": (_set([*RES0, "extra"], "x"), "results[0].extra"),
    "error-number": (_set([*RES0, "error"], 5), "results[0].error"),
    "results-not-list": (_set([*R0, "results"], "none"), "runs[0].results"),
    "finding-bad-status": (_set([*R0, "findings", 0, "status"], "meh"), "findings[0].status"),
    "finding-missing-id": (_drop([*R0, "findings", 0, "id"]), "missing id"),
    # A bad second run must stop the first one from being imported too.
    "second-run-bad": (_set(["runs", 1, "kind"], 3), "runs[1].kind"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_documents_are_rejected_and_nothing_is_written(name: str) -> None:
    mutate, expected = MALFORMED[name]
    doc = copy.deepcopy(_document())
    mutate(doc)
    with Store(":memory:") as target:
        with pytest.raises(UsageError) as info:
            target.import_runs(doc)
        assert expected in info.value.message
        assert "\n" not in info.value.message
        assert target.list_runs() == []


@pytest.mark.parametrize("doc", [None, [], "runs", 3, {"format": "gpuscout-runs"}])
def test_non_documents_are_rejected(doc: Any) -> None:
    with Store(":memory:") as target, pytest.raises(UsageError, match="not a valid"):
        target.import_runs(doc)


def test_non_json_values_in_extra_are_rejected() -> None:
    doc = _document()
    doc["runs"][0]["results"][0]["extra"] = {"f": print}
    with Store(":memory:") as target, pytest.raises(UsageError, match="not a JSON value"):
        target.import_runs(doc)


def test_optional_fields_may_be_left_out() -> None:
    doc = _document()
    run = doc["runs"][0]
    del run["id"]
    del run["results"][0]["created_at"]
    for key in ("detail", "fix", "subject"):
        del run["findings"][0][key]
    del doc["exported_at"]
    with Store(":memory:") as target:
        (new_id, _) = target.import_runs(doc)
        assert target.findings(new_id)[0] == Finding("gpu.visible", Status.FAIL, "no GPU")
        assert target.results(new_id) == RESULTS


def test_an_import_interrupted_half_way_stores_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = db._insert_parsed
    calls = []

    def ctrl_c_on_the_second_run(*args: Any) -> int:
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(db, "_insert_parsed", ctrl_c_on_the_second_run)
    with Store(":memory:") as target:
        with pytest.raises(KeyboardInterrupt):
            target.import_document(_document())
        assert len(calls) == 2  # the first run was written, then rolled back
        assert target.list_runs() == []
        assert target.conn.execute("SELECT count(*) FROM results").fetchone()[0] == 0
