"""``python -m bench.report``: regenerate docs/results.md (see the package docstring)."""

import sys

from bench.report.document import main

sys.exit(main())
