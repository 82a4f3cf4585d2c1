"""Small HTML pieces the report's sections share; every text goes through ``e()``."""

from __future__ import annotations

import html as _html
from collections.abc import Iterable, Sequence
from typing import Any

from gpuscout.report import fmt
from gpuscout.report.document import Unavailable


def e(value: Any) -> str:
    return _html.escape("" if value is None else str(value), quote=True)


def num_cell(text: str, unit: str = "") -> str:
    u = f' <span class="unit">{e(unit)}</span>' if unit else ""
    return f'<td class="num">{e(text)}{u}</td>'


def table(head: Sequence[str], rows: Iterable[str], numeric: Sequence[int] = ()) -> str:
    cells = "".join(
        f'<th class="num">{e(h)}</th>' if i in numeric else f"<th>{e(h)}</th>"
        for i, h in enumerate(head)
    )
    return table_html(cells, rows)


def table_html(head_cells: str, rows: Iterable[str]) -> str:
    """A table whose header cells are already HTML (each text in them through ``e()``)."""
    return (
        f'<div class="scroll"><table><thead><tr>{head_cells}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def unavailable(section: Unavailable) -> str:
    return f'<div class="unavailable">could not compute: {e(section.reason)}</div>'


def none(text: str) -> str:
    return f'<div class="unavailable">{e(text)}</div>'


def chart(svg: str | None, note: str | None) -> str:
    if svg is not None:
        return f'<div class="chart">{svg}</div>'
    return f'<div class="unavailable">{e(note)}</div>'


def card(anchor: str, title: str, body: str, lead: str = "") -> str:
    lead_html = f'<p class="lead">{e(lead)}</p>' if lead else ""
    return f'<section class="card" id="{anchor}"><h2>{e(title)}</h2>{lead_html}{body}</section>'


def pill(status: str) -> str:
    return f'<span class="pill {e(status)}">{e(status)}</span>'


def meter(fraction: float | None) -> str:
    if fraction is None:
        return ""
    width = max(0.0, min(fraction, 1.0)) * 100
    over = ' class="over"' if fraction > 1.02 else ""
    return f'<span class="meter"><span{over} style="width:{width:.0f}%"></span></span>'


def device(device: str, name: str) -> str:
    if device == "cpu":
        return f"CPU <span class='muted small nowrap'>{e(fmt.short_cpu(name))}</span>"
    return f"{e(fmt.short_name(device, name))} <span class='muted small'>{e(device)}</span>"


def assumptions(items: Sequence[str], title: str = "Assumptions") -> str:
    if not items:
        return ""
    lis = "".join(f"<li>{e(a)}</li>" for a in items)
    return f"<details><summary>{e(title)} ({len(items)})</summary><ul>{lis}</ul></details>"
