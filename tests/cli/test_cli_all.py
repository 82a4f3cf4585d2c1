"""Every command: help text, a README entry, and `import gpuscout` staying cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from gpuscout.cli.main import app
from helpers import REPO

README = (REPO / "README.md").read_text()


def _commands(a: typer.Typer, prefix: str = "") -> list[str]:
    names = [f"{prefix}{c.name}" for c in a.registered_commands if c.name]
    for group in a.registered_groups:
        assert group.typer_instance is not None and group.name
        names += _commands(group.typer_instance, f"{prefix}{group.name} ")
    return names


COMMANDS = _commands(app)


def test_the_main_commands_exist() -> None:
    assert {"run", "doctor", "gpus", "history", "show", "bench micro"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_a_readme_entry(command: str) -> None:
    r = CliRunner().invoke(app, [*command.split(), "--help"])
    assert r.exit_code == 0
    assert "Usage" in r.output
    assert f"gpuscout {command}" in README, f"README has no entry for `gpuscout {command}`"


def test_readme_starts_with_the_two_commands() -> None:
    first = README.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert "gpuscout run" in first[0]
    assert "pytest" in first[1]


def test_version() -> None:
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and "gpuscout" in r.output


def test_importing_gpuscout_loads_no_framework_and_starts_no_process() -> None:
    code = (
        "import sys, subprocess\n"
        "calls = []\n"
        "real = subprocess.Popen.__init__\n"
        "def spy(self, *a, **k):\n"
        "    calls.append(a)\n"
        "    return real(self, *a, **k)\n"
        "subprocess.Popen.__init__ = spy\n"
        "import gpuscout, gpuscout.cli.main, gpuscout.doctor, gpuscout.bench, gpuscout.timing\n"
        "bad = [m for m in ('torch', 'tensorflow', 'jax', 'pynvml') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "assert not calls, calls\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
