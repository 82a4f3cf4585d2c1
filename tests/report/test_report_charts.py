"""What the workload and roofline charts draw: which bars and points, in which order and
colour, with which words (read back from the SVG's text, kept as text)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("matplotlib")

from gpuscout.report.charts import ChartUnavailable, roofline_chart, workload_chart
from gpuscout.report.document import Roof, Roofline, RooflinePoint, WorkloadRow

H100 = "NVIDIA H100 80GB HBM3"


def row(
    workload: str,
    device: str,
    impl: str,
    figure: float | None,
    *,
    variant: str | None = None,
    speedup: float | None = None,
    status: str = "ok",
) -> WorkloadRow:
    name = H100 if device.startswith("cuda") else "AMD EPYC 7763"
    return WorkloadRow(
        workload,
        variant,
        device,
        name,
        impl,
        figure,
        "img/s",
        status,
        None,
        None,
        None,
        None,
        speedup_vs_cpu=speedup,
    )


def texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def marks(svg: str) -> list[str]:
    return re.findall(r'id="[^"]*-(mark-[^"]*)"', svg)


def bar_style(svg: str, mark: str) -> str:
    found = re.search(rf'<g id="c-workloads-{mark}">\s*<path[^>]*style="([^"]*)"', svg)
    assert found is not None, mark
    return found.group(1)


def test_each_workload_gets_a_panel_cpu_first_reference_before_tuned() -> None:
    svg = workload_chart(
        [
            row("cnn", "cuda:0", "tuned", 5000, speedup=50.0),
            row("cnn", "cpu", "reference", 100, speedup=1.0),
            row("cnn", "cuda:0", "reference", 4000, speedup=40.0),
            row("llm", "cpu", "tuned", 10, variant="decode-b1"),
            row("llm", "cuda:0", "tuned", None, variant="decode-b1"),  # no figure: no bar
            row("mlp", "cuda:0", "tuned", 80, status="failed"),  # failed: no panel
        ]
    )
    assert 'aria-label="Throughput per workload, CPU vs GPU, reference vs tuned"' in svg
    words = [t for t in texts(svg) if "·" in t or t.startswith("  ")]  # not tick labels
    assert words == [
        "CPU · reference",
        "H100 80GB HBM3 · reference",
        "H100 80GB HBM3 · tuned",
        "  100",  # the CPU's own speed-up is not written
        "  4,000  (40x CPU)",
        "  5,000  (50x CPU)",
        "cnn  ·  img/s, higher is better",
        "CPU · tuned",
        "  10.0",
        "llm decode-b1  ·  img/s, higher is better",
    ]
    assert marks(svg) == ["mark-bar-0-0", "mark-bar-0-1", "mark-bar-0-2", "mark-bar-1-0"]
    # the CPU in its colour, every GPU in the palette's; reference bars paler
    assert bar_style(svg, "mark-bar-0-0") == "fill: #f28e2b; opacity: 0.55"
    assert bar_style(svg, "mark-bar-0-1") == "fill: #4e79a7; opacity: 0.55"
    assert bar_style(svg, "mark-bar-0-2") == "fill: #4e79a7"
    assert bar_style(svg, "mark-bar-1-0") == "fill: #f28e2b"


def test_gpus_take_the_palette_in_the_order_they_first_appear() -> None:
    svg = workload_chart([row("cnn", "cuda:1", "tuned", 20), row("cnn", "cuda:0", "tuned", 10)])
    # bars sorted by device (cuda:0 first); cuda:1 came first, so it has the first colour
    assert [bar_style(svg, m) for m in marks(svg)] == ["fill: #59a14f", "fill: #4e79a7"]


def test_without_a_completed_workload_there_is_no_chart() -> None:
    with pytest.raises(ChartUnavailable, match=r"^no workload completed, so there is nothing"):
        workload_chart([row("cnn", "cpu", "tuned", 10, status="failed"), row("x", "cpu", "t", 0)])


def test_the_roofline_draws_each_roof_and_point_with_its_words() -> None:
    roof = Roofline(
        (
            Roof("cuda:0", H100, "bf16", 989.0, 3350.0, "measured"),
            Roof("cuda:0", H100, "fp32", 60.0, 3350.0, "measured"),
            Roof("cpu", "AMD EPYC 7763", "fp32", 2.0, 100.0, "catalog"),
        ),
        (
            RooflinePoint("cnn tuned", "cuda:0", "bf16", 50.0, 300.0),
            RooflinePoint("cnn reference", "cuda:0", "bf16", 52.0, 290.0),  # on top: merged
            RooflinePoint("llm tuned", "cpu", "fp32", 1.0, 0.05),
            RooflinePoint("mlp", "cpu", "fp32", 3.0, 0.5),
        ),
    )
    svg = roofline_chart(roof)
    assert 'aria-label="Roofline chart of the measured workloads"' in svg
    assert texts(svg) == [
        "arithmetic intensity (FLOP per byte moved)",
        "TFLOPS achieved",
        "H100 80GB HBM3 bf16: 989 TFLOPS ",
        "3,350 GB/s",  # one bandwidth label per device, with its first roof
        "H100 80GB HBM3 fp32: 60.0 TFLOPS ",
        "CPU fp32: 2.00 TFLOPS ",
        "100 GB/s",
        "cnn tuned, reference",
        "llm tuned",
        "mlp",
        "Roofline: each workload under this machine's measured roof",
        "H100 80GB HBM3",  # the legend: devices, then the markers
        "CPU",
        "tuned",
        "reference",
    ]
    assert marks(svg) == [f"mark-point-{i}" for i in range(4)]


def test_a_roofline_without_points_is_not_drawn() -> None:
    roofs = (Roof("cpu", "AMD EPYC 7763", "fp32", 2.0, 100.0, "catalog"),)
    with pytest.raises(ChartUnavailable) as exc:
        roofline_chart(Roofline(roofs, ()))
    assert str(exc.value) == "no workload result carries bytes_per_step, so none can be placed"
