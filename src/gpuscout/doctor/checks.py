"""The check registry: every check runs, and every check returns findings.

A check is a function ``SystemInfo -> Iterable[Finding]``. It never raises on a broken
machine (that is what it is there to report); if it raises anyway, that is a bug in
gpuscout, and it becomes a finding of its own instead of hiding the other checks.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gpuscout._types import Finding, Status, SystemInfo

CheckFn = Callable[[SystemInfo], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    fn: CheckFn


_CHECKS: dict[str, Check] = {}
_MODULES = ("checks_host", "checks_gpu", "checks_framework")


def check(check_id: str, title: str) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` under ``check_id``; the order of registration is the order of output."""

    def deco(fn: CheckFn) -> CheckFn:
        if check_id in _CHECKS:
            raise ValueError(f"duplicate check id {check_id!r}")
        _CHECKS[check_id] = Check(check_id, title, fn)
        return fn

    return deco


def all_checks() -> tuple[Check, ...]:
    # Importing the check modules registers them; done here, not at package import, so
    # the registry is filled only when the doctor is used. The module order is the output
    # order: the host and driver first, then each GPU, then the frameworks on top.
    for module in _MODULES:
        importlib.import_module(f"gpuscout.doctor.{module}")
    return tuple(_CHECKS.values())


def run_checks(system: SystemInfo, checks: Iterable[Check] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for c in all_checks() if checks is None else checks:
        try:
            findings.extend(c.fn(system))
        except Exception as exc:  # a bug in a check must not hide the others
            findings.append(
                Finding(
                    id=c.id,
                    status=Status.FAIL,
                    summary=f"the check itself crashed: {type(exc).__name__}: {exc}",
                    detail="".join(traceback.format_exception_only(type(exc), exc)).strip(),
                    fix="please report this at the gpuscout issue tracker with "
                    "`gpuscout doctor --json` attached",
                )
            )
    return findings


def exit_code(findings: Iterable[Finding]) -> int:
    """0 when no check failed, 1 when one did (2 is reserved for usage errors)."""
    return 1 if any(f.status is Status.FAIL for f in findings) else 0
