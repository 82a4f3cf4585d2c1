"""The README's commands: found, run for real in a throwaway data directory, outputs kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuscout.validate import readme
from gpuscout.validate.readme import Session, check_synopses, commands, regenerate, run_all
from helpers import REPO

README = REPO / "README.md"

SAMPLE = """\
# tool

```bash
pip install -e . && gpuscout doctor        # set up, then check
gpuscout gpus  # list the catalog
```

Use `gpuscout gpus 4090`, or read `gpuscout fit MODEL [--dtype D]` and `gpuscout fit`.

```text
$ gpuscout gpus nonsense
error: unknown GPU
```

<!-- readme: last 1 -->
```text
$ printf 'a\\nb\\nc\\n'
old output
```

```bash
srun -N 2 gpuscout bench dist --nnodez 2
```
"""


def test_commands_are_found_in_blocks_and_prose_in_readme_order() -> None:
    found = commands(SAMPLE)
    assert [c.line for c in found] == [
        "gpuscout doctor",  # the install part is .ci/run's job
        "gpuscout gpus",  # a trailing comment is prose
        "gpuscout gpus 4090",  # a prose span with arguments runs; a name or synopsis not
        "gpuscout gpus nonsense",
        "printf 'a\\nb\\nc\\n'",
        "srun -N 2 gpuscout bench dist --nnodez 2",
    ]
    assert [c.expect_failure for c in found] == [False, False, False, True, False, False]
    assert found[-1].parse_only == "needs a Slurm allocation"
    assert found[0].where == 4 and found[3].where == 11


def test_a_line_that_cannot_run_here_is_still_parsed(tmp_path: Path) -> None:
    session = Session(home=tmp_path / "h", cwd=tmp_path)
    outcome = readme.run(commands(SAMPLE)[-1], session)
    assert outcome.exit_code is None  # not run
    assert outcome.problem is not None and "--nnodez" in outcome.problem
    ok = readme.Command("srun gpuscout bench dist --nnodes 2", 1, False, "needs Slurm")
    assert readme.run(ok, session).problem is None


def test_exit_codes_must_match_what_the_readme_shows(tmp_path: Path) -> None:
    session = Session(home=tmp_path / "h", cwd=tmp_path)
    assert readme.run(readme.Command("true", 1), session).problem is None
    assert "exit code 3" in str(readme.run(readme.Command("exit 3", 1), session).problem)
    shown_error = readme.Command("true", 1, expect_failure=True)
    assert "exited 0" in str(readme.run(shown_error, session).problem)


def test_synopses_must_name_options_the_command_has() -> None:
    problems = check_synopses(SAMPLE.replace("[--dtype D]", "[--dtype D] [--flavour F]"))
    assert problems == ["README line 8: `gpuscout fit` has no option --flavour"]
    assert check_synopses("`gpuscout frobnicate`") == [
        "README line 1: `gpuscout frobnicate` names no command"
    ]


def test_regenerate_writes_the_real_output_back_and_keeps_the_rest(tmp_path: Path) -> None:
    text = SAMPLE.replace("gpuscout gpus nonsense", "echo 'error: boom' && false")
    text = text.replace("error: unknown GPU", "error: stale")
    session = Session(home=tmp_path / "h", cwd=tmp_path)
    # Only the text blocks' commands matter here; the others are replaced by no-ops.
    text = text.replace("gpuscout doctor", "true").replace("gpuscout gpus", "true")
    out = regenerate(text, session)
    assert "$ echo 'error: boom' && false\nerror: boom\n```" in out
    assert "$ printf 'a\\nb\\nc\\n'\n...\nc\n```" in out  # last 1, marked as an excerpt
    assert out.count("\n") == text.count("\n") + 1  # "old output" -> "...", "c"
    assert out.startswith("# tool\n\n```bash\npip install -e . && true")


def test_the_readme_names_only_real_commands_and_options() -> None:
    assert check_synopses(README.read_text(encoding="utf-8")) == []


def test_every_command_in_the_readme_works(tmp_path: Path) -> None:
    """Each command as written, in README order, in one throwaway data directory: what
    it shows as working exits 0, what it shows failing fails, and the lines that need
    a cluster or a GPU parse."""
    pytest.importorskip("torch")
    session = readme.scratch(tmp_path, README.parent)
    assert (session.cwd / "examples" / "fashion_mnist_mlp.py").is_file()
    problems = [
        f"line {o.command.where}: {o.command.line}: {o.problem}"
        for o in run_all(README.read_text(encoding="utf-8"), session)
        if o.problem
    ]
    assert problems == []


def test_main_checks_or_rewrites_a_readme(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "README.md"
    path.write_text("# x\n\n```text\n$ echo fresh\nstale\n```\n", encoding="utf-8")
    assert readme.main([str(path), "--check"]) == 0  # it runs; the output is not compared
    assert readme.main([str(path)]) == 0
    assert path.read_text(encoding="utf-8") == "# x\n\n```text\n$ echo fresh\nfresh\n```\n"
    count = "echo x >> f; wc -l < f"  # one more line in f each time it runs
    path.write_text(f"```text\n$ {count}\nx\n$ {count}\ny\n```\n", encoding="utf-8")
    assert readme.main([str(path)]) == 0  # one command shown twice: each its own output
    assert path.read_text(encoding="utf-8") == f"```text\n$ {count}\n1\n$ {count}\n2\n```\n"
    path.write_text("```text\n$ echo fine\nerror: shown failing\n```\n", encoding="utf-8")
    assert readme.main([str(path), "--check"]) == 1
    assert capsys.readouterr().out.startswith("README line 2: echo fine: ")
