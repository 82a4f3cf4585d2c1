"""NVML clock-event reasons: why a GPU runs below its maximum clocks.

Pure data and arithmetic, so reports and doctor checks can decode a recorded mask
without touching NVML.
"""

from __future__ import annotations

# Clock-event reason bits (NVML docs, group__nvmlClocksEventReasons).
CLOCK_EVENT_NAMES: dict[int, str] = {
    0x1: "GpuIdle",
    0x2: "ApplicationsClocksSetting",
    0x4: "SwPowerCap",
    0x8: "HwSlowdown",
    0x10: "SyncBoost",
    0x20: "SwThermalSlowdown",
    0x40: "HwThermalSlowdown",
    0x80: "HwPowerBrakeSlowdown",
    0x100: "DisplayClockSetting",
}
# Only these bits mean the GPU is slowed against its will; idle, sync boost and
# application clocks are normal (NVSentinel#890: excluding the idle bit matters).
THROTTLE_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
# The software power cap: the driver keeps the board within its power limit. Under a
# full load (a big matmul) that is how a healthy card runs, not a fault; the other bits
# (thermal, hardware slowdown, power brake) are.
SW_POWER_CAP = 0x4


def decode_clock_events(mask: int | None) -> tuple[str, ...]:
    """Names of the bits set in an NVML clock-event mask; unknown bits as hex."""
    if not mask:
        return ()
    names = [name for bit, name in CLOCK_EVENT_NAMES.items() if mask & bit]
    unknown = mask & ~sum(CLOCK_EVENT_NAMES)
    if unknown:
        names.append(f"Unknown(0x{unknown:x})")
    return tuple(names)


def throttle_reasons(mask: int | None) -> tuple[str, ...]:
    """Only the bits that mean real throttling (see ``THROTTLE_MASK``)."""
    return decode_clock_events((mask or 0) & THROTTLE_MASK)
