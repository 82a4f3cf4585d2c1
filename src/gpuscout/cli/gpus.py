"""``gpuscout gpus``: the GPU catalog as a table, or one GPU's full record and cloud prices."""

from __future__ import annotations

import typer
from rich import box
from rich.console import JustifyMethod
from rich.table import Table

from gpuscout import jobs
from gpuscout.catalog import CloudPrice, GpuSpec
from gpuscout.cli._common import JsonOpt, console, fail_from, print_json
from gpuscout.errors import GpuscoutError

NA = "n/a"

HELP = (
    "List the GPU catalog (published specs, dense tensor TFLOPS, launch prices), "
    "or show one GPU's full record and the cloud prices seen for it."
)


def register(app: typer.Typer) -> None:
    app.command("gpus", help=HELP, short_help="List catalog GPUs or show one GPU's specs.")(
        gpus_command
    )


def gpus_command(
    name: str | None = typer.Argument(
        None,
        help='A GPU id or name: "4090", "RTX 4090", "h100-sxm5-80gb", "NVIDIA L4".',
        show_default=False,
    ),
    segment: str | None = typer.Option(
        None, "--segment", help="Only list consumer, workstation or datacenter GPUs."
    ),
    json_out: bool = JsonOpt,
) -> None:
    try:
        out = jobs.catalog(name, segment)
    except GpuscoutError as exc:
        fail_from(exc)
    if name is None:
        if json_out:
            print_json(out.gpus)
        else:
            _list(out.gpus)
    elif json_out:
        print_json({"gpu": out.gpus[0], "cloud_prices": out.cloud_prices})
    else:
        _show(out.gpus[0], out.cloud_prices)


def _num(value: float | None, unit: str = "") -> str:
    """Figures as the datasheets print them: 82.6, 989.5, 3,350; None as n/a."""
    if value is None:
        return NA
    text = f"{value:,.0f}" if value >= 1000 else f"{value:g}"
    return f"{text} {unit}".rstrip()


def _list(specs: tuple[GpuSpec, ...]) -> None:
    table = Table(
        title="GPU catalog",
        caption="GB: memory. GB/s: memory bandwidth. FP32, BF16, FP8: peak TFLOPS, BF16 and "
        "FP8 dense tensor rates (no sparsity). W: TDP. USD: launch price. n/a: not supported "
        "or not published. `gpuscout gpus ID` shows one GPU with sources and cloud prices.",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    # Ids are what users type next, so they must never wrap; on a narrow terminal the
    # name and segment columns go rather than squeezing every column into a mess.
    wide = console.width >= 120
    columns: list[tuple[str, JustifyMethod]] = [("id", "left")]
    if wide:
        columns += [("name", "left"), ("segment", "left")]
    columns += [
        ("GB", "right"),
        ("GB/s", "right"),
        ("FP32", "right"),
        ("BF16", "right"),
        ("FP8", "right"),
        ("W", "right"),
        ("USD", "right"),
    ]
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=header != "name")
    for g in specs:
        figures = [
            _num(g.memory_gb),
            _num(g.memory_bandwidth_gbs),
            _num(g.fp32_tflops),
            _num(g.bf16_tensor_tflops),
            _num(g.fp8_tensor_tflops),
            _num(g.tdp_w),
            _num(g.launch_price_usd),
        ]
        table.add_row(g.id, *([g.name, g.segment] if wide else []), *figures)
    console.print(table)


def _show(g: GpuSpec, prices: tuple[CloudPrice, ...]) -> None:
    nvlink = "no"
    if g.nvlink:
        nvlink = (
            "yes" if g.nvlink_bandwidth_gbs is None else f"yes, {_num(g.nvlink_bandwidth_gbs)} GB/s"
        )
    rows = [
        ("id", g.id),
        ("vendor", g.vendor),
        ("segment", g.segment),
        ("architecture", g.architecture),
        ("compute capability", g.compute_capability or NA),
        ("released", str(g.release_year)),
        ("memory", f"{_num(g.memory_gb)} GB {g.memory_type}"),
        ("memory bandwidth", _num(g.memory_bandwidth_gbs, "GB/s")),
        ("FP64", _num(g.fp64_tflops, "TFLOPS")),
        ("FP32", _num(g.fp32_tflops, "TFLOPS")),
        ("TF32 tensor (dense)", _num(g.tf32_tensor_tflops, "TFLOPS")),
        ("FP16 tensor (dense)", _num(g.fp16_tensor_tflops, "TFLOPS")),
        ("BF16 tensor (dense)", _num(g.bf16_tensor_tflops, "TFLOPS")),
        ("FP8 tensor (dense)", _num(g.fp8_tensor_tflops, "TFLOPS")),
        ("INT8 tensor (dense)", _num(g.int8_tensor_tops, "TOPS")),
        ("TDP", _num(g.tdp_w, "W")),
        ("PCIe", NA if g.pcie_gen is None else f"gen {g.pcie_gen}"),
        ("NVLink", nvlink),
        ("ECC", "yes" if g.ecc else "no"),
        ("form factor", g.form_factor),
        ("launch price", NA if g.launch_price_usd is None else f"${_num(g.launch_price_usd)}"),
        ("also reported as", ", ".join(g.aliases) or "-"),
        ("note", g.note or "-"),
        ("sources", "\n".join(g.source)),
    ]
    table = Table(title=g.name, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for field, value in rows:
        table.add_row(field, value)
    console.print(table)

    if not prices:
        console.print("No cloud prices recorded for this GPU.")
        return
    ptable = Table(title="Cloud prices (on-demand; prices move, check the date)")
    for header in ("provider", "sku", "GPUs", "$/GPU-hour", "seen", "source"):
        ptable.add_column(header, overflow="fold")
    for p in prices:
        ptable.add_row(
            p.provider, p.sku, str(p.gpus), f"{p.usd_per_gpu_hour:.2f}", p.date_seen, p.source
        )
    console.print(ptable)
