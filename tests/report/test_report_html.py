"""The HTML page: self-contained, escaped, charts inline, broken sections contained."""

from __future__ import annotations

import builtins
import re
from typing import Any

import pytest

from gpuscout import Finding, Status
from gpuscout.report import Unavailable, build_report, render
from gpuscout.report.html import render_html
from gpuscout.store import Store
from helpers.report_sample import fill_store, fingerprint

HOSTILE = "<script>alert(1)</script>"


def _section(page: str, anchor: str) -> str:
    start = page.index(f'id="{anchor}"')
    end = page.find("<section", start)
    return page[start : end if end != -1 else len(page)]


@pytest.fixture(scope="module")
def page() -> str:
    store = Store(":memory:")
    fill_store(store)
    return render(build_report(store), "html")


def test_the_page_is_one_self_contained_document(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", page), (
        "a link to something outside the page"
    )
    assert "<link" not in page and "@import" not in page
    assert not re.search(r"url\((?!#)", page), "a url() that is not a reference inside the page"
    assert "http://" not in page and "https://" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_charts_are_inline_svg_without_prolog_or_global_style(page: str) -> None:
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    for anchor in ("workloads", "roofline"):
        section = _section(page, anchor)
        assert section.count("<svg") == 1, anchor
    assert "stroke-linejoin: round; stroke-linecap" not in page  # matplotlib's `*{}` rule
    assert "currentColor" in page  # axis text follows the page's colour scheme
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "two elements share an id"


def test_sections_show_the_figures(page: str) -> None:
    assert "2,480,000" in _section(page, "workloads")
    ceilings = _section(page, "ceilings")
    assert "705" in ceilings and "71%" in ceilings  # 705 of 989.5 TFLOPS
    assert "gpu.memory" in _section(page, "machine")  # the warning is shown with its fix
    assert "nvidia-smi --query-compute-apps" in _section(page, "machine")


def test_machine_and_user_strings_are_escaped() -> None:
    store = Store(":memory:")
    fill_store(store, gpu_name=HOSTILE, host=f"host{HOSTILE}")
    with store.run("doctor", fingerprint(HOSTILE, host=f"host{HOSTILE}")) as run:
        run.add_findings(
            [
                Finding(
                    f"x{HOSTILE}",
                    Status.FAIL,
                    HOSTILE,
                    detail=f"a{HOSTILE}",
                    fix=f"'\"&{HOSTILE}",
                    subject=HOSTILE,
                )
            ]
        )
    page = render(build_report(store), "html")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#x27;&quot;&amp;" in page  # quotes and ampersands too
    assert _section(page, "workloads").count("<svg") == 1  # the chart still drew the name


def test_dollar_signs_in_names_do_not_break_the_charts() -> None:
    store = Store(":memory:")
    fill_store(store, gpu_name="GPU $x^2$ \\alpha")
    page = render(build_report(store), "html")
    assert _section(page, "workloads").count("<svg") == 1
    assert "$x^2$" in page


def test_a_section_that_could_not_be_computed_says_why() -> None:
    store = Store(":memory:")
    fill_store(store)
    report = build_report(store, forecast=False)
    from dataclasses import replace

    page = render_html(replace(report, roofline=Unavailable("ValueError: <bad> data")))
    assert "could not compute: ValueError: &lt;bad&gt; data" in _section(page, "roofline")
    assert _section(page, "workloads").count("<svg") == 1


def test_without_matplotlib_the_report_renders_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    store = Store(":memory:")
    fill_store(store)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    page = render(build_report(store, forecast=False), "html")
    assert "<svg" not in page
    assert _section(page, "workloads").count("matplotlib is not installed") == 1
    assert "2,480,000" in page  # the tables are still there


def test_a_cpu_only_run_has_no_gpu_chart_parts_but_renders() -> None:
    store = Store(":memory:")
    fill_store(store, gpu=False)
    page = render(build_report(store), "html")
    assert "no GPU measured" in page
    assert _section(page, "workloads").count("<svg") == 1


def test_backslashes_in_names_reach_the_chart_as_they_are() -> None:
    store = Store(":memory:")
    fill_store(store, gpu_name="GPU \\alpha $5")
    chart = _section(render(build_report(store, forecast=False), "html"), "workloads")
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", chart)
    assert "GPU \\alpha $5 · tuned" in labels
    assert not any("\\\\" in text for text in labels)  # never doubled


def test_fit_marks_say_how_large_a_batch_fits() -> None:
    from gpuscout.fit.on_gpu import MAX_BATCH
    from gpuscout.report import fmt

    assert fmt.fit_mark(False, None) == "no"
    assert fmt.fit_mark(True, None) == "yes"
    assert fmt.fit_mark(True, 64) == "batch ≤64"
    assert fmt.fit_mark(True, MAX_BATCH) == "any batch"  # the search's cap, not a limit
