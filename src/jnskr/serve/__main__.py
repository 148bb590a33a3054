"""`python -m jnskr.serve RUN_DIR [--host H] [--port P] ...`: the `jnskr serve` command alone."""

import sys

from jnskr.serve.app import main

if __name__ == "__main__":
    sys.exit(main())
