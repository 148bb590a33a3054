"""`python -m jnskr.serve RUN_DIR [--host H] [--port P] ...` == `jnskr serve ...`."""

import sys

if __name__ == "__main__":
    from jnskr.cli.main import run

    sys.exit(run(["serve", *sys.argv[1:]]))
