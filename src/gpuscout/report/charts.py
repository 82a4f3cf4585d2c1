"""Charts as inline SVG, drawn by matplotlib (imported lazily, Agg/SVG backends only).

Each chart function returns the ``<svg>`` element as a string, ready to inline in HTML:
no XML prolog or doctype, no namespaces or links (the HTML parser knows SVG), no global
``<style>``, text kept as text (``svg.fonttype = none``) and ids salted per chart so two
charts never share one. Axis and label colour is ``currentColor``, so the page's light
or dark colour scheme carries into the charts. ``ChartUnavailable`` says why a chart
could not be drawn (matplotlib missing, nothing to plot); the page shows that instead.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from gpuscout.report import fmt
from gpuscout.report.document import Roof, Roofline, RooflinePoint, WorkloadRow

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from gpuscout.predict import Prediction, Projection

FG = "#262626"  # drawn in this, served as currentColor (see _inline)
GRID = "#8c8c8c"
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948")
SEGMENT_COLOURS = {"consumer": "#59a14f", "workstation": "#b07aa1", "datacenter": "#4e79a7"}
CPU_COLOUR = "#f28e2b"


class ChartUnavailable(Exception):
    """The chart cannot be drawn; the message is shown in its place."""


def label(text: str) -> str:
    """Text as matplotlib must receive it to print it verbatim: ``$`` would start math
    mode. Outside math mode matplotlib turns ``\\$`` back into ``$`` and leaves every
    other backslash alone, so backslashes must not be doubled here."""
    return str(text).replace("$", r"\$")


@contextmanager
def _figure(chart_id: str, width_in: float, height_in: float) -> Iterator[Figure]:
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ChartUnavailable("chart not drawn: matplotlib is not installed") from None
    style = {
        "svg.fonttype": "none",
        "svg.hashsalt": f"gpuscout-{chart_id}",  # ids unique per chart and reproducible
        "font.family": "sans-serif",
        "font.size": 9.5,
        "text.color": FG,
        "axes.labelcolor": FG,
        "axes.edgecolor": GRID,
        "xtick.color": FG,
        "ytick.color": FG,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": GRID,
        "grid.alpha": 0.35,
        "grid.linewidth": 0.6,
        "axes.titleweight": "bold",
        "axes.titlesize": 10.5,
        "axes.titlelocation": "left",
        "legend.frameon": False,
    }
    with matplotlib.rc_context():  # restores every setting changed below on the way out
        matplotlib.rcParams.update(cast(Any, style))  # typed keys: a plain dict is fine
        yield Figure(figsize=(width_in, height_in), layout="constrained")


def _inline(fig: Figure, title: str, chart_id: str) -> str:
    buf = io.StringIO()
    fig.savefig(
        buf,
        format="svg",
        transparent=True,
        metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
    )
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<style[^>]*>.*?</style>", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    head, rest = svg.split(">", 1)
    view = re.search(r'viewBox="[^"]*"', head)
    head = f'<svg {view.group(0) if view else ""} role="img" aria-label="{html.escape(title)}"'
    svg = head + ">" + rest
    svg = svg.replace("xlink:href=", "href=").replace(FG, "currentColor")
    # matplotlib numbers its groups per figure (figure_1, patch_1 ...): prefixed, every id
    # on the page is unique and each reference still finds its own chart's element.
    svg = re.sub(r'\bid="', f'id="{chart_id}-', svg)
    svg = svg.replace('href="#', f'href="#{chart_id}-').replace("url(#", f"url(#{chart_id}-")
    return svg


def _log_if_wide(ax: Axes, values: Sequence[float], axis: str = "x") -> None:
    pos = [v for v in values if v > 0]
    if pos and max(pos) / min(pos) > 30:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _device_colours(devices: Sequence[str]) -> dict[str, str]:
    gpus = [d for d in dict.fromkeys(devices) if d != "cpu"]
    out = {"cpu": CPU_COLOUR}
    others = [c for c in PALETTE if c != CPU_COLOUR]
    out.update({d: others[i % len(others)] for i, d in enumerate(gpus)})
    return out


def workload_chart(rows: Sequence[WorkloadRow]) -> str:
    """One panel per workload: each device's reference and tuned throughput as bars."""
    ok = [r for r in rows if r.status == "ok" and r.figure]
    groups: dict[tuple[str, str | None], list[WorkloadRow]] = {}
    for r in ok:
        groups.setdefault((r.workload, r.variant), []).append(r)
    if not groups:
        raise ChartUnavailable("no workload completed, so there is nothing to chart")
    colours = _device_colours([r.device for r in ok])
    sizes = [len(g) for g in groups.values()]
    with _figure("workloads", 8.6, 0.9 + 0.34 * sum(sizes) + 0.55 * len(groups)) as fig:
        axes = fig.subplots(len(groups), 1, squeeze=False, height_ratios=[s + 1.2 for s in sizes])
        for n, (ax, ((wl, variant), members)) in enumerate(
            zip(axes[:, 0], groups.items(), strict=True)
        ):
            _workload_panel(ax, n, f"{wl}{f' {variant}' if variant else ''}", members, colours)
        return _inline(
            fig, "Throughput per workload, CPU vs GPU, reference vs tuned", "c-workloads"
        )


def _workload_panel(
    ax: Axes, n: int, title: str, members: Sequence[WorkloadRow], colours: dict[str, str]
) -> None:
    """Panel ``n``: one bar per device and implementation, CPU first, reference paler."""
    members = sorted(members, key=lambda r: (r.device != "cpu", r.device, r.impl != "reference"))
    names = [label(f"{fmt.short_name(r.device, r.device_name)} · {r.impl}") for r in members]
    values = [float(r.figure or 0) for r in members]
    bars = ax.barh(
        range(len(members)), values, color=[colours[r.device] for r in members], height=0.7
    )
    for i, (bar, r) in enumerate(zip(bars, members, strict=True)):
        bar.set_alpha(0.55 if r.impl == "reference" else 1.0)
        bar.set_gid(f"mark-bar-{n}-{i}")  # the data marks, findable in the page
    ax.set_yticks(range(len(members)), names)
    ax.invert_yaxis()
    _log_if_wide(ax, values)
    ax.grid(axis="y", visible=False)
    top = max(values)
    ax.set_xlim(right=top * (6 if ax.get_xscale() == "log" else 1.22))
    for i, (v, r) in enumerate(zip(values, members, strict=True)):
        ax.text(v, i, "  " + label(_bar_label(v, r)), va="center", fontsize=8.5)
    ax.set_title(label(f"{title}  ·  {members[0].unit}, higher is better"))


def _bar_label(value: float, r: WorkloadRow) -> str:
    """The figure, and a GPU's speed-up over the CPU."""
    text = fmt.num(value)
    if r.speedup_vs_cpu and r.device != "cpu":
        text += f"  ({fmt.ratio(r.speedup_vs_cpu)} CPU)"
    return text


def _short(name: str) -> str:
    return fmt.short_name("gpu", name)


def _merge(points: Sequence[RooflinePoint]) -> list[tuple[RooflinePoint, str]]:
    """Points of one device that sit on top of each other share one label."""
    out: list[tuple[RooflinePoint, str]] = []
    for p in points:
        for i, (q, text) in enumerate(out):
            close = abs(math.log10(p.intensity / q.intensity)) < 0.06
            if (
                q.device == p.device
                and close
                and abs(math.log10(p.achieved_tflops / q.achieved_tflops)) < 0.12
            ):
                wl, impl = p.label.split()[0], " ".join(p.label.split()[1:])
                out[i] = (
                    q,
                    f"{text}, {impl}" if text.startswith(wl + " ") else f"{text}; {p.label}",
                )
                break
        else:
            out.append((p, p.label))
    return out


def roofline_chart(roof: Roofline) -> str:
    """Measured ceilings as the roof, each workload at its arithmetic intensity."""
    if not roof.points:
        why = "no workload result carries bytes_per_step, so none can be placed"
        raise ChartUnavailable(why)
    devices = [r.device for r in roof.roofs] + [p.device for p in roof.points]
    colours = _device_colours(devices)
    names = {r.device: fmt.short_name(r.device, r.device_name) for r in roof.roofs}
    xs = [p.intensity for p in roof.points]
    ridges = [r.ridge for r in roof.roofs]
    lo = 10 ** math.floor(math.log10(min([*xs, *ridges]) / 3))
    hi = 10 ** math.ceil(math.log10(max([*xs, *ridges]) * 3))
    ys = [p.achieved_tflops for p in roof.points] + [r.peak_tflops for r in roof.roofs]
    ylo, yhi = min(ys) / 5, max(ys) * 4
    with _figure("roofline", 8.6, 4.8) as fig:
        ax = fig.subplots()
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(ylo, yhi)
        seen: dict[str, int] = {}
        for r in roof.roofs:
            nth = seen.get(r.device, 0)
            seen[r.device] = nth + 1
            _draw_roof(ax, r, nth, colours[r.device], names, (lo, hi), ylo)
        _draw_points(ax, roof.points, colours)
        ax.legend(handles=_roofline_legend(devices, names, colours), loc="upper left", fontsize=8)
        ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
        ax.set_ylabel("TFLOPS achieved")
        ax.set_title("Roofline: each workload under this machine's measured roof")
        return _inline(fig, "Roofline chart of the measured workloads", "c-roofline")


def _draw_roof(
    ax: Axes,
    r: Roof,
    nth: int,
    c: str,
    names: dict[str, str],
    x_range: tuple[float, float],
    ylo: float,
) -> None:
    """The ``nth`` roof of its device (one line style each), its peak written at the right;
    the device's first roof also writes its bandwidth along the slope."""
    lo, hi = x_range
    style = ("-", "--", ":", "-.")[nth % 4]
    ax.plot(
        [lo, r.ridge, hi],
        [r.bandwidth_gbs * lo / 1000, r.peak_tflops, r.peak_tflops],
        color=c,
        linewidth=1.8,
        linestyle=style,
    )
    text = f"{names.get(r.device, r.device)} {r.precision}: {fmt.num(r.peak_tflops)} TFLOPS "
    ax.text(hi, r.peak_tflops, label(text), ha="right", va="bottom", fontsize=8.5, color=c)
    if nth != 0:
        return
    x0 = max(lo * 1.5, ylo * 3 * 1000 / r.bandwidth_gbs)
    y0 = r.bandwidth_gbs * x0 / 1000
    p0 = ax.transData.transform((x0, y0))
    p1 = ax.transData.transform((x0 * 10, y0 * 10))
    angle = math.degrees(math.atan2(p1[1] - p0[1], p1[0] - p0[0]))
    ax.text(
        x0,
        y0 * 1.25,
        label(f"{fmt.num(r.bandwidth_gbs)} GB/s"),
        rotation=angle,
        rotation_mode="anchor",
        fontsize=8,
        color=c,
    )


def _draw_points(ax: Axes, points: Sequence[RooflinePoint], colours: dict[str, str]) -> None:
    """Each workload as a dot (tuned), a square (reference) or a triangle, then the labels
    (shared by points on top of each other)."""
    markers = {"tuned": "o", "reference": "s"}
    for i, p in enumerate(points):
        impl = p.label.split()[1] if len(p.label.split()) > 1 else ""
        dot = ax.scatter(
            [p.intensity],
            [p.achieved_tflops],
            s=48,
            marker=markers.get(impl, "^"),
            color=colours[p.device],
            edgecolors=FG,
            linewidths=0.6,
            zorder=3,
        )
        dot.set_gid(f"mark-point-{i}")
    for p, text in _merge(points):
        ax.annotate(
            label(text),
            (p.intensity, p.achieved_tflops),
            xytext=(7, -3),
            textcoords="offset points",
            fontsize=8,
        )


def _roofline_legend(
    devices: Sequence[str], names: dict[str, str], colours: dict[str, str]
) -> list[Any]:
    """A line per device with a roof, then what the markers mean."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=colours[d], linewidth=2, label=label(names.get(d, d)))
        for d in dict.fromkeys(devices)
        if d in names
    ]
    handles += [
        Line2D([], [], color=FG, marker="o", linestyle="", label="tuned"),
        Line2D([], [], color=FG, marker="s", linestyle="", label="reference"),
    ]
    return handles


def chosen_projections(pred: Prediction) -> dict[str, list[Projection]]:
    """Per workload, the projections of one measured result (the tuned one if present)."""
    by_result: dict[tuple[str, str], list[Projection]] = {}
    for p in pred.projections:
        group = by_result.setdefault((p.workload, p.result_name), [])
        if all((q.gpu_id, q.gpus) != (p.gpu_id, p.gpus) for q in group):
            group.append(p)
    out: dict[str, list[Projection]] = {}
    for (wl, name), group in by_result.items():
        if wl not in out or (
            "tuned" in name and not any("tuned" in q.result_name for q in out[wl])
        ):
            out[wl] = group
    return out


def throughput_range(p: Projection) -> tuple[float, float]:
    """Throughput's low and high ends from the step-time range."""
    lo = p.throughput * p.step_s / p.step_high_s if p.step_high_s > 0 else p.throughput
    hi = p.throughput * p.step_s / p.step_low_s if p.step_low_s > 0 else p.throughput
    return min(lo, p.throughput), max(hi, p.throughput)


def speed_range(p: Projection) -> tuple[float, float, float] | None:
    """(low, likely, high) speed-up over the measured device, or None when unknown."""
    if p.speedup is None or p.speedup <= 0:
        return None
    lo, hi = throughput_range(p)
    scale = p.speedup / p.throughput if p.throughput else 0.0
    return lo * scale, p.speedup, hi * scale


def gpu_order(groups: dict[str, list[Projection]]) -> list[tuple[str, int, str, str]]:
    """(gpu id, count, name, segment) of every projected GPU, fastest first."""
    best: dict[tuple[str, int], float] = {}
    info: dict[tuple[str, int], tuple[str, str]] = {}
    for projs in groups.values():
        for p in projs:
            key = (p.gpu_id, p.gpus)
            best[key] = max(best.get(key, 0.0), p.speedup or 0.0)
            info[key] = (p.gpu_name, p.segment)
    keys = sorted(best, key=lambda k: -best[k])
    return [(k[0], k[1], *info[k]) for k in keys]


def prediction_chart(pred: Prediction) -> str:
    """Every GPU on one axis: each workload's projected speed-up over the device measured
    here, the likely figure as a dot and the range as a whisker; 1x is what you have."""
    groups = chosen_projections(pred)
    order = gpu_order(groups)
    if not groups or not any(speed_range(p) for ps in groups.values() for p in ps):
        raise ChartUnavailable("no projection with a speed-up to chart")
    row = {(gid, n): i for i, (gid, n, _, _) in enumerate(reversed(order))}
    k = len(groups)
    with _figure("predictions", 8.6, 1.4 + 0.36 * len(order)) as fig:
        ax = fig.subplots()
        ax.set_xscale("log")
        for j, (wl, projs) in enumerate(groups.items()):
            colour = PALETTE[j % len(PALETTE)]
            offset = (j - (k - 1) / 2) * min(0.22, 0.8 / k)
            xs, ys, lo, hi, out_x, out_y = [], [], [], [], [], []
            for p in projs:
                r = speed_range(p)
                if r is None:
                    continue
                y = row[(p.gpu_id, p.gpus)] + offset
                if p.fits is False:
                    out_x.append(r[1])
                    out_y.append(y)
                    continue
                xs.append(r[1])
                ys.append(y)
                lo.append(r[1] - r[0])
                hi.append(r[2] - r[1])
            unit = f"{projs[0].throughput_unit}, {projs[0].precision}"
            bars = ax.errorbar(
                xs,
                ys,
                xerr=[lo, hi],
                fmt="o",
                color=colour,
                markersize=5.5,
                elinewidth=1.6,
                capsize=2.5,
                label=label(f"{wl} ({unit})"),
            )
            bars.lines[0].set_gid(f"mark-point-{j}")
            for col in bars.lines[2]:
                col.set_gid(f"mark-range-{j}")
            if out_x:
                ax.scatter(out_x, out_y, marker="x", color=GRID, s=30, zorder=3)
        ax.axvline(1.0, color=CPU_COLOUR, linestyle="--", linewidth=1.3)
        ax.text(
            1.0,
            -0.55,
            label(f" 1x = {_short(pred.measured_on)}"),
            fontsize=8,
            color=CPU_COLOUR,
            va="bottom",
        )
        names = [
            label(_short(name) + (f" x{n}" if n > 1 else "")) for _, n, name, _ in reversed(order)
        ]
        ax.set_yticks(range(len(order)), names)
        ax.set_ylim(-0.6, len(order) - 0.1)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("projected speed vs this machine (x, log scale); x marks: does not fit")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(k, 4), fontsize=8.5)
        ax.set_title("Other GPUs: projected speed-up per workload, with its range")
        return _inline(fig, "Projected speed-up across GPUs with ranges", "c-predictions")


def chart_or_note(fn: Any, *args: Any) -> tuple[str | None, str | None]:
    """(svg, None) or (None, why it was not drawn); never raises."""
    try:
        return fn(*args), None
    except ChartUnavailable as exc:
        return None, str(exc)
    except Exception as exc:  # a plotting bug costs one chart, not the report
        return None, f"chart not drawn: {type(exc).__name__}: {exc}"
