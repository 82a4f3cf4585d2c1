"""No function in gpuscout is more complex than MAX_COMPLEXITY (radon's cyclomatic
complexity: every branch, loop, boolean operator and comprehension condition counts), so
each reads top to bottom; docs/architecture.md says how to split one that grows."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import REPO

radon = pytest.importorskip("radon.complexity")  # a [dev] dependency

MAX_COMPLEXITY = 15


def blocks(code: str) -> list[Any]:
    """Every function, method and nested function of one module."""
    out = []
    stack = list(radon.cc_visit(code))
    while stack:
        block = stack.pop()
        out.append(block)
        stack.extend(getattr(block, "methods", []))
        stack.extend(getattr(block, "closures", []))
    return out


def test_no_function_is_too_complex() -> None:
    too = [
        f"{path.relative_to(REPO)}:{b.lineno} {b.name} ({b.complexity})"
        for path in sorted((REPO / "src").rglob("*.py"))
        for b in blocks(path.read_text())
        if b.complexity > MAX_COMPLEXITY
    ]
    assert too == []


def test_the_measure_counts_branches_and_boolean_operators() -> None:
    code = "def f(a, b):\n    if a and b:\n        return 1\n    for x in a:\n        pass\n"
    (block,) = blocks(code)
    assert block.complexity == 4  # 1 + if + and + for
