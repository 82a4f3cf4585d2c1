"""gpuscout.validate.predict_against_published: Lambda's table maps onto catalog rows, its
workload figures are the ones the priors were fitted with and the ones the workloads count,
and the two validations compute their errors correctly on small hand-made tables. No GPU;
torch only for the count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuscout.catalog import find_gpu, match_local_gpu
from gpuscout.predict import defaults as d
from gpuscout.predict import predict_results
from gpuscout.validate import predict_against_published as published


def test_every_lambda_row_is_a_catalog_row() -> None:
    ids = [r.gpu_id for r in published.LAMBDA]
    assert len(ids) == len(set(ids)) == 11
    for row in published.LAMBDA:
        spec = published.spec_of(row)
        assert spec.id == row.gpu_id
        assert len(row.figures) == len(published.COLUMNS)
        assert all(f > 0 for f in row.figures)
        # A stored run on this GPU carries NVML's name; predict must map it back here.
        matched = match_local_gpu(published.nvml_name(spec), spec.memory_bytes)
        assert matched is not None and matched.id == row.gpu_id
    assert set(published.IN_SAMPLE) <= set(ids)
    assert {g for _, g in published.HARNESS_CEILING} <= set(ids)
    assert {c for c, _ in published.HARNESS_CEILING} <= set(published.COLUMNS)
    assert set(published.WORKS) == set(published.COLUMNS)


def test_a_gpu_missing_from_the_catalog_fails_loudly() -> None:
    row = published.Published("Imaginary GPU", "no-such-gpu", "X", (1.0,) * 5)
    with pytest.raises(SystemExit, match="Imaginary GPU"):
        published.spec_of(row)


@pytest.mark.parametrize(
    ("column", "prior", "anchors"),
    [
        ("resnet50-amp", d.CNN_TRAIN, (2790, 3079, 1582)),
        ("bert-large-amp", d.TRANSFORMER_TRAIN, (311, 350, 152)),
    ],
)
def test_the_workload_figures_are_the_ones_the_priors_were_fitted_with(
    column: str, prior: d.Prior, anchors: tuple[int, int, int]
) -> None:
    w = published.WORKS[column]
    h100, h200, a100 = anchors
    again = d._prior(w.flops_per_sample, w.bytes_per_sample, 1 / h100,
                     d.shares(h200 / h100, h100 / a100), "")  # fmt: skip
    assert again.eff_compute == pytest.approx(prior.eff_compute, rel=1e-3)
    assert again.eff_memory == pytest.approx(prior.eff_memory, rel=1e-3)
    assert again.other_tflops == pytest.approx(prior.other_tflops, rel=1e-3)
    # ... and they are Lambda's published figures for those GPUs.
    pub = published.published_column(column)
    assert (pub["h100-sxm5-80gb"], pub["h200-sxm-141gb"], pub["a100-sxm4-80gb"]) == anchors


def test_step_error_is_relative_to_the_published_step() -> None:
    # Predicted 80 samples/s where 100 were published: the step is 1.25x as long.
    assert published.step_error(80.0, 100.0) == pytest.approx(0.25)
    assert published.step_error(125.0, 100.0) == pytest.approx(-0.2)
    assert published.step_error(100.0, 100.0) == 0.0


def test_score_by_hand() -> None:
    got = published.score(
        {"a": 100.0, "b": 80.0, "c": 50.0, "z": 1.0},
        {"a": 100.0, "b": 100.0, "c": 40.0},
        in_sample={"a"},
        capped={"c"},
    )
    rows = {r["gpu_id"]: r for r in got["rows"]}
    assert set(rows) == {"a", "b", "c"}  # a prediction without a published figure is left out
    assert rows["b"]["error"] == pytest.approx(0.25) and rows["b"]["ratio"] == pytest.approx(0.8)
    assert rows["c"]["error"] == pytest.approx(-0.2) and rows["c"]["harness_ceiling"]
    assert got["median_abs_error_in_sample"] == 0.0 and got["n_in_sample"] == 1
    assert got["median_abs_error_out_of_sample"] == pytest.approx(0.225)
    assert got["median_abs_error_out_of_sample_uncapped"] == pytest.approx(0.25)
    assert published.median_abs([]) is None


def _rows(a: str, fa: float, b: str, fb: float) -> tuple[published.Published, ...]:
    return (
        published.Published(a, a, a, (fa, 1, 1, 1, 1)),
        published.Published(b, b, b, (fb, 1, 1, 1, 1)),
    )


def test_the_calibrated_matrix_by_hand() -> None:
    # What the model projects for an A100 from an H100 at 1,000 images/s ...
    a, b, w = "h100-sxm5-80gb", "a100-sxm4-80gb", published.WORKS["resnet50-amp"]
    r = published.workload_result(w, find_gpu(a), w.batch / 1000.0)
    (p,) = predict_results([r], None, [find_gpu(b)]).projections
    # ... published 1.25x slower than that: H100 -> A100 predicts a step 20% too short,
    # and A100 -> H100 (calibrated on the slower figure) one 25% too long.
    got = published.calibrated(("resnet50-amp",), _rows(a, 1000.0, b, p.throughput / 1.25))
    m = got["resnet50-amp"]["matrix"]
    assert m[a] == {b: pytest.approx(-0.2)}
    assert m[b] == {a: pytest.approx(0.25)}
    assert got["resnet50-amp"]["median_abs_error"] == pytest.approx(0.225)
    exact = published.calibrated(("resnet50-amp",), _rows(a, 1000.0, b, p.throughput))
    assert exact["resnet50-amp"]["matrix"][a][b] == pytest.approx(0.0, abs=1e-9)


def test_the_defaults_validation_takes_the_cpu_only_path() -> None:
    got = published.from_defaults()
    for col in ("resnet50-amp", "bert-large-amp"):
        v = got[col]
        assert v["basis"].startswith("defaults")
        assert v["n_in_sample"] == 3 and v["n_out_of_sample"] == 8
        assert v["n_in_range"] == sum(r["in_range"] for r in v["rows"])
        for r in v["rows"]:
            assert r["low"] <= r["predicted"] <= r["high"]
            assert r["in_range"] == (r["low"] <= r["published"] <= r["high"])
            if r["in_sample"]:  # the priors reproduce their anchors (up to the kernel floor)
                assert abs(r["error"]) < 0.03, r
        v100 = next(r for r in v["rows"] if r["gpu_id"] == "v100-sxm2-16gb")
        assert v100["precision"] == "fp16"  # bf16 falls back to the V100's fp16 rate


def test_main_writes_both_validations(tmp_path: Path, capsys: object) -> None:
    out = tmp_path / "p.json"
    assert published.main(["--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["source"].startswith("Lambda")
    assert set(doc["from_defaults"]) == {"resnet50-amp", "bert-large-amp"}
    assert set(doc["calibrated"]) == set(published.COLUMNS)
    for v in doc["calibrated"].values():
        assert len(v["matrix"]) == 11
        for anchor, row in v["matrix"].items():
            assert anchor not in row and len(row) == 10
    text = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "| GPU | Lambda |" in text and "median abs" in text


def test_the_workload_table_is_what_the_workloads_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--recount: FLOPs, bytes and optimizer ops per sample counted on the meta device
    with the workloads' own models agree with the table the validations use."""
    pytest.importorskip("torch")
    assert published.main(["--recount"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(published.COLUMNS)
    assert all(line.endswith(": ok") for line in lines), lines
