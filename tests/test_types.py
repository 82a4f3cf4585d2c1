"""The one ``Ceiling``: what one device can do, measured or from a datasheet."""

from __future__ import annotations

import dataclasses

import pytest

from gpuscout._types import Ceiling, to_jsonable


def test_an_empty_ceiling_knows_nothing() -> None:
    c = Ceiling()
    assert (c.tflops, c.bandwidth_gbs, c.pcie_gbs, c.launch_s, c.source) == (
        {},
        None,
        None,
        None,
        "",
    )
    assert c.source_of("tflops") == "" and c.source_of("launch_s") == ""


def test_figures_are_keywords_only() -> None:
    with pytest.raises(TypeError):
        Ceiling({"fp32": 1.0}, 30.0)  # type: ignore[call-arg]


def test_a_figure_names_its_own_source_where_it_has_one() -> None:
    c = Ceiling(
        tflops={"bf16": 700.0},
        bandwidth_gbs=3000.0,
        launch_s=8e-6,
        source="measured (run 7)",
        sources={"bandwidth_gbs": "catalog datasheet (h100)"},
    )
    assert c.source_of("tflops") == "measured (run 7)"
    assert c.source_of("launch_s") == "measured (run 7)"
    assert c.source_of("bandwidth_gbs") == "catalog datasheet (h100)"
    assert c.source_of("pcie_gbs") == ""  # unknown: no source


def test_merged_fills_each_missing_figure_from_the_fallback_with_its_source() -> None:
    measured = Ceiling(tflops={"bf16": 700.0}, launch_s=5e-6, source="measured")
    sheet = Ceiling(
        tflops={"bf16": 989.0, "fp32": 67.0},
        bandwidth_gbs=3350.0,
        pcie_gbs=63.0,
        launch_s=9e-6,
        source="catalog",
    )
    m = measured.merged(sheet)
    assert m.tflops == {"bf16": 700.0, "fp32": 67.0}
    assert (m.bandwidth_gbs, m.pcie_gbs, m.launch_s) == (3350.0, 63.0, 5e-6)
    assert m.source_of("tflops") == "measured; others catalog"
    assert m.source_of("launch_s") == "measured"
    assert m.source_of("bandwidth_gbs") == "catalog" and m.source_of("pcie_gbs") == "catalog"
    assert m.source == "measured; others catalog"
    assert measured.merged(Ceiling(pcie_gbs=63.0)).source == "measured"  # nothing to name


def test_merged_with_one_source_keeps_it_whole() -> None:
    sheet = Ceiling(tflops={"fp32": 67.0}, bandwidth_gbs=3350.0, source="catalog")
    m = Ceiling().merged(sheet)
    assert m == sheet
    assert Ceiling(source="no host probe").merged(Ceiling()) == Ceiling(source="no host probe")


def test_a_ceiling_is_frozen_and_stores_as_plain_json() -> None:
    c = Ceiling(tflops={"fp32": 1.5}, pcie_gbs=31.5, source="catalog:x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.source = "other"  # type: ignore[misc]
    assert to_jsonable(c) == {
        "tflops": {"fp32": 1.5},
        "bandwidth_gbs": None,
        "pcie_gbs": 31.5,
        "launch_s": None,
        "source": "catalog:x",
        "sources": {},
    }
