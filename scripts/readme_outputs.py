"""Run every command the README shows and write each shown output back from the real run.

    python scripts/readme_outputs.py            # rewrite README.md's outputs in place
    python scripts/readme_outputs.py --check    # only run them; exit 1 if one fails

Everything runs in a throwaway data directory and working directory; see
gpuscout.validate.readme for what counts as a command and how a block is shaped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from gpuscout.validate.readme import Session, regenerate, run_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", nargs="?", default="README.md", type=Path)
    parser.add_argument("--check", action="store_true", help="run only; write nothing")
    args = parser.parse_args()
    text = args.readme.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="gpuscout-readme-") as tmp:
        session = Session(home=Path(tmp) / "home", cwd=Path(tmp) / "work")
        session.cwd.mkdir(parents=True)
        if args.check:
            bad = [o for o in run_all(text, session) if o.problem]
            for o in bad:
                print(f"README line {o.command.where}: {o.command.line}: {o.problem}")
            return 1 if bad else 0
        args.readme.write_text(regenerate(text, session), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
