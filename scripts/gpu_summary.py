"""A GPU check's output as docs/benchmarks.md's section: gpuscout.validate.summary.

python scripts/gpu_summary.py out/ [--out summary.md]   # or out/gpu_check.tar.gz
"""

import sys

from gpuscout.validate.summary import main

if __name__ == "__main__":
    sys.exit(main())
