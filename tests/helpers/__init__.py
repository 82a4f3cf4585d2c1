"""What the tests share: the repository's paths, the recorded machines, sample runs, the
numerics of tolerances, busy neighbours, and one run of every workload per session.

``tests/`` is on sys.path (pyproject's pytest ``pythonpath``), so a test anywhere imports
``from helpers import machines``.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
MACHINES = FIXTURES / "machines"
GOLDEN = TESTS / "golden"
