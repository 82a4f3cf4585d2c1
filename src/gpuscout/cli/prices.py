"""``gpuscout prices``: the prices gpuscout knows, with dates, sources and a stale marker,
and ``gpuscout prices import FILE`` to take a price list of one's own."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from gpuscout import jobs
from gpuscout.cli._common import JsonOpt, console, err_console, fail, fail_from, print_json
from gpuscout.errors import GpuscoutError

HELP = (
    "List GPU prices (street new/used, cloud offers cheapest first, free tiers) with the "
    "date each was seen, its source and a stale marker (older than 90 days). "
    "`gpuscout prices GPU` shows one GPU; `gpuscout prices import FILE` merges a CSV, JSON "
    "or TOML price list into prices.toml in the data directory, where it overrides the "
    "shipped prices."
)


def register(app: typer.Typer) -> None:
    app.command("prices", help=HELP, short_help="List GPU prices or import your own.")(
        prices_command
    )


def prices_command(
    words: list[str] | None = typer.Argument(
        None,
        help='A GPU id or name ("3090", "h100 sxm"), or: import FILE.',
        show_default=False,
    ),
    price: list[str] | None = typer.Option(
        None,
        "--price",
        help="Your own street price for this listing: GPU=USD (new) or GPU:used=USD. Repeatable.",
        show_default=False,
    ),
    json_out: bool = JsonOpt,
) -> None:
    args = list(words or [])
    try:
        if args and args[0] == "import":
            if len(args) != 2:
                fail("prices import takes one FILE", "e.g. gpuscout prices import my-prices.csv")
            if price:
                fail("--price goes with listing prices, not with import")
            _import(Path(args[1]), json_out)
            return
        options = jobs.PricesOptions(gpu=" ".join(args) or None, overrides=tuple(price or ()))
        listing = jobs.prices(options)
    except GpuscoutError as exc:
        fail_from(exc)
    if json_out:
        print_json(listing)
    else:
        _show(listing)


def _import(path: Path, json_out: bool) -> None:
    out = jobs.import_prices(path)
    if json_out:
        print_json(out)
        return
    console.print(
        f"{out.rows} price(s) from {out.source}: {len(out.added)} added, "
        f"{len(out.replaced)} replaced; {out.user_file} now holds {out.total}."
    )


def _usd(p: jobs.PriceRow) -> str:
    r = p.price
    unit = "" if r.is_street else "/GPU-h"
    if r.is_free:
        return "free"
    low = f"${r.usd:,.0f}" if r.is_street else f"${r.usd:.2f}"
    if r.usd_high is None:
        return low + unit
    high = f"${r.usd_high:,.0f}" if r.is_street else f"${r.usd_high:.2f}"
    return f"{low}-{high}{unit}"


def _seen(p: jobs.PriceRow) -> str:
    return f"{p.price.date_seen} (stale)" if p.stale else p.price.date_seen


def _table(title: str, headers: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold", no_wrap=header in ("gpu", "price"))
    return table


def _show(listing: jobs.PriceListing) -> None:
    if listing.gpu is not None and listing.gpu.launch_price_usd is not None:
        console.print(f"{listing.gpu.name}: launch price ${listing.gpu.launch_price_usd:,.0f}")
    sections = (
        (
            "Street prices (one card)",
            listing.street,
            ("gpu", "kind", "price", "seen", "from", "source"),
        ),
        (
            "Cloud offers (cheapest first)",
            listing.cloud,
            ("gpu", "kind", "provider", "price", "billing", "seen", "from", "source"),
        ),
        ("Free tiers", listing.free, ("gpu", "provider", "GPUs", "quota", "seen", "source")),
    )
    shown = False
    for title, rows, all_headers in sections:
        if not rows:
            continue
        shown = True
        # one GPU: its id on every row says nothing
        headers = tuple(h for h in all_headers if listing.gpu is None or h != "gpu")
        table = _table(title, headers)
        for p in rows:
            table.add_row(*_cells(p, headers))
        console.print(table)
    if not shown:
        console.print("No prices recorded for this GPU.")
    console.print(
        f"[dim]today {listing.today}; stale = seen over {listing.stale_days} days ago. "
        f"Your own prices: {listing.user_file} (gpuscout prices import FILE).[/]"
    )
    for warning in listing.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)


def _cells(p: jobs.PriceRow, headers: tuple[str, ...]) -> list[str]:
    r = p.price
    billing = r.billing or "n/a"
    if r.min_billing_s:
        billing += f", min {r.min_billing_s:g} s"
    values = {
        "gpu": r.gpu_id,
        "kind": r.kind,
        "provider": r.provider,
        "price": _usd(p),
        "billing": billing,
        "seen": _seen(p),
        "from": r.origin,
        "source": r.source,
        "GPUs": str(r.gpus),
        "quota": r.quota,
    }
    return [values[h] for h in headers]
