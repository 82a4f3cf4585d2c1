"""The arrows between gpuscout's parts point one way (docs/architecture.md): a part
imports only parts of lower layers, never one beside or above it, inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO

SRC = REPO / "src" / "gpuscout"
# Lowest first. A part is a top-level subpackage (fit.measure counts on its own: the torch
# side of fit sits above the workloads it builds, fit's arithmetic below them).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"_types", "errors"}),
    frozenset({"gpuscout"}),  # the root package: its version and the typed records
    frozenset({"timing", "catalog", "probe", "store"}),
    frozenset({"data", "count", "isolate", "doctor", "fit"}),
    frozenset({"bench", "workloads"}),
    frozenset({"predict", "fit.measure", "dist"}),  # predict reads a workload's own facts
    frozenset({"report", "profile"}),
    frozenset({"jobs"}),
    frozenset({"cli"}),
    frozenset({"validate", "__main__"}),
)


def part(module: str) -> str:
    """gpuscout.fit.measure.trials -> fit.measure; gpuscout.report.fmt -> report."""
    words = module.split(".")
    if words[:3] == ["gpuscout", "fit", "measure"]:
        return "fit.measure"
    return words[1] if len(words) > 1 else "gpuscout"


def layer(name: str) -> int:
    return next(i for i, parts in enumerate(LAYERS) if name in parts)


def imports(path: Path) -> list[str]:
    """Every gpuscout module ``path`` imports, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gpuscout":  # a submodule, or a name of the root package
                found += [
                    f"gpuscout.{a.name}" if _is_module(a.name) else "gpuscout" for a in node.names
                ]
            elif node.module.startswith("gpuscout."):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("gpuscout.")]
    return found


def _is_module(name: str) -> bool:
    return (SRC / name).is_dir() or (SRC / f"{name}.py").is_file()


def module_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def test_every_part_has_a_layer() -> None:
    parts = {part(module_of(p)) for p in SRC.rglob("*.py")}
    assert parts <= set().union(*LAYERS)


def test_imports_point_down_only() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        here = part(module_of(path))
        for target in imports(path):
            there = part(target)
            if there != here and layer(there) >= layer(here):
                wrong.append(f"{path.relative_to(SRC)} imports {target} ({here} -> {there})")
    assert wrong == []


def test_the_rule_sees_an_upward_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from gpuscout.cli.main import app\n")
    assert imports(sample) == ["gpuscout.cli.main"]
    assert layer(part("gpuscout.cli.main")) > layer(part("gpuscout.workloads.base"))


def test_the_architecture_page_shows_these_layers() -> None:
    """docs/architecture.md's table of parts is this table: the page stays true."""
    import re

    page = (REPO / "docs" / "architecture.md").read_text()
    shown: dict[int, set[str]] = {}
    for number, parts in re.findall(r"^\| (\d+) \| ([^|]+) \|", page, re.MULTILINE):
        shown.setdefault(int(number), set()).update(re.findall(r"`([\w.]+)`", parts))
    assert [frozenset(shown[i]) for i in sorted(shown)] == list(LAYERS)
