"""The fault suite: whatever a user types and whatever file they import, gpuscout answers
with lines and an exit code of 0, 1 or 2, never a traceback, and what it stored reads back
through every command that reads.

Hypothesis builds the command lines from the CLI's own words (``command_paths``,
``option_names``) and hostile values; the examples are derandomized so that CI sees the
same ones every time. The commands that measure (run, bench, dist, fit --measure) would
take minutes each: their command lines are parsed (``parse_problem``), not run.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from gpuscout.cli.main import app, command_paths, option_names, parse_problem
from gpuscout.store import Store
from helpers import machines
from helpers.report_sample import fill_store

FUZZ = settings(
    derandomize=True,  # the same examples on every run: CI does not depend on luck
    database=None,  # nothing written to .hypothesis/ in the checkout
    deadline=None,  # two shared cores: a slow example is not a failure
    max_examples=200,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EXIT_CODES = {0, 1, 2}
ESC = "\x1b"

# Command lines that start a measurement, or the user's own script: parsed only.
MEASURING = {("run",), ("bench", "micro"), ("bench", "workload"), ("bench", "dist"), ("profile",)}
# Options that turn a quick command into one that measures or probes for seconds.
SLOW_OPTIONS = {"--measure", "--record"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with a doctor run, a full example run and an imported copy of it."""
    path = tmp_path_factory.mktemp("template") / "gpuscout.db"
    with Store.open(path) as store:
        fill_store(store, host="lab")
        fill_store(store, gpu=False, host="laptop")
    return path


@pytest.fixture
def sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: Path
) -> Iterator[Callable[[], Path]]:
    """A fresh GPUSCOUT_HOME (copied from the template) per example; the working folder
    is a throwaway one, so a report's default file lands there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GPUSCOUT_DEBUG", raising=False)
    counter = iter(range(10**6))

    def fresh() -> Path:
        home = tmp_path / f"home{next(counter)}"
        home.mkdir()
        shutil.copy(template, home / "gpuscout.db")
        monkeypatch.setenv("GPUSCOUT_HOME", str(home))
        return home

    yield fresh


def _places(root: Path) -> list[str]:
    """Paths a user might hand any option: a folder, a file, a database, a recorded
    machine, devices, a path under a file, one that is not there, stdin/stdout."""
    return [
        str(root),
        str(root / "home0" / "gpuscout.db"),
        str(root / "note.txt"),
        str(root / "note.txt" / "under"),
        str(root / "missing" / "x.json"),
        str(machines.path("h100")),  # a recorded machine: the doctor replays it
        # Links to /dev/full and /dev/null, never the devices: if a command ever replaced
        # its output file again, it would replace the link (as root, it replaced /dev/full).
        str(root / "full"),
        str(root / "null"),
        "-",
    ]


def _furnish(root: Path) -> None:
    """The files ``_places`` names."""
    (root / "note.txt").write_text("not a gpuscout file")
    for name, device in (("full", "/dev/full"), ("null", "/dev/null")):
        if not (root / name).is_symlink():
            (root / name).symlink_to(device)


HOSTILE = [
    "0",
    "1",
    "2",
    "-1",
    "3.5",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1" + "0" * 400,
    "1e309",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "",
    " ",
    "\t\n",
    "\x1b[31mred\x1b[0m",
    "\x07\x08\x7f",
    "Ω≈ç√∫",
    "😀",
    "\u202eevil",
    "\udcff",  # a file name that is not UTF-8 arrives as a lone surrogate
    "[bold]x[/]",
    "<script>alert(1)</script>",
    "--",
    "-",
    "h100",
    "llama-3-8b",
    "mlp",
    "md",
    "json",
    "html",
]


@st.composite
def command_lines(draw: st.DrawFn, root: Path) -> list[str]:
    path = draw(st.sampled_from(sorted(command_paths())))
    options = sorted(option_names(path))
    words = st.one_of(
        st.sampled_from(options),
        st.sampled_from(HOSTILE),
        st.sampled_from(_places(root)),
        st.text(max_size=8),
    )
    tail = draw(st.lists(words, max_size=5))
    return [*path, *[w.replace("\x00", "") for w in tail]]  # argv cannot hold NUL


def _runs_something_slow(argv: list[str]) -> bool:
    words = tuple(argv[:2])
    if any(words[: len(p)] == p for p in MEASURING) or SLOW_OPTIONS & set(argv):
        return True
    # A doctor without a recorded machine probes this one (seconds); --machine is quick.
    return argv[:1] == ["doctor"] and "--machine" not in argv


def _invoke(argv: list[str]) -> Result:
    return CliRunner().invoke(app, argv, env={"COLUMNS": "120"})


def _assert_clean(r: Result, argv: list[str]) -> None:
    """An answer: exit 0, 1 or 2, no exception past the command, no traceback, no ESC."""
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError(f"gpuscout {argv!r} raised") from r.exception
    assert r.exit_code in EXIT_CODES, (argv, r.exit_code, r.output)
    assert "Traceback" not in r.output, (argv, r.output)
    assert ESC not in r.output, (argv, r.output)


@FUZZ
@given(data=st.data())
def test_any_command_line_gets_an_answer_not_a_traceback(
    sandbox: Callable[[], Path], tmp_path: Path, data: st.DataObject
) -> None:
    _furnish(tmp_path)
    sandbox()
    argv = data.draw(command_lines(tmp_path), label="argv")
    if _runs_something_slow(argv):
        problem = parse_problem(argv)
        assert problem is None or isinstance(problem, str)
        return
    _assert_clean(_invoke(argv), argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "9223372036854775808"],
        ["show", "--", "-1"],
        ["compare", "1", "99999999999999999999"],
        ["export", "9223372036854775808"],
        ["report", "9223372036854775808", "-o", "-"],
        ["advise", "--run", "9223372036854775808"],
        ["delete", "9223372036854775808"],
        ["history", "--limit", "9223372036854775808"],
        ["report", "1", "-o", "{tmp}/full", "-f", "md"],
        ["report", "1", "-o", "{tmp}/null"],
        ["export", "-o", "{tmp}/full"],
        ["export", "-o", "."],
        ["report", "-o", ".", "-f", "md"],
        ["import", "/dev/null"],
        ["import", "."],
        ["doctor", "--machine", ".", "--no-store"],
        ["doctor", "--machine", "/dev/null", "--no-store"],
    ],
)
def test_plain_input_from_the_issue_is_one_line(
    sandbox: Callable[[], Path], tmp_path: Path, argv: list[str]
) -> None:
    _furnish(tmp_path)
    sandbox()
    argv = [word.format(tmp=tmp_path) for word in argv]
    _assert_clean(_invoke(argv), argv)


# -- hostile files -----------------------------------------------------------------------


def _document(template: Path) -> dict[str, Any]:
    with Store.open(template) as store:
        return store.export_runs([1])


def _first_result(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = doc["runs"][0]["results"][0]
    return result


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


# How an exported document is made hostile, by name: each is refused in one line.
REFUSED: dict[str, Callable[[dict[str, Any]], None]] = {
    "figure 1e308": lambda d: _first_result(d).update(figure=1e308),
    "figure 10**400": lambda d: _first_result(d).update(figure=10**400),
    "figure 0": lambda d: _first_result(d).update(figure=0),
    "figure negative": lambda d: _first_result(d).update(figure=-5.0),
    "median negative": lambda d: _first_result(d)["stats"].update(median_s=-1),
    "peak fraction 1e300": lambda d: _first_result(d).update(peak_fraction=1e300),
    "ESC in a name": lambda d: _first_result(d).update(name="\x1b[31mred\x1b[0m"),
    "ESC in the host": lambda d: d["runs"][0]["fingerprint"].update(host="\x1b]0;pwn\x07"),
    "ESC in the headline": lambda d: d["runs"][0]["summary"].update(headline="\x1b[2J"),
    "BEL in a finding": lambda d: d["runs"][0]["findings"][0].update(summary="ding\x07"),
    "lone surrogate": lambda d: _first_result(d).update(device="cuda\ud800"),
    "kind with a newline": lambda d: d["runs"][0].update(kind="run\nfake"),
    "nested 100 deep": lambda d: _first_result(d).update(extra=_nested(100)),
}
TOKENS = {
    "NaN token": ("NaN",),
    "Infinity token": ("Infinity",),
    "-Infinity token": ("-Infinity",),
}


def _import(db: Path, text: str, tmp_path: Path) -> Result:
    path = tmp_path / "hostile.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return _invoke(["import", str(path), "--db", str(db)])


def _refused(r: Result, argv: list[str]) -> None:
    _assert_clean(r, argv)
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) <= 2 and lines[0].startswith("error: "), r.output


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_hostile_value_is_refused_in_one_line_and_nothing_is_stored(
    template: Path, tmp_path: Path, case: str
) -> None:
    doc = _document(template)
    REFUSED[case](doc)
    db = tmp_path / "t.db"
    shutil.copy(template, db)
    before = db.read_bytes()
    _refused(_import(db, json.dumps(doc), tmp_path), ["import", case])
    assert db.read_bytes() == before


@pytest.mark.parametrize("token", sorted(TOKENS))
def test_nan_and_infinity_tokens_are_refused(template: Path, tmp_path: Path, token: str) -> None:
    text = json.dumps(_document(template)).replace('"figure": 2.18', f'"figure": {token}', 1)
    assert token in text
    _refused(_import(tmp_path / "t.db", text, tmp_path), ["import", token])


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000, "1" * 5000],
    ids=["deep list", "deep object", "5000-digit number"],
)
def test_a_file_nested_past_reason_is_refused(tmp_path: Path, text: str) -> None:
    _refused(_import(tmp_path / "t.db", text, tmp_path), ["import", text[:8]])


# Values that are odd but possible: stored, then shown by every command that reads.
ACCEPTED: dict[str, Callable[[dict[str, Any]], None]] = {
    "figure 1e-320": lambda d: _first_result(d).update(figure=1e-320),
    "median 0": lambda d: _first_result(d)["stats"].update(median_s=0.0, iqr_s=0.0),
    "peak 1e308 in extra": lambda d: _first_result(d)["extra"].update(peak=1e308),
    "peak 0 in extra": lambda d: _first_result(d)["extra"].update(peak=0),
    "memory -1": lambda d: d["runs"][0]["fingerprint"]["gpus"][0].update(memory_total_bytes=-1),
    "memory 10**60": lambda d: d["runs"][0]["fingerprint"]["gpus"][0].update(
        memory_total_bytes=10**60
    ),
    "no cores": lambda d: d["runs"][0]["fingerprint"].update(physical_cores=0, logical_cores=0),
    "markup and html": lambda d: d["runs"][0]["fingerprint"].update(
        host="[bold red]x[/]<script>alert(1)</script>"
    ),
    "right-to-left override": lambda d: _first_result(d).update(name="\u202eevil"),
    "far future": lambda d: d["runs"][0].update(started_at="9999-12-31T23:59:59+00:00"),
    "nested 30 deep": lambda d: _first_result(d).update(extra=_nested(30)),
    "exported id out of range": lambda d: d["runs"][0].update(id=2**63),  # renumbered
    "no gpus": lambda d: d["runs"][0]["fingerprint"].update(gpus=[]),
    "gpus not a list": lambda d: d["runs"][0]["fingerprint"].update(gpus="many"),
}


def _read_everything(db: Path, run_ids: list[int], tmp_path: Path, html: bool = False) -> None:
    """Every command that reads, over the whole store and over each of ``run_ids``; the
    HTML report (charts: seconds) only when asked."""
    every = ["--db", str(db)]
    commands = [
        ["history"],
        ["history", "--json"],
        ["export"],
        ["report", "-o", "-", "-f", "md"],
        ["report", "-o", "-", "-f", "json"],
        ["advise"],
    ]
    if html:
        commands.append(["report", "-o", str(tmp_path / "r.html")])
    for i in map(str, run_ids):
        commands += [
            ["show", i],
            ["show", i, "--json"],
            ["compare", "1", i],
            ["advise", "--run", i],
            ["advise", "--run", i, "--json"],
        ]
    for argv in commands:
        _assert_clean(_invoke([*argv, *every]), argv)


def test_odd_values_that_are_stored_read_back_through_every_command(
    template: Path, tmp_path: Path
) -> None:
    db = tmp_path / "t.db"
    shutil.copy(template, db)
    ids = []
    for case, change in sorted(ACCEPTED.items()):
        doc = _document(template)
        change(doc)
        r = _import(db, json.dumps(doc), tmp_path)
        _assert_clean(r, ["import", case])
        assert r.exit_code == 0, (case, r.output)
        ids.append(
            json.loads(_invoke(["history", "-n", "1", "--json", "--db", str(db)]).output)[0]["id"]
        )
    _read_everything(db, ids, tmp_path, html=True)


def test_rows_written_behind_the_stores_back_read_back(template: Path, tmp_path: Path) -> None:
    """A row no gpuscout wrote through its rules (an old version, a hand edit): NaN,
    infinity, ESC and bytes that are not UTF-8 go in with raw SQL; every command that
    reads still answers."""
    db = tmp_path / "t.db"
    shutil.copy(template, db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE results SET figure = ?, name = ? WHERE id = 1", (float("nan"), "a\x1b[2Jb")
        )
        conn.execute("UPDATE results SET figure = ? WHERE id = 2", (float("inf"),))
        conn.execute("UPDATE results SET device = CAST(? AS TEXT) WHERE id = 3", (b"cpu\xff",))
        conn.execute("UPDATE runs SET summary = ? WHERE id = 2", ('{"headline": "\\u001b[31m"}',))
    conn.close()
    _read_everything(db, [1, 2], tmp_path)


def test_the_same_run_three_times_and_imported_twice_is_stored_once(
    template: Path, tmp_path: Path
) -> None:
    doc = _document(template)
    doc["runs"] = doc["runs"] * 3
    db = tmp_path / "t.db"
    first = _import(db, json.dumps(doc), tmp_path)
    assert first.output == "imported 1 run as 1; 2 already imported as run 1 (gpuscout show 1)\n"
    again = _import(db, json.dumps(doc), tmp_path)
    assert again.output == "nothing new: 3 runs already imported as run 1\n"
    with Store.open(db) as store:
        assert [run.id for run in store.list_runs()] == [1]
    _read_everything(db, [1], tmp_path)
