"""docs/report.png regenerated from the newest runs' report, in headless chromium.

The logic is gpuscout.validate.report_screenshot; this file is its entry point:

    python scripts/report_screenshot.py [--dark] [--height 0] [--html r.html] [--db runs.db]
"""

import sys

from gpuscout.validate.report_screenshot import main

if __name__ == "__main__":
    sys.exit(main())
