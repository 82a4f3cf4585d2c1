"""Multi-GPU boxes: data-parallel training on N GPUs of one kind.

Each GPU runs the measured per-GPU batch (weak scaling, as DDP and Lambda's multi-GPU
table do), so one step takes the single-GPU step plus the communication it cannot hide:

    DDP (ZeRO 0):  all-reduce of the fp32 gradients, 2 (N-1)/N x 4 P bytes per GPU
    FSDP (ZeRO 3): all-gather of the weights in forward and backward and a reduce-scatter
                   of the gradients, 3 (N-1)/N x P bytes x the compute element size

over the link's per-direction bandwidth x ``LINK_EFFICIENCY`` (nccl-tests' bus
bandwidth convention), plus ``LINK_LATENCY_S`` per ring step per bucket. DDP starts a
bucket's all-reduce as soon as its gradients are ready, so communication overlaps the
backward pass (``BACKWARD_SHARE`` of the device step); FSDP prefetches, so it overlaps
the whole step. The last bucket never overlaps. The link: NVLink where the catalog
says so and every GPU of the box can be on it (SXM/OAM boards; a PCIe card's NVLink
bridge joins pairs only), else PCIe of the catalog's generation, x16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gpuscout.catalog import GpuSpec
from gpuscout.predict import defaults as d


@dataclass(frozen=True)
class Link:
    gbs: float  # per direction, GB/s
    name: str


def link(spec: GpuSpec, n: int) -> Link:
    board = spec.form_factor in ("sxm", "oam", "superchip")
    if spec.nvlink and spec.nvlink_bandwidth_gbs and (board or n == 2):
        return Link(spec.nvlink_bandwidth_gbs / 2, f"NVLink ({spec.nvlink_bandwidth_gbs:g} GB/s)")
    gen = spec.pcie_gen or d.DEFAULT_PCIE_GEN
    return Link(d.PCIE_X16_GBS.get(gen, d.PCIE_X16_GBS[d.DEFAULT_PCIE_GEN]), f"PCIe gen{gen} x16")


def max_box(spec: GpuSpec) -> int:
    """The most GPUs of this kind one machine takes: a desktop tower four double-slot
    cards, a server eight; an SoC (Apple) only itself."""
    if spec.form_factor == "soc":
        return 1
    return 8 if spec.segment == "datacenter" else 4


def supports_boxes(spec: GpuSpec) -> bool:
    return max_box(spec) > 1


@dataclass(frozen=True)
class Comm:
    total_s: float  # all of one step's collectives
    exposed_s: float  # what the step waits for
    link: Link


def comm(
    params: int, n: int, spec: GpuSpec, device_s: float, *, zero: int = 0, elem_bytes: int = 2
) -> Comm:
    """Gradient (or weight) communication of one data-parallel step on ``n`` GPUs."""
    ln = link(spec, n)
    if n < 2:
        return Comm(0.0, 0.0, ln)
    if zero >= 3:
        size = params * elem_bytes
        volume, collectives, window = 3 * (n - 1) / n * size, 3, device_s
    else:
        size = params * 4
        volume, collectives, window = 2 * (n - 1) / n * size, 1, device_s * d.BACKWARD_SHARE
    buckets = max(1, math.ceil(size / d.BUCKET_BYTES))
    latency = buckets * collectives * 2 * (n - 1) * d.LINK_LATENCY_S
    total = volume / (ln.gbs * 1e9 * d.LINK_EFFICIENCY) + latency
    return Comm(total, max(total - window, total / buckets), ln)


def assumption(spec: GpuSpec, n: int) -> str:
    return (
        f"{n} x {spec.name} over {link(spec, n).name}: each GPU runs the measured batch; "
        f"gradients all-reduced at {d.LINK_EFFICIENCY:.0%} of the link, overlapped with "
        "the backward pass except the last bucket"
    )
