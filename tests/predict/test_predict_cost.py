"""Cost and multi-GPU arithmetic, checked by hand; and the 8 x H100 ResNet-50 scaling
next to Lambda's published 7.9x."""

from __future__ import annotations

import math

import pytest

from gpuscout._types import Result
from gpuscout.catalog import find_gpu
from gpuscout.predict import cost, multi, predict_results
from gpuscout.predict import defaults as d


def test_electricity_and_cloud_per_run() -> None:
    # 450 W for 2 hours at $0.15/kWh: 0.9 kWh -> $0.135.
    assert cost.electricity_usd(450, 1, 7200, 0.15) == pytest.approx(0.135)
    # Two GPUs draw twice the power.
    assert cost.electricity_usd(450, 2, 7200, 0.15) == pytest.approx(0.27)
    # $2 per GPU-hour, 4 GPUs, half an hour: $4.
    assert cost.cloud_usd(2.0, 4, 1800) == pytest.approx(4.0)


def test_break_even_by_hand() -> None:
    # Buy at $1,600; rent the same at $0.50/h; it draws 450 W at $0.15/kWh = $0.0675/h.
    hours = cost.break_even_hours_same_gpu(1600, 0.50, 0.0675)
    assert hours == pytest.approx(1600 / 0.4325)
    assert cost.weeks(hours, 10) == pytest.approx(1600 / 0.4325 / 10)
    # Counted per run, renting the same GPU gives the same hours (a 3-hour run).
    per_run = cost.break_even_hours(1600, 3 * 3600, 3 * 0.0675, 3 * 0.50)
    assert per_run == pytest.approx(hours)
    # Renting cheaper than the electricity: buying never pays back.
    assert cost.break_even_hours_same_gpu(1600, 0.05, 0.0675) is None
    assert cost.break_even_hours(1600, 3600, 0.2, 0.1) is None
    assert cost.weeks(None, 10) is None


def test_dollars_as_shown() -> None:
    from gpuscout.predict.wording import usd

    assert usd(2250.4) == "$2,250" and usd(3.061) == "$3.06" and usd(None) == "n/a"
    # 11 minutes of a 140 W card at $0.15/kWh costs a fraction of a cent, not nothing.
    assert usd(cost.electricity_usd(140, 1, 660, 0.15)) == "$0.0039"
    assert usd(0.0) == "$0.00" and usd(2e-5) == "<$0.0001"
    assert usd(-2250.4) == "-$2,250" and usd(-0.5) == "-$0.50"


def test_durations_read_in_the_unit_people_use() -> None:
    from gpuscout.predict.wording import duration

    day = 86400.0
    assert duration(None) == "n/a" and duration(90) == "90 s" and duration(600) == "10 min"
    assert duration(5 * 3600) == "5.0 h" and duration(10.7 * day) == "10.7 days"
    assert duration(250 * day) == "250 days" and duration(1932.1 * day) == "5.3 years"


def test_cloud_prices_come_with_their_date() -> None:
    price = cost.cheapest_price("h100-sxm5-80gb")
    assert price is not None and price.date_seen and price.usd_per_gpu_hour > 0
    assert cost.cheapest_price("gtx-1080-ti") is None  # no cloud offers it


def test_link_choice() -> None:
    sxm, pcie_bridge, consumer = (
        find_gpu("h100-sxm5-80gb"),
        find_gpu("rtx-3090"),
        find_gpu("rtx-4090"),
    )
    assert multi.link(sxm, 8).gbs == pytest.approx(450.0)  # 900 GB/s both ways
    assert multi.link(pcie_bridge, 2).name.startswith("NVLink")  # a bridge joins a pair
    assert multi.link(pcie_bridge, 4).name.startswith("PCIe")  # ... but not four
    assert multi.link(consumer, 2).gbs == pytest.approx(31.5)  # PCIe gen4 x16
    assert multi.max_box(consumer) == 4 and multi.max_box(sxm) == 8
    assert multi.max_box(find_gpu("apple-m4-max-40c")) == 1


def test_all_reduce_time_by_hand() -> None:
    # 100M fp32 gradients on 4 x H100 SXM: 2 x 3/4 x 400 MB over 450 GB/s x 0.8, plus
    # 16 buckets (of 25 MiB) x 2 x 3 ring steps x 5 us.
    params, n = 100_000_000, 4
    c = multi.comm(params, n, find_gpu("h100-sxm5-80gb"), device_s=1.0)
    volume = 2 * 3 / 4 * params * 4
    buckets = math.ceil(params * 4 / d.BUCKET_BYTES)
    want = volume / (450e9 * d.LINK_EFFICIENCY) + buckets * 2 * 3 * d.LINK_LATENCY_S
    assert c.total_s == pytest.approx(want)
    # A 1 s step hides all but the last bucket behind its backward pass.
    assert c.exposed_s == pytest.approx(want / buckets)
    # With no step to hide behind, all of it shows.
    assert multi.comm(params, n, find_gpu("h100-sxm5-80gb"), device_s=0.0).exposed_s == (
        pytest.approx(want)
    )
    assert multi.comm(params, 1, find_gpu("h100-sxm5-80gb"), device_s=0.0).total_s == 0.0


def _resnet50_h100() -> Result:
    step = 256 / 2790  # Lambda's H100 SXM ResNet-50 AMP throughput at batch 256
    return Result(
        "cnn/tuned",
        "cuda:0",
        2790.0,
        "images/s",
        extra={
            "workload": "cnn",
            "impl": "tuned",
            "variant": None,
            "step_time_s": step,
            "batch_size": 256,
            "flops_per_step": 3 * 8.178e9 * 256,
            "bytes_per_step": 29.4e9,
            "host_ops_per_step": 459,
            "params": 25_557_032,
            "dtype": "bf16",
            "model": "resnet50",
            "device_name": "NVIDIA H100 80GB HBM3",
            "memory_total_bytes": 85_520_809_984,
        },
    )


def test_eight_h100_nvlink_resnet50_scaling_is_near_lambdas_7_9x() -> None:
    pred = predict_results([_resnet50_h100()], None, [find_gpu("h100-sxm5-80gb")], boxes=(1, 8))
    one = next(p for p in pred.projections if p.gpus == 1)
    eight = next(p for p in pred.projections if p.gpus == 8)
    scaling = eight.throughput / one.throughput
    assert 6.5 <= scaling <= 8.0  # Lambda measured 7.9x (22,067 img/s vs 2,790)
    assert eight.comm_s > 0 and eight.fits is True


def test_pcie_boxes_scale_worse_than_nvlink_ones() -> None:
    pred = predict_results(
        [_resnet50_h100()],
        None,
        [find_gpu("h100-sxm5-80gb"), find_gpu("rtx-4090")],
        boxes=(1, 4),
    )
    four = {p.gpu_id: p for p in pred.projections if p.gpus == 4}
    assert four["rtx-4090"].comm_s > four["h100-sxm5-80gb"].comm_s
    # No box is bigger than the machine takes: consumer cards stop at four.
    pred8 = predict_results([_resnet50_h100()], None, [find_gpu("rtx-4090")], boxes=(8,))
    assert pred8.projections == ()
