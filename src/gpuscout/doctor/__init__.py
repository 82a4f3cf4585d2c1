"""The readiness check: every check runs over a probed ``SystemInfo`` and returns findings."""

from __future__ import annotations

from gpuscout._types import Finding, SystemInfo
from gpuscout.doctor.checks import Check, all_checks, check, exit_code, run_checks


def diagnose(system: SystemInfo) -> list[Finding]:
    """All findings for ``system``, in check order. Pure: no I/O, no GPU access."""
    return run_checks(system)


__all__ = ["Check", "all_checks", "check", "diagnose", "exit_code", "run_checks"]
