"""gpuscout's host-memory triad beside a compiled STREAM triad (scripts/stream_triad.c).

The logic is gpuscout.validate.triad_against_stream; this file is its entry point:

    python scripts/stream_compare.py [--rounds 3] [--reps 20]
"""

import sys

from gpuscout.validate.triad_against_stream import main

if __name__ == "__main__":
    sys.exit(main())
