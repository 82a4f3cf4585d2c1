"""The README as a script: every command it shows is found, run, and its output kept true.

The README is read as Markdown. What counts as a command:

- in a ``text`` block, each line that starts with ``$ `` (the lines after it, up to the
  next ``$`` line, are its output as shown);
- in a ``bash`` block, each line (a trailing ``# comment`` is prose);
- in the prose, each code span that starts with ``gpuscout``: with arguments, it is run;
  a bare command name (``gpuscout fit``) must be a command; a synopsis (brackets, ``|``,
  ``...`` or CAPITAL placeholders) must name only options that command's ``--help``
  lists.

Commands run in README order, in one throwaway data directory (``GPUSCOUT_HOME``) and
one scratch working directory, through ``bash -c`` (the README's commands are shell
lines). A shown output that starts with ``error:`` says the command fails, so a non-zero
exit is expected there; everywhere else the exit code must be 0. Installing (``pip``)
is what ``.ci/run`` does and is not repeated; what needs hardware this machine may lack
(several nodes, Slurm, a CUDA GPU) is parsed against the CLI instead of run.

``regenerate`` runs the same commands and writes each ``text`` block's output back from
the real run. An HTML comment right above a block shapes it: ``<!-- readme: last N -->``
or ``<!-- readme: first N -->`` keeps an excerpt (marked ``...``), ``<!-- readme: keep -->``
leaves the block as written.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

TIMEOUT_S = 900.0
COLUMNS = 100
# Lines the README shows that this process cannot run, and why (matched against the
# command line). They are parsed against the CLI so a renamed option still fails.
NOT_RUN_HERE = (
    (re.compile(r"^pytest\b"), "the test suite, which .ci/run runs (and which runs this)"),
    (re.compile(r"^srun\b"), "needs a Slurm allocation"),
    (re.compile(r"--nnodes\s+[2-9]"), "needs several nodes"),
    (re.compile(r"--device\s+cuda"), "needs a CUDA GPU"),
    (re.compile(r"--backend\s+nccl"), "needs a CUDA GPU"),
    (re.compile(r"--nproc-per-node\s+8"), "needs 8 GPUs"),
    (re.compile(r"\bfit\b.*--measure"), "needs a CUDA GPU"),
)
_DIRECTIVE = re.compile(r"<!--\s*readme:\s*(?P<what>[^>]*?)\s*-->")
_PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]*\b")
_SPAN = re.compile(r"`(gpuscout(?:\s[^`]*)?)`")
# A repository script named in the prose: it must exist and answer --help (it may need
# a GPU or files to do its work, so its work is not run here).
_SCRIPT_SPAN = re.compile(r"`((?:\w+=\S+\s+)*(?:python|bash)\s+(scripts/[\w.-]+)[^`]*)`")


@dataclass(frozen=True)
class Command:
    """One command line the README shows, and what its run must show."""

    line: str  # the shell line, as written
    where: int  # 1-based README line
    expect_failure: bool = False
    parse_only: str | None = None  # why it is parsed and not run
    block: int | None = None  # which code block shows it (None: the prose)


@dataclass
class Block:
    """A fenced code block: its language, the README lines it spans, its directive."""

    lang: str
    start: int  # index of the opening fence
    end: int  # index of the closing fence
    body: list[str]
    directive: str = ""


@dataclass(frozen=True)
class Outcome:
    command: Command
    exit_code: int | None
    output: str
    problem: str | None  # None when it did what the README says


@dataclass
class Session:
    """Where the README's commands run: one data directory, one working directory."""

    home: Path
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        bindir = str(Path(sys.executable).parent)  # this environment's `gpuscout`
        env |= {
            "GPUSCOUT_HOME": str(self.home),
            "COLUMNS": str(COLUMNS),
            "PATH": bindir + os.pathsep + env.get("PATH", ""),
            "PYTHONIOENCODING": "utf-8",
        }
        env.pop("FORCE_COLOR", None)
        return env | self.env


def scratch(tmp: Path, checkout: Path) -> Session:
    """A fresh data directory and working directory under ``tmp``; the working directory
    holds the checkout's ``examples/``, as a reader's does (commands name them)."""
    session = Session(home=tmp / "home", cwd=tmp / "work")
    session.cwd.mkdir(parents=True)
    if (checkout / "examples").is_dir():
        shutil.copytree(checkout / "examples", session.cwd / "examples")
    return session


def blocks(lines: Sequence[str]) -> list[Block]:
    out: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            lang = line[3:].strip()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            prev = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            m = _DIRECTIVE.search(prev)
            out.append(Block(lang, i, j, list(lines[i + 1 : j]), m.group("what") if m else ""))
            i = j + 1
            continue
        i += 1
    return out


def _why_not_here(line: str) -> str | None:
    return next((why for pattern, why in NOT_RUN_HERE if pattern.search(line)), None)


def block_commands(block: Block) -> list[Command]:
    """The commands of one block, in order."""
    cmds: list[Command] = []
    base = block.start + 2  # the 1-based line of body[0]
    if block.lang == "text":
        for n, line in enumerate(block.body):
            if not line.startswith("$ "):
                continue
            shown = next((o for o in block.body[n + 1 :] if o.strip()), "")
            cmd = line[2:].strip()
            cmds.append(Command(cmd, base + n, shown.startswith("error:"), _why_not_here(cmd)))
    elif block.lang == "bash":
        for n, raw in enumerate(block.body):
            line = _strip_comment(raw).strip()
            if not line:
                continue
            # Installing is .ci/run's job; what follows `&&` is the command shown.
            parts = [p.strip() for p in line.split("&&") if "pip install" not in p]
            for cmd in parts:
                cmds.append(Command(cmd, base + n, False, _why_not_here(cmd)))
    return cmds


def _strip_comment(line: str) -> str:
    """A bash line without its trailing ``# comment`` (a ``#`` inside quotes is kept)."""
    try:
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        lex.commenters = "#"
        list(lex)  # raises on an unbalanced quote
    except ValueError:
        return line
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def prose_spans(lines: Sequence[str], pattern: re.Pattern[str] = _SPAN) -> list[tuple[str, int]]:
    """``gpuscout ...`` code spans (or ``pattern``'s) outside code blocks, with their
    1-based line; a span wrapped over two lines is joined."""
    fenced: set[int] = set()
    for b in blocks(lines):
        fenced.update(range(b.start, b.end + 1))
    text_lines = [("" if i in fenced else line) for i, line in enumerate(lines)]
    text = "\n".join(text_lines)
    out = []
    for m in pattern.finditer(text):
        where = text.count("\n", 0, m.start()) + 1
        out.append((" ".join(m.group(1).split()), where))
    return out


def is_synopsis(span: str) -> bool:
    words = span.split()[1:]
    return (
        any(c in span for c in "[|")
        or "..." in span
        or any(_PLACEHOLDER.fullmatch(w) for w in words)
    )


def commands(readme: str) -> list[Command]:
    """Every command the README shows, in order (prose spans with arguments included;
    names and synopses are checked by ``check_synopses``)."""
    lines = readme.splitlines()
    shown: list[Command] = []
    for i, block in enumerate(blocks(lines)):
        shown.extend(replace(c, block=i) for c in block_commands(block))
    prose: list[Command] = []
    for span, where in prose_spans(lines):
        if len(span.split()) > 1 and not is_synopsis(span) and not _is_name(span):
            prose.append(Command(span, where, False, _why_not_here(span)))
    for span, where in prose_spans(lines, _SCRIPT_SPAN):
        prose.append(Command(span, where, False, "a script: checked with --help"))
    # The same line twice is run once, where it first appears; but one block showing a
    # command twice (an import repeated) shows two runs, each with its own output.
    found = sorted([*shown, *prose], key=lambda c: c.where)
    first: dict[str, int | None] = {}
    kept = []
    for c in found:
        if c.line not in first or (c.block is not None and first[c.line] == c.block):
            first.setdefault(c.line, c.block)
            kept.append(c)
    return kept


def _is_name(span: str) -> bool:
    """``gpuscout bench micro``: a command's name in prose, not an invocation."""
    from gpuscout.cli.main import command_paths

    return tuple(span.split()[1:]) in command_paths()


def run(cmd: Command, session: Session, timeout_s: float = TIMEOUT_S) -> Outcome:
    """Run (or parse) one command as the README shows it."""
    if cmd.parse_only is not None:
        script = _SCRIPT_SPAN.fullmatch(f"`{cmd.line}`")
        problem = parse_problem(cmd.line) if script is None else script_problem(script, session)
        return Outcome(cmd, None, "", problem)
    try:
        proc = subprocess.run(
            ["bash", "-c", cmd.line],
            cwd=session.cwd,
            env=session.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # interleaved, as a terminal shows them
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(cmd, None, "", f"still running after {timeout_s:g} s")
    output = proc.stdout
    code = proc.returncode
    problem = None
    if cmd.expect_failure and code == 0:
        problem = "the README shows an error, but it exited 0"
    elif not cmd.expect_failure and code != 0:
        last = output.strip().splitlines()[-1] if output.strip() else ""
        problem = f"exit code {code}: {last}"
    return Outcome(cmd, code, output, problem)


def script_problem(match: re.Match[str], session: Session) -> str | None:
    """A script the README names: it exists, and a Python one answers --help."""
    path = Path(__file__).resolve().parents[3] / match.group(2)
    if not path.is_file():
        return f"{match.group(2)} does not exist"
    check = (
        [sys.executable, str(path), "--help"] if path.suffix == ".py" else ["bash", "-n", str(path)]
    )
    proc = subprocess.run(
        check, env=session.environment(), capture_output=True, text=True, check=False
    )
    return None if proc.returncode == 0 else f"{' '.join(check[1:])}: exit {proc.returncode}"


def gpuscout_argv(line: str) -> list[str] | None:
    """The arguments after ``gpuscout`` in a shell line, or None when it runs none."""
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if "gpuscout" not in words:
        return None
    return words[words.index("gpuscout") + 1 :]


def parse_problem(line: str) -> str | None:
    """None when the CLI accepts this command line's arguments, else its complaint."""
    argv = gpuscout_argv(line)
    if argv is None:
        return None  # not a gpuscout line: nothing of ours to check
    from gpuscout.cli.main import parse_problem as cli_parse_problem

    return cli_parse_problem(argv)


def check_synopses(readme: str) -> list[str]:
    """Problems with the prose's command names and synopses (empty: none)."""
    from gpuscout.cli.main import command_paths, option_names

    problems = []
    paths = command_paths()
    for span, where in prose_spans(readme.splitlines()):
        words = span.split()[1:]
        path = _longest_path(words, paths)
        if path is None:
            if words and not words[0].startswith("-"):
                problems.append(f"README line {where}: `{span}` names no command")
            continue
        if not is_synopsis(span):
            continue
        known = option_names(path)
        for opt in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", span):
            if opt not in known:
                problems.append(
                    f"README line {where}: `gpuscout {' '.join(path)}` has no option {opt}"
                )
    return problems


def _longest_path(words: Sequence[str], paths: set[tuple[str, ...]]) -> tuple[str, ...] | None:
    for n in range(len(words), 0, -1):
        if tuple(words[:n]) in paths:
            return tuple(words[:n])
    return () if not words or words[0].startswith("-") else None


def run_all(readme: str, session: Session) -> Iterator[Outcome]:
    for cmd in commands(readme):
        yield run(cmd, session)


# -- writing real output back -----------------------------------------------------------


def _shape(output: str, directive: str, session: Session) -> list[str]:
    text = output.replace(str(session.home), "~/.local/share/gpuscout")
    text = text.replace(str(session.cwd) + os.sep, "")
    lines = [line.rstrip() for line in text.rstrip("\n").splitlines()]
    m = re.fullmatch(r"(first|last)\s+(\d+)", directive)
    if m and len(lines) > int(m.group(2)):
        n = int(m.group(2))
        return [*lines[:n], "..."] if m.group(1) == "first" else ["...", *lines[-n:]]
    return lines


def regenerate(readme: str, session: Session) -> str:
    """The README with every ``text`` block's output replaced by a real run's."""
    lines = readme.splitlines()
    # By README line: the same command shown twice (an import repeated) has two outputs.
    done: dict[int, Outcome] = {}
    for cmd in commands(readme):  # in README order, so each block sees what came before
        t0 = time.perf_counter()
        done[cmd.where] = run(cmd, session)
        took = time.perf_counter() - t0
        print(f"{took:6.1f} s  exit {done[cmd.where].exit_code}  {cmd.line}", file=sys.stderr)
    new: list[str] = []
    cursor = 0
    for block in blocks(lines):
        if block.lang != "text" or block.directive == "keep":
            continue
        body = _regenerated_body(block, done, session)
        if body is None:
            continue
        new.extend(lines[cursor : block.start + 1])
        new.extend(body)
        cursor = block.end
    new.extend(lines[cursor:])
    return "\n".join(new) + "\n"


def _regenerated_body(block: Block, done: dict[int, Outcome], session: Session) -> list[str] | None:
    if not any(line.startswith("$ ") for line in block.body):
        return None
    body: list[str] = []
    for n, line in enumerate(block.body):
        if not line.startswith("$ "):
            continue
        # Its own run (by its 1-based README line), else the first run of the same line
        outcome = done.get(block.start + 2 + n) or _first_run(line[2:].strip(), done)
        body.append(line)
        if outcome is not None and outcome.exit_code is not None:
            body.extend(_shape(outcome.output, block.directive, session))
    return body


def _first_run(line: str, done: dict[int, Outcome]) -> Outcome | None:
    return next((o for _, o in sorted(done.items()) if o.command.line == line), None)


def main(argv: Sequence[str] | None = None) -> int:
    """``scripts/readme_outputs.py``: rewrite the README's outputs in place, or with
    ``--check`` only run the commands (exit 1 if one does not do what the README shows)."""
    parser = argparse.ArgumentParser(
        description="Run every command the README shows and write each shown output back "
        "from the real run."
    )
    parser.add_argument("readme", nargs="?", default="README.md", type=Path)
    parser.add_argument("--check", action="store_true", help="run only; write nothing")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="gpuscout-readme-") as tmp:
        session = scratch(Path(tmp), args.readme.resolve().parent)
        if args.check:
            bad = [o for o in run_all(text, session) if o.problem]
            for o in bad:
                print(f"README line {o.command.where}: {o.command.line}: {o.problem}")
            return 1 if bad else 0
        args.readme.write_text(regenerate(text, session), encoding="utf-8")
    return 0
