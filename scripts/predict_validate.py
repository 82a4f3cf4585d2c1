"""The predictor calibrated on one GPU's run and checked against another's.

The logic is gpuscout.validate.predict_across_gpus; this file is its entry point:

    python scripts/predict_validate.py --a h100.db --b h200.db  # or --db all.db --runs A B
"""

import sys

from gpuscout.validate.predict_across_gpus import main

if __name__ == "__main__":
    sys.exit(main())
