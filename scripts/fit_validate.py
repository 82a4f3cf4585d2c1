"""Predicted vs measured peak memory for `gpuscout fit`, accelerate's estimate beside.

The logic is gpuscout.validate.fit_against_measured; this file is its entry point:

    python scripts/fit_validate.py --out fit.json [--only llama-3-8b] [--simulate]
"""

import sys

from gpuscout.validate.fit_against_measured import main

if __name__ == "__main__":
    sys.exit(main())
