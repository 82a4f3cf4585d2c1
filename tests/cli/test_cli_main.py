"""``main()``, the last line of defence: a bug is one line and a log, an output nobody
can read ends quietly, an ASCII-only terminal still gets its tables."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuscout import jobs
from gpuscout.cli import history as history_cli
from gpuscout.cli import main as cli_main
from gpuscout.errors import StoreError
from gpuscout.store import Store
from helpers.report_sample import fill_store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory holding one run, for both in-process and subprocess calls."""
    home = tmp_path / "home"
    with Store.open(home / "gpuscout.db") as store:
        fill_store(store, host="lab·1")  # "·" is not ASCII
    monkeypatch.setenv("GPUSCOUT_HOME", str(home))
    monkeypatch.delenv("GPUSCOUT_DEBUG", raising=False)
    yield home


def _main(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr(sys, "argv", ["gpuscout", *argv])
    with pytest.raises(SystemExit) as done:
        cli_main.main()
    code = done.value.code
    assert isinstance(code, int)
    return code


def _boom(*args: object, **kwargs: object) -> None:
    raise ValueError("a bug\nwith \x1b[31m two lines")


def test_a_bug_is_one_line_naming_the_log(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(jobs, "history", _boom)
    assert _main(monkeypatch, "history") == 1
    out = capsys.readouterr()
    log = home / "crash.log"
    assert out.out == ""
    assert out.err == (
        "gpuscout: internal error: ValueError: a bug with [31m two lines "
        f"(traceback in {log}; please report this)\n"
    )
    text = log.read_text()
    assert "command: gpuscout history" in text
    assert "Traceback (most recent call last)" in text and "in _boom" in text


def test_the_log_goes_to_a_temporary_file_where_the_data_directory_cannot_take_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "a-file"
    plain.write_text("")
    monkeypatch.setenv("GPUSCOUT_HOME", str(plain))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(jobs, "history", _boom)
    assert _main(monkeypatch, "history") == 1
    err = capsys.readouterr().err
    (log,) = tmp_path.glob("gpuscout-crash-*.log")
    assert f"(traceback in {log}; please report this)" in err
    assert "in _boom" in log.read_text()


@pytest.mark.parametrize("how", ["--debug", "GPUSCOUT_DEBUG=1"])
def test_debug_shows_the_traceback_instead(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    monkeypatch.setattr(jobs, "history", _boom)
    if how.startswith("--"):
        argv = [how, "history"]
    else:
        monkeypatch.setenv(*how.split("="))
        argv = ["history"]
    assert _main(monkeypatch, *argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)") and "in _boom" in err
    assert "internal error" not in err
    assert not (home / "crash.log").exists()


def test_an_error_a_command_let_through_is_its_line_and_code(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise StoreError("the store is gone", "pass --db")

    monkeypatch.setattr(history_cli, "history_table", broken)
    assert _main(monkeypatch, "history") == 2
    assert capsys.readouterr().err == "error: the store is gone\n  pass --db\n"


def test_success_and_usage_errors_keep_their_codes(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(monkeypatch, "history", "--json") == 0
    assert '"host": "lab\\u00b71"' in capsys.readouterr().out
    assert _main(monkeypatch, "show", "9223372036854775808") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no run 9223372036854775808: run ids go from 1 to")
    assert _main(monkeypatch, "no-such-command") == 2


def _gpuscout(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    streams: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "gpuscout", *argv], timeout=60, **{**streams, **kwargs}
    )


@pytest.mark.parametrize("argv", [["history"], ["show", "1"], ["compare", "1", "1"]])
def test_an_ascii_only_stdout_gets_its_tables(home: Path, argv: list[str]) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "COLUMNS": "200"}
    r = _gpuscout(*argv, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    assert b"lab?1" in r.stdout  # the one character ASCII lacks, replaced
    r.stdout.decode("ascii")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
@pytest.mark.parametrize("argv", [["history", "--json"], ["show", "1"], ["export"]])
def test_a_full_stdout_exits_1_without_a_word(home: Path, argv: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        r = _gpuscout(*argv, stdout=full, stderr=subprocess.PIPE)
    assert (r.returncode, r.stderr) == (1, b"")
    assert not (home / "crash.log").exists()


@pytest.mark.parametrize("argv", [["history", "--json"], ["show", "1"], ["export"]])
def test_a_closed_pipe_exits_1_without_a_word(home: Path, argv: list[str]) -> None:
    # The reader is gone before gpuscout writes: what `| head -c1` does to a long output.
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpuscout", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert (proc.wait(timeout=60), err) == (1, b"")


def test_a_closed_stdout_exits_1_without_a_word(home: Path) -> None:
    code = "import os, runpy, sys; os.close(1); sys.argv = ['gpuscout', 'history']; "
    code += "runpy.run_module('gpuscout', run_name='__main__')"
    r = subprocess.run([sys.executable, "-c", code], stderr=subprocess.PIPE, timeout=60)
    assert (r.returncode, r.stderr) == (1, b"")


def test_gpuscout_home_on_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    for argv in (["history"], ["show", "1"], ["export"], ["report"]):
        r = _gpuscout(*argv, env={**os.environ, "GPUSCOUT_HOME": str(plain)})
        assert r.returncode == 2, (argv, r.stderr)
        assert r.stderr.decode().splitlines()[0] == (
            f"error: GPUSCOUT_HOME is {plain}, but {plain} is a file"
        )
        assert r.stdout == b""


def test_a_db_under_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    for argv in (["history"], ["show", "1"], ["export"]):
        r = _gpuscout(*argv, "--db", str(plain / "gpuscout.db"))
        assert r.returncode == 2, (argv, r.stderr)
        assert r.stderr.decode().splitlines()[0] == (
            f"error: no database can be at {plain / 'gpuscout.db'}: {plain} is a file"
        )


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["bench", "workload", "--help"], None),
        (["--version"], None),
        (["show", "--help", "x"], None),
        (["show", "x"], "Invalid value for 'run_id'"),
        (["nope"], "No such command 'nope'."),
    ],
)
def test_parse_problem_answers_help_and_version_without_printing(
    capsys: pytest.CaptureFixture[str], argv: list[str], problem: str | None
) -> None:
    got = cli_main.parse_problem(argv)
    assert got == problem if problem is None else got is not None and got.startswith(problem)
    assert capsys.readouterr() == ("", "")
