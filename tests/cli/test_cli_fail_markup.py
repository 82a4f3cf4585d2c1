"""One-line errors print user input as it is: brackets are not Rich markup."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gpuscout.cli.main import app


def test_a_file_name_with_brackets_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "x[b]y.json"  # unescaped, Rich would print "xy.json" in bold
    bad.write_text("{not json", encoding="utf-8")
    out = CliRunner().invoke(app, ["import", str(bad), "--db", str(tmp_path / "g.db")])
    assert out.exit_code == 2
    assert "Traceback" not in out.output
    assert "x[b]y.json" in out.output.replace("\n", "")


def test_an_unknown_name_with_nothing_close_lists_the_known_ones() -> None:
    from gpuscout.errors import UnknownNameError

    assert UnknownNameError("workload", "nope", [], ["mlp", "cnn"]).hint == "use one of mlp, cnn"
    assert UnknownNameError("workload", "mpl", ["mlp"], ["mlp", "cnn"]).hint == "did you mean mlp?"
    assert UnknownNameError("GPU", "x", [], [str(i) for i in range(40)]).hint == ""  # too many
