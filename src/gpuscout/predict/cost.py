"""What a run costs: electricity on your own GPU, the price of renting one, and when
buying beats renting. Plain arithmetic, each line checkable by hand.

    electricity per run = TDP (W) x GPUs x hours per run x price per kWh / 1000
    cloud per run       = price per GPU-hour x GPUs x hours per run
    break-even (hours)  = purchase price / (cloud $/h - electricity $/h)

The last is for renting the same GPU. Against a different cloud GPU (faster or slower),
the saving is counted per run instead: purchase price / (cloud per run - electricity
per run) runs, times the hours each run takes on the GPU bought; for the same GPU the
two are equal. TDP is the board's rated power, an upper bound of what it draws while
training (the rest of the machine is not counted).
"""

from __future__ import annotations

from gpuscout.catalog import CloudPrice, cloud_prices
from gpuscout.errors import UsageError

SECONDS_PER_HOUR = 3600.0


def electricity_usd(tdp_w: float, gpus: int, seconds: float, price_kwh: float) -> float:
    return tdp_w * gpus * seconds / SECONDS_PER_HOUR / 1000.0 * price_kwh


def cloud_usd(usd_per_gpu_hour: float, gpus: int, seconds: float) -> float:
    return usd_per_gpu_hour * gpus * seconds / SECONDS_PER_HOUR


def break_even_hours_same_gpu(
    buy_usd: float, cloud_usd_per_hour: float, electricity_usd_per_hour: float
) -> float | None:
    """Hours of use after which buying is cheaper than renting the same GPU; None when
    renting costs no more per hour than the electricity (buying never pays back)."""
    saving = cloud_usd_per_hour - electricity_usd_per_hour
    return buy_usd / saving if saving > 0 else None


def break_even_hours(
    buy_usd: float, own_seconds_per_run: float, own_usd_per_run: float, cloud_usd_per_run: float
) -> float | None:
    """Hours of use of the bought GPU after which it has saved its price against a cloud
    option costing ``cloud_usd_per_run``; None when it never does."""
    saving = cloud_usd_per_run - own_usd_per_run
    if saving <= 0:
        return None
    return buy_usd / saving * own_seconds_per_run / SECONDS_PER_HOUR


def weeks(hours: float | None, hours_per_week: float) -> float | None:
    return None if hours is None else hours / hours_per_week


def cheapest_price(gpu_id: str) -> CloudPrice | None:
    """The cheapest on-demand offer the catalog lists for one GPU (prices carry dates)."""
    try:
        prices = cloud_prices(gpu_id)
    except UsageError:  # a GPU of the user's own list, unknown to the prices: no offer
        return None
    return prices[0] if prices else None
