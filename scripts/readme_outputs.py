"""Run every command the README shows and write each shown output back from the real run.

    python scripts/readme_outputs.py            # rewrite README.md's outputs in place
    python scripts/readme_outputs.py --check    # only run them; exit 1 if one fails

Everything runs in a throwaway data directory and working directory; the logic is
gpuscout.validate.readme (what counts as a command, how a block is shaped, ``main``).
"""

import sys

from gpuscout.validate.readme import main

if __name__ == "__main__":
    sys.exit(main())
