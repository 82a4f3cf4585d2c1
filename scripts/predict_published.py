"""The cross-GPU predictor against Lambda's published training table.

The logic is gpuscout.validate.predict_against_published; this file is its entry point:

    python scripts/predict_published.py [--out p.json] [--recount]
"""

import sys

from gpuscout.validate.predict_against_published import main

if __name__ == "__main__":
    sys.exit(main())
