"""The workload goals, measured and judged, as one JSON object.

The logic is gpuscout.validate.workload_goals; this file is its entry point:

    python scripts/workload_goals.py [--device cpu] [--only mlp,cnn,llm,quick] [--out g.json]
"""

import sys

from gpuscout.validate.workload_goals import main

if __name__ == "__main__":
    sys.exit(main())
